// Paints the tokens' colours, touching only what changed and what is seen first.
//
// Each token's colour is one of LEVELS precomputed levels of the colormap, and a repaint writes a
// token's background (and text colour, and dim class) only when its level (or emphasis) differs
// from what it shows. The browser's cost is per element restyled, so on a long document the tokens
// in view are written at once and the rest in chunks over the next frames: moving γ or the
// checkpoint scrubber costs about a screenful of restyling before the colours are on screen, however
// long the document. While chunks are pending the text carries aria-busy="true".

import { difficultyRgb, makeScale, rgbCss, textOn } from "../../colors.js";

// 256 levels: finer than the eye tells apart on an 11-stop colormap, and coarse enough that a small
// change of a token's number leaves its colour (and its element) alone.
const LEVELS = 256;

/** Background and text colour of each level of a palette, from [r, g, b] colours (level 0 first). */
export function palette(rgbs) {
  return { background: rgbs.map(rgbCss), text: rgbs.map(textOn) };
}

// The default: the difficulty colormap, pale (easy) to dark (hard).
const DIFFICULTY = palette(Array.from({ length: LEVELS }, (_, level) => difficultyRgb(level / (LEVELS - 1))));
// A document this short is painted in one go (a few milliseconds of restyling).
const EAGER_TOKENS = 2000;
// Tokens restyled per frame after the visible ones, and tokens around the viewport painted with it.
const CHUNK_TOKENS = 2000;
const MARGIN_TOKENS = 400;

export class TokenPainter {
  /** `spans[i]` is token i's element, inside `container` (the text). */
  constructor(spans, container) {
    this.spans = spans;
    this.container = container;
    this.level = new Int16Array(spans.length).fill(-1); // what each token shows
    this.dimmed = new Uint8Array(spans.length);
    this.target = new Int16Array(spans.length); // what it should show
    this.targetDim = new Uint8Array(spans.length);
    this.pending = []; // [from, to) ranges still to write
    this.frame = null;
    this.timer = null;
    this.colours = DIFFICULTY;
  }

  /**
   * Colour tokens 0 … n−1 by `value(i)` on the scale min…max (`invert`: high values are easy), and
   * dim those for which `dim(i)` holds (null: none). `colours` (palette()) replaces the difficulty
   * colormap: value t ∈ [0, 1] shows its level round(t·(levels − 1)). Returns the scale, for the legend.
   */
  paint({ min, max, invert, n, value, dim, colours = DIFFICULTY }) {
    const scale = makeScale({ min, max, invert });
    const top = colours.background.length - 1;
    if (colours !== this.colours) {
      this.colours = colours;
      this.level.fill(-1); // every token's level means another colour now
    }
    for (let i = 0; i < n; i += 1) {
      this.target[i] = Math.round(scale.t(value(i)) * top);
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
    const { background, text } = this.colours;
    for (let i = from; i < to; i += 1) {
      const span = this.spans[i];
      if (!span) continue;
      const level = this.target[i];
      const was = this.level[i];
      if (level !== was) {
        span.style.backgroundColor = background[level];
        if (was < 0 || text[level] !== text[was]) span.style.color = text[level];
        this.level[i] = level;
      }
      const dimmed = this.targetDim[i];
      if (dimmed !== this.dimmed[i]) {
        span.classList.toggle("dim", dimmed === 1);
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

  /** [from, to): the tokens in the viewport, with a margin (tokens are in reading order, top to bottom). */
  visibleRange(n) {
    const rect = (i) => (this.spans[i] ? this.spans[i].getBoundingClientRect() : null);
    const firstWhere = (test) => {
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        const box = rect(mid);
        if (box === null || test(box)) hi = mid; else lo = mid + 1;
      }
      return lo;
    };
    const first = firstWhere((box) => box.bottom >= 0);
    const below = firstWhere((box) => box.top > window.innerHeight);
    return [Math.max(0, first - MARGIN_TOKENS), Math.min(n, below + MARGIN_TOKENS)];
  }
}
