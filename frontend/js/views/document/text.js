// The document's text as one element per token, whitespace preserved and the characters no token
// covers as plain text nodes. Token text is untrusted: it only ever goes in through textContent.

import { h } from "../../dom.js";
import { codePointOffsets, interleave, segmentsFromTokenTexts, whitespaceKind } from "../../tokens.js";

/**
 * {el, spans, continuation, spanText}: the text element, the element of each token, whether a token
 * is a byte piece of the character before it, and the document characters token i covers (null
 * without the document's text).
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
  for (const seg of segments) {
    if (seg.kind === "gap") {
      el.append(document.createTextNode(seg.text));
      continue;
    }
    const ws = whitespaceKind(seg.text);
    const span = h("span", {
      class: ["tok", ws && `ws-${ws}`, seg.continuation && "cont"], "data-testid": "token",
      "data-index": seg.index, "data-loss": data.loss[seg.index], tabindex: seg.index === 0 ? 0 : -1,
    }, seg.text);
    spans[seg.index] = span;
    continuation[seg.index] = seg.continuation;
    el.append(span);
  }
  const offsets = hasText ? codePointOffsets(doc.text) : null;
  const spanText = (i) => (offsets ? doc.text.slice(offsets[data.char_start[i]] ?? 0, offsets[data.char_end[i]] ?? 0) : null);
  return { el, spans, continuation, spanText };
}
