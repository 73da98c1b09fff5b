// Plotly charts of the statistics across the checkpoints of a series: one token's p and loss against
// the step, learned-at histograms, and the cartography scatter. As in charts.js, no token text goes
// into a chart (Plotly parses a subset of HTML in labels): the cartography's hover is a DOM element
// the view fills through textContent, fed by `onHover`.

import { baseLayout, redraw } from "./charts.js";
import { rgbCss, sample } from "./colors.js";
import { fmtInt } from "./format.js";

const P_COLOR = "#4f46e5";
const LOSS_COLOR = "#ea580c";
// Cartography regions, coloured as the paper's map reads: green learns easily, amber wavers, red stays hard.
export const REGION_COLORS = { "easy-to-learn": "#059669", ambiguous: "#d97706", "hard-to-learn": "#dc2626" };

/** p (left axis) and loss (right axis) of one token (api.tokenTrajectory) at each step; `mark` draws a line at that step. */
export function tokenTrajectoryChart(el, t, mark) {
  const traces = [
    { type: "scatter", mode: "lines+markers", name: "p", x: t.steps, y: t.p, line: { color: P_COLOR, width: 2 }, marker: { size: 6 }, hovertemplate: "step %{x}: p %{y:.4f}<extra></extra>" },
    { type: "scatter", mode: "lines+markers", name: "loss", x: t.steps, y: t.loss, yaxis: "y2", line: { color: LOSS_COLOR, width: 2, dash: "dot" }, marker: { size: 6 }, hovertemplate: "step %{x}: loss %{y:.3f} nats<extra></extra>" },
  ];
  const shapes = Number.isFinite(mark)
    ? [{ type: "line", x0: mark, x1: mark, yref: "paper", y0: 0, y1: 1, line: { color: "#111827", width: 1, dash: "dash" } }]
    : [];
  return redraw(el, traces, baseLayout({
    height: 200, margin: { l: 44, r: 44, t: 8, b: 36 }, showlegend: true, legend: { orientation: "h", x: 0, y: 1.15 }, shapes,
    xaxis: { title: { text: "step" } },
    yaxis: { title: { text: "p" }, range: [0, 1.02], color: P_COLOR },
    yaxis2: { title: { text: "loss" }, overlaying: "y", side: "right", rangemode: "tozero", showgrid: false, color: LOSS_COLOR },
  }));
}

/** Category labels of a learned-at histogram: each step, then "never". */
const learnedAtCategories = (steps) => [...steps.map((s) => `step ${s}`), "never"];

/** Occurrences learned at each step (and never), over the whole corpus. */
export function learnedAtChart(el, learned) {
  const x = learnedAtCategories(learned.steps);
  const y = [...learned.overall.counts, learned.overall.never];
  const colors = x.map((_, i) => (i === x.length - 1 ? "#9ca3af" : rgbCss(sample("viridis", 0.15 + (0.75 * i) / Math.max(1, x.length - 2)))));
  return redraw(el, [{
    type: "bar", x, y, marker: { color: colors }, hovertemplate: "%{x}: %{y:,} occurrences<extra></extra>",
  }], baseLayout({ height: 260, xaxis: { type: "category", title: { text: "learned at (first step after which p ≥ τ_easy throughout)" } }, yaxis: { title: { text: "occurrences" }, rangemode: "tozero" } }));
}

export const bucketColor = (b, n) => rgbCss(sample("viridis", n > 1 ? 0.1 + (0.8 * b) / (n - 1) : 0.5));

/**
 * The same histogram per token-frequency bucket: `stacked` draws counts stacked, otherwise bars
 * grouped by step with each bucket's share of its own occurrences (buckets compare at any size).
 */
export function learnedAtByBucketChart(el, learned, { stacked }) {
  const x = learnedAtCategories(learned.steps);
  const n = learned.by_bucket.length;
  const traces = learned.by_bucket.map((b) => {
    const counts = [...b.counts, b.never];
    const y = stacked ? counts : counts.map((c) => (b.tokens ? c / b.tokens : 0));
    return {
      type: "bar", name: `bucket ${b.bucket + 1}${b.bucket === 0 ? " (rarest)" : b.bucket === n - 1 ? " (most frequent)" : ""}`,
      x, y, marker: { color: bucketColor(b.bucket, n) }, customdata: counts,
      hovertemplate: `bucket ${b.bucket + 1}, %{x}: %{customdata:,} of ${fmtInt(b.tokens)}<extra></extra>`,
    };
  });
  return redraw(el, traces, baseLayout({
    height: 300, barmode: stacked ? "stack" : "group", showlegend: true, legend: { orientation: "h", x: 0, y: -0.3 },
    margin: { l: 56, r: 16, t: 12, b: 90 },
    xaxis: { type: "category" },
    yaxis: stacked ? { title: { text: "occurrences" } } : { title: { text: "share of the bucket" }, tickformat: ".0%", rangemode: "tozero" },
  }));
}

/**
 * Confidence (mean p) against variability (std p) of the sampled occurrences (api.cartography's
 * points), one WebGL trace per region. `onHover(index, mouseEvent)` gets the point's index in
 * `points`; `onUnhover()` when the pointer leaves it.
 */
export async function cartographyScatter(el, cartography, { onHover, onUnhover }) {
  const { points, region_names: names } = cartography;
  const traces = names.map((name, r) => {
    const members = [];
    for (let i = 0; i < points.region.length; i += 1) if (points.region[i] === r) members.push(i);
    return {
      type: "scattergl", mode: "markers", name, x: members.map((i) => points.variability[i]), y: members.map((i) => points.confidence[i]),
      customdata: members, marker: { color: REGION_COLORS[name], size: 5, opacity: 0.6 }, hoverinfo: "none",
    };
  });
  const { confidence_threshold: c, variability_threshold: v } = cartography;
  const guide = { color: "#6b7280", width: 1, dash: "dot" };
  await redraw(el, traces, baseLayout({
    height: 420, showlegend: true, legend: { orientation: "h", x: 0, y: 1.08 }, hovermode: "closest", uirevision: "keep",
    xaxis: { title: { text: "variability (std of p over the steps)" }, rangemode: "tozero" },
    yaxis: { title: { text: "confidence (mean p)" }, range: [-0.02, 1.02] },
    shapes: [
      { type: "line", xref: "x", x0: v, x1: v, yref: "paper", y0: 0, y1: 1, line: guide },
      { type: "line", yref: "y", y0: c, y1: c, xref: "paper", x0: 0, x1: 1, line: guide },
    ],
  }));
  const wired = hovers.has(el);
  hovers.set(el, { onHover, onUnhover });
  if (wired || !el.on) return;
  el.on("plotly_hover", (event) => {
    const point = event && event.points && event.points[0];
    if (point && Number.isInteger(point.customdata)) hovers.get(el).onHover(point.customdata, event.event);
  });
  el.on("plotly_unhover", () => hovers.get(el).onUnhover());
}

const hovers = new WeakMap(); // scatter element → its current hover handlers (a redraw replaces them)
