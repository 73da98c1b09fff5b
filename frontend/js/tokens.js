// Pure helpers for token data: aligning tokens with the document text, showing whitespace and control
// characters visibly, and deriving focal quantities. No DOM, no fetch (numbers for display: format.js).

/**
 * UTF-16 offset of every code point of `text` (length = code points + 1). The server's char offsets
 * count Python code points; JavaScript strings index UTF-16 units, so an emoji is 1 vs 2.
 */
export function codePointOffsets(text) {
  const offsets = [0];
  let unit = 0;
  for (const ch of text) {
    unit += ch.length;
    offsets.push(unit);
  }
  return offsets;
}

/**
 * Interleave tokens with the document text by character offsets. Returns segments in reading order:
 *   {kind: "gap", text}                            characters no token covers (render as plain text)
 *   {kind: "token", index, text, continuation}     token `index`; `text` is the part of the document
 * it covers that no earlier token already showed. Byte-level tokenizers split one character (é, 🎭)
 * into several tokens with the same span: the first shows the character, the rest are continuations
 * with empty text. Concatenating every segment's text gives back the document exactly.
 */
export function interleave(documentText, charStart, charEnd) {
  const offsets = codePointOffsets(documentText);
  const nChars = offsets.length - 1;
  const slice = (a, b) => documentText.slice(offsets[a], offsets[b]);
  const segments = [];
  let cursor = 0;
  for (let i = 0; i < charStart.length; i += 1) {
    const end = Math.min(Math.max(charEnd[i], 0), nChars);
    const start = Math.min(Math.max(charStart[i], cursor), end);
    if (start > cursor) segments.push({ kind: "gap", text: slice(cursor, start) });
    const text = end > start ? slice(start, end) : "";
    segments.push({ kind: "token", index: i, text, continuation: text === "" });
    cursor = Math.max(cursor, end);
  }
  if (cursor < nChars) segments.push({ kind: "gap", text: slice(cursor, nChars) });
  return segments;
}

/** Segments when the document text is unavailable: the tokens' own texts, back to back. */
export function segmentsFromTokenTexts(texts) {
  return texts.map((text, index) => ({ kind: "token", index, text, continuation: text === "" }));
}

const VISIBLE = new Map([
  [" ", "␣"], ["\n", "↵"], ["\t", "⇥"], ["\r", "␍"], ["\u00a0", "⍽"], ["\u007f", "␡"],
  ["\u200b", "⟨ZWSP⟩"], ["\ufeff", "⟨BOM⟩"],
]);

/** Text with whitespace and control characters made visible: " " → ␣, "\n" → ↵, U+0010 → ␐. */
export function visibleText(text) {
  if (text === "") return "∅";
  let out = "";
  for (const ch of text) {
    const code = ch.codePointAt(0);
    if (VISIBLE.has(ch)) out += VISIBLE.get(ch);
    else if (code < 0x20) out += String.fromCodePoint(0x2400 + code);
    else out += ch;
  }
  return out;
}

/** What kind of whitespace a token is entirely made of, for styling: "newline", "space", or "". */
export function whitespaceKind(text) {
  if (text === "" || /\S/.test(text)) return "";
  return text.includes("\n") ? "newline" : "space";
}

/** Focal-loss weight (1 − p)^γ from log p, with 1 − p = −expm1(log p) exact for confident tokens. */
export function focalWeight(logprob, gamma) {
  if (gamma === 0) return 1;
  return (-Math.expm1(logprob)) ** gamma;
}

/** Value of `q` quantile (0..1) of an array of numbers (linear interpolation, like numpy's default). */
export function quantile(values, q) {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!finite.length) return NaN;
  const pos = (finite.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return finite[lo] + (finite[hi] - finite[lo]) * (pos - lo);
}
