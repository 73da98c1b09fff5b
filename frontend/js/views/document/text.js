// The document's text as one element per token, whitespace preserved and the characters no token
// covers as plain text nodes. Token text is untrusted: it only ever goes in through textContent.
//
// The text is cut into blocks of whole lines, each with content-visibility: auto (app.css), so the
// browser skips the style and paint of the blocks off screen: recolouring a long document costs about
// a screenful of tokens. A block ends only after a line break, where the next line starts anyway, so
// the cut changes nothing in the text's layout; a paragraph without line breaks stays one block.

import { h } from "../../dom.js";
import { codePointOffsets, interleave, segmentsFromTokenTexts, whitespaceKind } from "../../tokens.js";

// A block holds at least this many tokens (about ten lines of verse): small enough that the blocks in
// view are not much more than the view, large enough that a document is tens of blocks, not thousands.
const BLOCK_TOKENS = 100;

/**
 * {el, spans, blocks, continuation, spanText}: the text element, the element of each token, the
 * blocks of lines in order ({el, from, to}: tokens from … to−1), whether a token is a byte piece of
 * the character before it, and the document characters token i covers (null without the document's
 * text).
 */
export function documentText(doc, data) {
  const hasText = typeof doc.text === "string";
  const segments = hasText ? interleave(doc.text, data.char_start, data.char_end) : segmentsFromTokenTexts(data.text);
  const spans = new Array(data.n_tokens);
  const continuation = new Array(data.n_tokens).fill(false);
  const el = h("div", {
    class: "doc-text", "data-testid": "document-text", role: "group",
    "aria-label": "Document text; each token is coloured by difficulty. Use the arrow keys to move between tokens.",
  });
  const blocks = [];
  let open = null; // the block being filled
  for (const seg of segments) {
    if (open === null) {
      const from = blocks.length ? blocks.at(-1).to : 0;
      open = { el: h("div", { class: "doc-block" }), from, to: from, breaks: 0, last: "" };
      blocks.push(open);
      el.append(open.el);
    }
    if (seg.kind === "gap") {
      open.el.append(document.createTextNode(seg.text));
    } else {
      spans[seg.index] = tokenSpan(seg, data);
      continuation[seg.index] = seg.continuation;
      open.el.append(spans[seg.index]);
      open.to = seg.index + 1;
    }
    open.breaks += lineBreaks(seg.text);
    if (seg.text !== "") open.last = seg.text;
    if (open.last.endsWith("\n") && open.to - open.from >= BLOCK_TOKENS) open = null;
  }
  for (const block of blocks) sizeBeforeShown(block);
  const offsets = hasText ? codePointOffsets(doc.text) : null;
  const spanText = (i) => (offsets ? doc.text.slice(offsets[data.char_start[i]] ?? 0, offsets[data.char_end[i]] ?? 0) : null);
  return { el, spans, blocks: blocks.map(({ el: blockEl, from, to }) => ({ el: blockEl, from, to })), continuation, spanText };
}

function tokenSpan(seg, data) {
  const ws = whitespaceKind(seg.text);
  return h("span", {
    class: ["tok", ws && `ws-${ws}`, seg.continuation && "cont"], "data-testid": "token",
    "data-index": seg.index, "data-loss": data.loss[seg.index], tabindex: seg.index === 0 ? 0 : -1,
  }, seg.text);
}

const lineBreaks = (text) => text.split("\n").length - 1;

/**
 * A block's height until it is first shown: its count of lines (lh: the text's line height), as if
 * none wrapped; once the browser has laid the block out, it keeps the real height (auto).
 */
function sizeBeforeShown(block) {
  const lines = block.breaks + (block.last.endsWith("\n") ? 0 : 1);
  block.el.style.containIntrinsicBlockSize = `auto ${Math.max(1, lines)}lh`;
}
