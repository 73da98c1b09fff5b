// What the tokens are coloured by and how: the metric (loss, p, entropy, focal weight, focal loss),
// focal γ, the scale's top, the hard / easy thresholds and which tokens to emphasise. The settings
// start from the address (?color=&gamma=&max=) and are written back to it, so a view can be shared.

import { makeScale, textOn } from "../../colors.js";
import { field, select } from "../../components.js";
import { h, replace } from "../../dom.js";
import { fmtInt, fmtPct } from "../../format.js";
import { focalWeight, quantile } from "../../tokens.js";
import { renderLegend } from "./legend.js";
import { documentStats } from "./stats.js";

export const DEFAULT_GAMMA = 2;
const MAX_GAMMA = 10;
// Loss thresholds for "hard" and "easy" (nats): 5 nats is p < 0.7%, 0.5 nats is p > 61%.
const DEFAULT_HARD = 5;
const DEFAULT_EASY = 0.5;

// Each colouring: its value per token, its range, and whether high values are easy (p).
const METRICS = {
  loss: { label: "loss", unit: "nats", maxKey: "loss", value: (d, i) => d.loss[i] },
  p: { label: "p (true token)", unit: "", range: [0, 1], invert: true, value: (d, i) => d.p[i] },
  entropy: { label: "entropy", unit: "nats", maxKey: "entropy", value: (d, i) => d.entropy[i] },
  focal_weight: { label: "focal weight (1−p)^γ", unit: "", range: [0, 1], value: (d, i, g) => focalWeight(d.logprob[i], g) },
  focal_loss: { label: "focal loss (1−p)^γ·loss", unit: "nats", maxKey: "loss", value: (d, i, g) => focalWeight(d.logprob[i], g) * d.loss[i] },
};

const niceMax = (x) => (Number.isFinite(x) && x > 0 ? Math.max(1, Math.ceil(x)) : 1);
const numberParam = (query, key, fallback, lo, hi) => {
  const v = Number(query.get(key));
  return query.has(key) && Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : fallback;
};

/** The settings from the address, with scale tops at the document's 99th percentile by default. */
export function initialSettings(query, data) {
  return {
    metric: METRICS[query.get("color")] ? query.get("color") : "loss",
    gamma: numberParam(query, "gamma", DEFAULT_GAMMA, 0, MAX_GAMMA),
    max: {
      loss: numberParam(query, "max", niceMax(quantile(data.loss, 0.99)), 0.1, 1000),
      entropy: niceMax(quantile(data.entropy, 0.99)),
    },
    hard: DEFAULT_HARD,
    easy: DEFAULT_EASY,
    emphasis: "none",
  };
}

/**
 * The colouring of the page: {controls, legendEl, countsEl, statsEl, recolor()}. `recolor` paints
 * every token, redraws the legend, counts and statistics, `onChange()` (the tooltip) and the address.
 */
export function colouring(ctx, data, spans, settings, onChange) {
  const legendEl = h("div", { class: "legend", "data-testid": "legend" });
  const statsEl = h("div");
  const countsEl = h("p", { class: "muted small", "data-testid": "difficulty-counts" });
  const controls = colourControls(settings, () => recolor());
  const recolor = () => {
    const metric = METRICS[settings.metric];
    const scale = paintTokens(spans, data, settings);
    renderLegend(legendEl, metric, scale);
    controls.maxField.hidden = !metric.maxKey;
    controls.maxInput.value = metric.maxKey ? settings.max[metric.maxKey] : "";
    countsEl.textContent = difficultyCounts(data, settings);
    replace(statsEl, documentStats(data, settings.gamma));
    onChange();
    ctx.replaceQuery({ color: settings.metric, gamma: settings.gamma, max: settings.max.loss });
  };
  return { controls: controls.form, legendEl, countsEl, statsEl, recolor };
}

/** Colour each token by the current metric and mark the ones outside the emphasis; returns the scale. */
function paintTokens(spans, data, settings) {
  const metric = METRICS[settings.metric];
  const [min, max] = metric.range || [0, settings.max[metric.maxKey]];
  const scale = makeScale({ min, max, invert: Boolean(metric.invert) });
  for (let i = 0; i < data.n_tokens; i += 1) {
    const span = spans[i];
    if (!span) continue;
    const rgb = scale.rgb(metric.value(data, i, settings.gamma));
    span.style.backgroundColor = `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
    span.style.color = textOn(rgb);
    const hard = data.loss[i] >= settings.hard;
    const easy = data.loss[i] <= settings.easy;
    span.classList.toggle("dim", (settings.emphasis === "hard" && !hard) || (settings.emphasis === "easy" && !easy));
  }
  return scale;
}

function difficultyCounts(data, settings) {
  const nHard = data.loss.filter((l) => l >= settings.hard).length;
  const nEasy = data.loss.filter((l) => l <= settings.easy).length;
  const share = (k) => fmtPct(k / (data.n_tokens || 1));
  return `${fmtInt(nHard)} hard ${nHard === 1 ? "token" : "tokens"} (${share(nHard)}) with loss ≥ ${settings.hard} nats · `
    + `${fmtInt(nEasy)} easy ${nEasy === 1 ? "token" : "tokens"} (${share(nEasy)}) with loss ≤ ${settings.easy} nats`;
}

/** The "Colouring" form: each control writes its setting and calls `recolor`. */
function colourControls(settings, recolor) {
  const metricSel = select(Object.entries(METRICS).map(([value, m]) => ({ value, label: m.label })), { value: settings.metric, name: "color" });
  const gammaInput = h("input", { type: "range", id: "gamma-slider", min: 0, max: MAX_GAMMA, step: 0.1, value: settings.gamma, name: "gamma" });
  const gammaOut = h("output", { class: "range-value", "aria-live": "polite" }, String(settings.gamma));
  const maxInput = h("input", { type: "number", min: 0.1, step: 0.5, value: settings.max.loss, name: "max" });
  const maxField = field("Scale max", maxInput, { hint: "values above share the darkest colour" });
  const hardInput = h("input", { type: "number", min: 0, step: 0.5, value: settings.hard, name: "hard" });
  const easyInput = h("input", { type: "number", min: 0, step: 0.1, value: settings.easy, name: "easy" });
  const emphasisSel = select([{ value: "none", label: "all tokens" }, { value: "hard", label: "hard tokens" }, { value: "easy", label: "easy tokens" }], { name: "emphasis" });
  const finite = (input, set) => () => { const v = Number(input.value); if (Number.isFinite(v)) { set(v); recolor(); } };

  metricSel.addEventListener("change", () => { settings.metric = metricSel.value; recolor(); });
  gammaInput.addEventListener("input", () => { settings.gamma = Number(gammaInput.value); gammaOut.textContent = String(settings.gamma); recolor(); });
  maxInput.addEventListener("change", () => {
    const key = METRICS[settings.metric].maxKey;
    const v = Number(maxInput.value);
    if (key && Number.isFinite(v) && v > 0) { settings.max[key] = v; recolor(); }
  });
  hardInput.addEventListener("change", finite(hardInput, (v) => { settings.hard = v; }));
  easyInput.addEventListener("change", finite(easyInput, (v) => { settings.easy = v; }));
  emphasisSel.addEventListener("change", () => { settings.emphasis = emphasisSel.value; recolor(); });

  const gammaField = h("div", { class: "field" },
    h("label", { for: "gamma-slider" }, "Focal γ ", gammaOut), gammaInput,
    h("small", { class: "hint" }, "for focal weight and focal loss"));
  const form = h("form", { class: "controls", "aria-label": "Colouring", on: { submit: (e) => e.preventDefault() } },
    field("Colour by", metricSel), gammaField, maxField,
    h("div", { class: "field-row" }, field("Hard: loss ≥", hardInput, { hint: "nats" }), field("Easy: loss ≤", easyInput, { hint: "nats" })),
    field("Emphasise", emphasisSel));
  return { form, maxField, maxInput };
}
