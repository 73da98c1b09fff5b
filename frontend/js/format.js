// Numbers, times and names as every page writes them: a loss, a rate, an age, a model's name, a run's
// options. One module, so the same fact reads the same on each page. Pure functions: no DOM, no fetch.

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

/** A size in bytes with binary units, as the server states its limits: 1536 → "1.5 KB". */
export function fmtBytes(n) {
  if (!isNum(n)) return DASH;
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${fmtInt(value)} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
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

/** Seconds as "45 s", "4 min 05 s", "2 h 10 min". */
export function fmtSeconds(s) {
  if (!isNum(s) || s < 0) return DASH;
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.round((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** A checkpoint as "series@step". */
export const modelName = (checkpoint) => `${checkpoint.series_name}@${checkpoint.step}`;

/** A run's scoring options in one line: "rolling 2048 · top-5", "strided 512/256 · top-5 · bfloat16". */
export function optionsText(o) {
  const parts = [o.window === "strided" ? `strided ${o.max_length}/${o.stride}` : `rolling ${o.max_length}`, `top-${o.top_k}`];
  // float32 is the default precision: only another dtype is worth a word.
  if (o.dtype !== "float32") parts.push(o.dtype);
  return parts.join(" · ");
}
