// What the tokens are coloured by and how: the metric (loss, p, each definition of a hard token, GLTR's
// rank buckets, focal weight, focal loss, the focal gradient multiplier g(p, γ)),
// focal γ, the scale's top, the hard / easy thresholds and which tokens to emphasise. The settings
// start from the address (?color=&gamma=&max=&hard=&easy=&emphasis=) and are written back to it, so a view can be shared.
//
// The numbers coloured are a *source*: the run's own tokens, or one checkpoint's arrays when the
// scrubber moves (`show(source)`). A source has n_tokens and per-token loss, p, logprob, entropy, rank
// and top1_logprob (log p of the model's top-1; the run's own tokens get it from their top-k here).

import { field, select } from "../../components.js";
import { h, replace } from "../../dom.js";
import { fmtInt, fmtPct } from "../../format.js";
import { GLTR_LABELS, gltrRgb } from "../../colors.js";
import { focalWeight, gltrBucket, gradientMultiplier, quantile } from "../../tokens.js";
import { renderLegend } from "./legend.js";
import { TokenPainter, palette } from "./painter.js";
import { afterPaint } from "./paint_timing.js";
import { documentStats } from "./stats.js";

export const DEFAULT_GAMMA = 2;
const MAX_GAMMA = 10;
// Loss thresholds for "hard" and "easy" (nats): 5 nats is p < 0.7%, 0.5 nats is p > 61%.
const DEFAULT_HARD = 5;
const DEFAULT_EASY = 0.5;
const EMPHASES = ["none", "hard", "easy"];

const GLTR_PALETTE = palette(gltrRgb);

// Each colouring: its value per token, its range, and whether high values are easy (p). The
// definitions of a hard token are the API's (app/analytics/hardness.py, docs/formulas.md).
const METRICS = {
  loss: { label: "loss", unit: "nats", maxKey: "loss", value: (d, i) => d.loss[i] },
  p: { label: "p (true token)", unit: "", range: [0, 1], invert: true, value: (d, i) => d.p[i] },
  one_minus_p: { label: "1 − p", unit: "", range: [0, 1], value: (d, i) => -Math.expm1(d.logprob[i]) },
  rank: { label: "rank, log₁₀(rank + 1)", unit: "", range: [0, 4], value: (d, i) => Math.log10(d.rank[i] + 1) },
  gltr: { label: "GLTR rank bucket", unit: "", range: [0, 3], categories: GLTR_LABELS, colours: GLTR_PALETTE, value: (d, i) => gltrBucket(d.rank[i]) },
  entropy: { label: "entropy", unit: "nats", maxKey: "entropy", value: (d, i) => d.entropy[i] },
  surprise: { label: "surprise, loss − entropy", unit: "nats", maxKey: "loss", value: (d, i) => d.loss[i] - d.entropy[i] },
  margin: { label: "margin, p(top-1) − p", unit: "", range: [0, 1], value: (d, i) => Math.max(0, Math.exp(d.top1_logprob[i]) - d.p[i]) },
  focal_weight: { label: "focal weight (1−p)^γ", unit: "", range: [0, 1], value: (d, i, g) => focalWeight(d.logprob[i], g) },
  focal_loss: { label: "focal loss (1−p)^γ·loss", unit: "nats", maxKey: "loss", value: (d, i, g) => focalWeight(d.logprob[i], g) * d.loss[i] },
  gradient_multiplier: { label: "g(p, γ): focal ÷ CE gradient", unit: "", range: [0, 1.5], value: (d, i, g) => gradientMultiplier(d.logprob[i], g) },
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
    hard: numberParam(query, "hard", DEFAULT_HARD, 0, 1000),
    easy: numberParam(query, "easy", DEFAULT_EASY, 0, 1000),
    emphasis: EMPHASES.includes(query.get("emphasis")) ? query.get("emphasis") : "none",
  };
}

/**
 * The colouring of `text` (documentText): {controls, legendEl, countsEl, statsEl, recolor(),
 * show(source)}. `recolor` paints every token from the current source and redraws the legend, counts,
 * statistics, `onChange()` (the tooltip) and the address; `show` switches the source (a checkpoint)
 * and recolours.
 */
export function colouring(ctx, data, text, settings, onChange) {
  const legendEl = h("div", { class: "legend", "data-testid": "legend" });
  const statsEl = h("div");
  const countsEl = h("p", { class: "muted small", "data-testid": "difficulty-counts" });
  const painter = new TokenPainter(text);
  ctx.onDispose(() => painter.cancel());
  data.top1_logprob = data.top_logprobs.map((alternatives) => alternatives[0]);
  let source = data;
  const recolor = () => {
    const metric = METRICS[settings.metric];
    const [min, max] = metric.range || [0, settings.max[metric.maxKey]];
    const scale = painter.paint({
      min, max, invert: Boolean(metric.invert), n: source.n_tokens,
      value: (i) => metric.value(source, i, settings.gamma),
      dim: emphasisOf(source, settings), colours: metric.colours,
    });
    renderLegend(legendEl, metric, scale);
    controls.maxField.hidden = !metric.maxKey;
    controls.maxInput.value = metric.maxKey ? settings.max[metric.maxKey] : "";
    countsEl.textContent = difficultyCounts(source, settings);
    replace(statsEl, documentStats(source, settings.gamma));
    onChange();
    ctx.updateQuery({ color: settings.metric, gamma: settings.gamma, max: settings.max.loss, hard: settings.hard,
      easy: settings.easy, emphasis: settings.emphasis === "none" ? null : settings.emphasis });
  };
  const controls = colourControls(settings, recolor);
  const show = (next) => {
    source = next;
    recolor();
  };
  return { controls: controls.form, legendEl, countsEl, statsEl, recolor, show };
}

/** Which tokens the emphasis dims (null: none): those not hard, or not easy. */
function emphasisOf(source, settings) {
  if (settings.emphasis === "hard") return (i) => !(source.loss[i] >= settings.hard);
  if (settings.emphasis === "easy") return (i) => !(source.loss[i] <= settings.easy);
  return null;
}

function difficultyCounts(source, settings) {
  let nHard = 0;
  let nEasy = 0;
  for (let i = 0; i < source.n_tokens; i += 1) {
    if (source.loss[i] >= settings.hard) nHard += 1;
    if (source.loss[i] <= settings.easy) nEasy += 1;
  }
  const share = (k) => fmtPct(k / (source.n_tokens || 1));
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
  const emphasisSel = select([{ value: "none", label: "all tokens" }, { value: "hard", label: "hard tokens" }, { value: "easy", label: "easy tokens" }], { name: "emphasis", value: settings.emphasis });
  const finite = (input, set) => () => { const v = Number(input.value); if (Number.isFinite(v)) { set(v); recolor(); } };

  metricSel.addEventListener("change", () => { settings.metric = metricSel.value; recolor(); });
  gammaInput.addEventListener("input", (event) => {
    settings.gamma = Number(gammaInput.value);
    gammaOut.textContent = String(settings.gamma);
    recolor();
    afterPaint("gamma-recolour", event.timeStamp);
  });
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
