// Pure helpers for token data: aligning tokens with the document text, showing whitespace and control
// characters visibly, deriving focal quantities, and formatting numbers. No DOM, no fetch.

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

// ---- number formatting -------------------------------------------------------------------------

const isNum = (x) => typeof x === "number" && Number.isFinite(x);
const DASH = "—";

/** Integer with thousands separators: 12345 → "12,345". */
export function fmtInt(n) {
  return isNum(n) ? Math.round(n).toLocaleString("en-US") : DASH;
}

/** A general number with `digits` decimals, switching to exponent notation for tiny or huge values. */
export function fmtNum(x, digits = 3) {
  if (!isNum(x)) return DASH;
  const a = Math.abs(x);
  if (a !== 0 && (a < 10 ** -digits || a >= 1e7)) return x.toExponential(2);
  if (a >= 1000) return x.toLocaleString("en-US", { maximumFractionDigits: Math.min(digits, 1) });
  return x.toFixed(digits);
}

/** A probability: 3 significant digits, exponent notation below 0.001 (p = 4.13e-5). */
export function fmtProb(p) {
  if (!isNum(p)) return DASH;
  if (p === 0 || p === 1) return String(p);
  return p < 1e-3 ? p.toExponential(2) : p.toPrecision(3);
}

/** A fraction as a percentage: 0.1234 → "12.3%". */
export function fmtPct(x, digits = 1) {
  return isNum(x) ? `${(100 * x).toFixed(digits)}%` : DASH;
}

/** Compact count: 1234 → "1.2k", 3_400_000 → "3.4M". */
export function fmtCompact(n) {
  if (!isNum(n)) return DASH;
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return fmtInt(n);
}

/** Tokens per second: "1.7k tok/s". */
export function fmtRate(r) {
  return isNum(r) ? `${fmtCompact(r)} tok/s` : DASH;
}

/** The API's timestamps are UTC without an offset; parse them as UTC. */
export function parseTime(value) {
  if (!value) return null;
  const iso = /[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "just now", "5 min ago", "3 h ago", "2 d ago" relative to `now`. */
export function fmtAgo(value, now = new Date()) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return DASH;
  const s = Math.max(0, (now - date) / 1000);
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** Duration between two timestamps: "850 ms", "12.3 s", "4 min 05 s". */
export function fmtDuration(from, to) {
  const a = from instanceof Date ? from : parseTime(from);
  const b = to instanceof Date ? to : parseTime(to);
  if (!a || !b) return DASH;
  const ms = Math.max(0, b - a);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60000);
  return `${m} min ${String(Math.round((ms % 60000) / 1000)).padStart(2, "0")} s`;
}
