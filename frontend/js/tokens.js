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

/**
 * Focal loss's gradient relative to cross-entropy's, g(p, γ) = (1−p)^γ − γ·p·(1−p)^(γ−1)·log p
 * (app/analytics/focal.py; the tokens endpoint serves it for the γ asked). The second term → 0 as p → 1.
 */
export function gradientMultiplier(logprob, gamma) {
  if (gamma === 0) return 1;
  const q = -Math.expm1(logprob);
  const second = q > 0 ? gamma * Math.exp(logprob) * q ** (gamma - 1) * logprob : 0;
  return q ** gamma - second;
}

// Upper ends of GLTR's rank buckets (0-based rank): < 10, < 100, < 1000, and beyond.
const GLTR_EDGES = [10, 100, 1000];

/** GLTR bucket 0–3 of a 0-based rank. */
export function gltrBucket(rank) {
  let bucket = 0;
  while (bucket < GLTR_EDGES.length && rank >= GLTR_EDGES[bucket]) bucket += 1;
  return bucket;
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
