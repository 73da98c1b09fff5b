// The tabs' choices as the address's query has them: a step of the series, a number in a range, a
// page offset, one of a few words. A value that is missing or out of range gives the default.

/** `query[key]` if it is one of `steps`, else `fallback`. */
export function stepParam(query, key, steps, fallback) {
  const v = Number(query.get(key));
  return query.has(key) && steps.includes(v) ? v : fallback;
}

/** `query[key]` as a number in [lo, hi], else `fallback`. */
export function numberParam(query, key, fallback, lo, hi) {
  const v = Number(query.get(key));
  return query.has(key) && Number.isFinite(v) && v >= lo && v <= hi ? v : fallback;
}

/** A page offset: a whole number ≥ 0. */
export function offsetParam(query, key) {
  const v = Number(query.get(key));
  return Number.isInteger(v) && v > 0 ? v : 0;
}

/** `query[key]` if it is one of `words`, else `fallback`. */
export function wordParam(query, key, words, fallback) {
  return words.includes(query.get(key)) ? query.get(key) : fallback;
}
