// The colour scale's legend: what is coloured, the gradient from easy to hard, and round ticks.

import { h, replace } from "../../dom.js";
import { fmtNum } from "../../format.js";

/** Fill `el` with the legend of `metric` (an entry of METRICS) on `scale` (colors.js makeScale). */
export function renderLegend(el, metric, scale) {
  if (metric.categories) {
    replace(el, h("div", { class: "legend-title" }, metric.label),
      h("ul", { class: "legend-swatches", "data-testid": "legend-categories" }, metric.categories.map((label, k) => h("li", {},
        h("span", { class: "swatch", style: { background: metric.colours.background[k] }, "aria-hidden": "true" }), label))));
    return;
  }
  const ticks = scale.ticks(4);
  const unit = metric.unit ? ` (${metric.unit})` : "";
  const clamped = metric.maxKey ? ` — clamped at ${fmtNum(scale.max, 1)}` : "";
  replace(el,
    h("div", { class: "legend-title" }, `${metric.label}${unit}${clamped}`),
    h("div", { class: "legend-bar", style: { background: scale.gradient() }, role: "img", "aria-label": `colour scale from easy (pale) to hard (dark) for ${metric.label}` }),
    h("div", { class: "legend-ticks" }, ticks.map((t) => h("span", { style: { left: `${100 * t.position}%` } },
      `${Number(t.value.toPrecision(3))}${metric.maxKey && t.position === 1 ? "+" : ""}`))),
    h("div", { class: "legend-ends" }, h("span", {}, "easy"), h("span", {}, "hard")));
}
