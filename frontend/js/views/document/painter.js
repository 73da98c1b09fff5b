// Paints the tokens' colours, touching only what changed and what is seen first.
//
// Each token's colour is one of the levels of a palette, and each level a class whose rule (in a
// stylesheet built here, adopted by the document through the CSSOM) sets the background and the text
// colour. A repaint writes a token's class attribute (its classes from text.js, its level, and dim
// when emphasis dims it: the painter owns the attribute) only when its level or dimming differs from
// what it shows. One class write per token rather than two inline style writes: cheaper to make, and
// tokens of one level share their matched rules, which the browser restyles faster.
//
// The browser's cost is per element restyled and repainted, so on a long document the tokens in view
// are written at once and the rest in chunks over the next frames: moving γ or the checkpoint
// scrubber costs about a screenful of restyling before the colours are on screen, however long the
// document; the chunks off screen cost little more, as the browser skips the blocks of the text out
// of view (text.js). While chunks are pending the text carries aria-busy="true".

import { difficultyRgb, makeScale, rgbCss, textOn } from "../../colors.js";

// 256 levels: finer than the eye tells apart on an 11-stop colormap, and coarse enough that a small
// change of a token's number leaves its colour (and its element) alone.
const LEVELS = 256;

let levelSheet = null;
let palettes = 0;

/**
 * A palette from [r, g, b] colours (level 0 first): each level's class, and its background (for a
 * legend). Its rules go into the stylesheet of levels, made and adopted on first use.
 */
export function palette(rgbs) {
  if (levelSheet === null) {
    levelSheet = new CSSStyleSheet();
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, levelSheet];
  }
  palettes += 1;
  const background = rgbs.map(rgbCss);
  const classes = rgbs.map((rgb, level) => {
    const name = `lv${palettes}-${level}`;
    levelSheet.insertRule(`.tok.${name} { background-color: ${background[level]}; color: ${textOn(rgb)}; }`, levelSheet.cssRules.length);
    return name;
  });
  return { background, classes };
}

// The default: the difficulty colormap, pale (easy) to dark (hard).
const DIFFICULTY = palette(Array.from({ length: LEVELS }, (_, level) => difficultyRgb(level / (LEVELS - 1))));
// A document this short is painted in one go (a few milliseconds of restyling).
const EAGER_TOKENS = 2000;
// Tokens restyled per frame after the visible ones; tokens either side of the viewport painted with
// them (a few lines: a small scroll shows the new colours, and the chunks follow within frames).
const CHUNK_TOKENS = 2000;
const MARGIN_TOKENS = 100;

export class TokenPainter {
  /** `text` is documentText's: the text element, each token's element and the blocks of lines. */
  constructor({ el, spans, blocks }) {
    this.spans = spans;
    this.blocks = blocks;
    this.container = el;
    this.base = spans.map((span) => span.className); // text.js's classes, which each write keeps
    this.shown = new Array(spans.length).fill(null); // each token's level class, once it has one
    this.dimmed = new Uint8Array(spans.length);
    this.target = new Array(spans.length); // the level class it should show
    this.targetDim = new Uint8Array(spans.length);
    this.pending = []; // [from, to) ranges still to write
    this.frame = null;
    this.timer = null;
  }

  /**
   * Colour tokens 0 … n−1 by `value(i)` on the scale min…max (`invert`: high values are easy), and
   * dim those for which `dim(i)` holds (null: none). `colours` (palette()) replaces the difficulty
   * colormap: value t ∈ [0, 1] shows its level round(t·(levels − 1)). Returns the scale, for the legend.
   */
  paint({ min, max, invert, n, value, dim, colours = DIFFICULTY }) {
    const scale = makeScale({ min, max, invert });
    const { classes } = colours;
    const top = classes.length - 1;
    for (let i = 0; i < n; i += 1) {
      this.target[i] = classes[Math.round(scale.t(value(i)) * top)];
      this.targetDim[i] = dim !== null && dim(i) ? 1 : 0;
    }
    this.cancel();
    const [from, to] = n <= EAGER_TOKENS ? [0, n] : this.visibleRange(n);
    this.write(from, to);
    this.pending = [[to, n], [0, from]].filter(([a, b]) => b > a);
    if (this.pending.length) this.schedule();
    return scale;
  }

  /** Stop writing deferred tokens (a newer paint will write them, or the page is left). */
  cancel() {
    cancelAnimationFrame(this.frame);
    clearTimeout(this.timer);
    this.frame = null;
    this.timer = null;
    this.pending = [];
    this.container.removeAttribute("aria-busy");
  }

  write(from, to) {
    for (let i = from; i < to; i += 1) {
      const levelClass = this.target[i];
      const dimmed = this.targetDim[i];
      if (levelClass !== this.shown[i] || dimmed !== this.dimmed[i]) {
        this.spans[i].className = `${this.base[i]} ${levelClass}${dimmed ? " dim" : ""}`;
        this.shown[i] = levelClass;
        this.dimmed[i] = dimmed;
      }
    }
  }

  /** The next chunk after the next frame is painted (a task queued from a frame callback runs after it). */
  schedule() {
    this.container.setAttribute("aria-busy", "true");
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      this.timer = setTimeout(() => this.writeChunk(), 0);
    });
  }

  writeChunk() {
    const [from, to] = this.pending[0];
    const end = Math.min(to, from + CHUNK_TOKENS);
    this.write(from, end);
    if (end < to) this.pending[0] = [end, to]; else this.pending.shift();
    if (this.pending.length) this.schedule(); else this.cancel();
  }

  /**
   * [from, to): the tokens in the viewport, with a margin (tokens and blocks are in reading order,
   * top to bottom). The blocks' own boxes find the blocks in view without laying out the tokens of
   * the blocks the browser skips; the tokens' boxes then find the first and last tokens in view.
   */
  visibleRange(n) {
    const { blocks, spans } = this;
    const firstWhere = (lo, hi, test) => {
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (test(mid)) hi = mid; else lo = mid + 1;
      }
      return lo;
    };
    const box = (el) => el.getBoundingClientRect();
    const inside = (block, test) => firstWhere(block.from, block.to, (i) => test(box(spans[i])));
    const firstBlock = firstWhere(0, blocks.length, (b) => box(blocks[b].el).bottom >= 0);
    const belowBlock = firstWhere(firstBlock, blocks.length, (b) => box(blocks[b].el).top > window.innerHeight);
    const first = firstBlock < blocks.length ? inside(blocks[firstBlock], (r) => r.bottom >= 0) : n;
    const below = belowBlock > firstBlock ? inside(blocks[belowBlock - 1], (r) => r.top > window.innerHeight) : first;
    return [Math.max(0, first - MARGIN_TOKENS), Math.min(n, below + MARGIN_TOKENS)];
  }
}
