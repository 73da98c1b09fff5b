// Continuous, perceptually ordered colour scales for per-token values. Pure functions: no DOM.
//
// A scale maps a value to t in [0, 1] ("difficulty": 0 = easy, 1 = hard), clamped at its max, and t to a
// colour of a sequential colormap. Easy tokens get pale backgrounds so that ordinary text stays
// readable; hard tokens get dark ones with white text.

// matplotlib's magma and viridis sampled at 0, 0.1, …, 1 (their published 11-step hex values);
// linear interpolation between such close stops stays perceptually even.
export const COLORMAPS = {
  magma: ["#000004", "#140e36", "#3b0f70", "#641a80", "#8c2981", "#b73779", "#de4968", "#f7705c", "#fe9f6d", "#fecf92", "#fcfdbf"],
  viridis: ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c", "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725"],
};

// The darkest end of magma is nearly black; stopping short of it keeps the hardest tokens distinguishable
// from each other and their white text legible.
const DARKEST = 0.12;

function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

const STOPS = Object.fromEntries(Object.entries(COLORMAPS).map(([name, hexes]) => [name, hexes.map(hexToRgb)]));

export function clamp01(x) {
  if (Number.isNaN(x)) return 0;
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

/** Colour of a colormap at position s ∈ [0, 1] (0 = its first stop), as [r, g, b]. */
export function sample(name, s) {
  const stops = STOPS[name] || STOPS.magma;
  const x = clamp01(s) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const f = x - i;
  return stops[i].map((c, k) => Math.round(c + (stops[i + 1][k] - c) * f));
}

/** Difficulty t ∈ [0, 1] → [r, g, b]: t = 0 is the pale end, t = 1 the dark end. */
export function difficultyRgb(t, name = "magma") {
  return sample(name, 1 - clamp01(t) * (1 - DARKEST));
}

export const rgbCss = ([r, g, b]) => `rgb(${r}, ${g}, ${b})`;

/** Relative luminance (WCAG) of an sRGB colour. */
export function luminance([r, g, b]) {
  const lin = (c) => {
    const v = c / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** Black or white text, whichever contrasts more with the background. */
export function textOn(rgb) {
  const l = luminance(rgb);
  return (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? "#111" : "#fff";
}

/**
 * A value → colour scale. `min`..`max` is the value range (values outside are clamped);
 * `invert` makes high values easy (for p: a confident token is an easy one).
 */
export function makeScale({ min = 0, max = 1, invert = false, colormap = "magma" } = {}) {
  const span = max - min || 1;
  const t = (value) => {
    const u = clamp01((value - min) / span);
    return invert ? 1 - u : u;
  };
  return {
    min, max, invert, colormap,
    t,
    rgb: (value) => difficultyRgb(t(value), colormap),
    color: (value) => rgbCss(difficultyRgb(t(value), colormap)),
    /** CSS gradient from the easy end (left) to the hard end (right). */
    gradient: (steps = 16) => {
      const parts = [];
      for (let i = 0; i <= steps; i += 1) parts.push(`${rgbCss(difficultyRgb(i / steps, colormap))} ${((100 * i) / steps).toFixed(1)}%`);
      return `linear-gradient(to right, ${parts.join(", ")})`;
    },
    /** Legend ticks at round values (about n of them), left (easy) to right (hard): {position ∈ [0, 1], value}. */
    ticks: (n = 4) => niceTicks(min, max, n).map((value) => ({ position: invert ? (max - value) / span : (value - min) / span, value }))
      .sort((a, b) => a.position - b.position),
  };
}

/** Round tick values from min to max (both included): steps of 1, 2, 2.5 or 5 × 10^k, about n of them. */
export function niceTicks(min, max, n = 4) {
  const span = max - min;
  if (!(span > 0) || !Number.isFinite(span)) return [min];
  const raw = span / n;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) || 10 * magnitude;
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v < max - step * 0.45; v += step) ticks.push(Number(v.toPrecision(12)));
  if (!ticks.length || ticks[0] > min + step * 1e-9) ticks.unshift(min);
  ticks.push(max);
  return ticks;
}

// ColorBrewer's PuOr (11 classes): a diverging scale that stays distinguishable under the common
// colour-vision deficiencies. Orange (left) for B worse than A, purple (right) for B better, white 0.
export const DIVERGING = ["#7f3b08", "#b35806", "#e08214", "#fdb863", "#fee0b6", "#f7f7f7", "#d8daeb", "#b2abd2", "#8073ac", "#542788", "#2d004b"];
const DIVERGING_RGB = DIVERGING.map(hexToRgb);

/** Diverging colour at s ∈ [0, 1]: 0 the orange end, ½ white, 1 the purple end. */
export function divergingRgb(s) {
  const x = clamp01(s) * (DIVERGING_RGB.length - 1);
  const i = Math.min(Math.floor(x), DIVERGING_RGB.length - 2);
  const f = x - i;
  return DIVERGING_RGB[i].map((c, k) => Math.round(c + (DIVERGING_RGB[i + 1][k] - c) * f));
}

// GLTR's colours (Gehrmann et al. 2019) for the rank buckets < 10, < 100, < 1000, ≥ 1000.
export const GLTR_COLOURS = ["#adff80", "#ffea80", "#ff9280", "#e5b0ff"];
export const GLTR_LABELS = ["top 10", "top 100", "top 1000", "beyond"];
export const gltrRgb = GLTR_COLOURS.map(hexToRgb);
