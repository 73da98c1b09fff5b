// Plotly charts of a run's precomputed statistics. Plotly is a classic script (window.Plotly) served
// from the Python package, loaded when the first chart is drawn. No token text ever goes into a chart: Plotly parses a subset of HTML in
// labels, and token text is untrusted — tables show it instead.

import { rgbCss, sample } from "./colors.js";
import { h } from "./dom.js";
import { fmtInt, fmtNum, fmtPct } from "./format.js";

const FONT = { family: 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif', size: 12, color: "#374151" };
const GRID = "#e5e7eb";
const ACCENT = "#4f46e5";
const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d", "autoScale2d"] };

export function baseLayout(extra = {}) {
  const axis = { gridcolor: GRID, zerolinecolor: GRID, linecolor: "#9ca3af", ticks: "outside", tickcolor: "#9ca3af", automargin: true };
  return {
    font: FONT, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    margin: { l: 56, r: 16, t: 12, b: 48 }, height: 280, bargap: 0.05, showlegend: false,
    hoverlabel: { font: { family: FONT.family, size: 12 } },
    ...extra,
    xaxis: { ...axis, ...(extra.xaxis || {}) },
    yaxis: { ...axis, ...(extra.yaxis || {}) },
  };
}

/** A figure: a chart container with a visible caption and a text description for screen readers. */
export function figure(caption, description, testid) {
  const plot = h("div", { class: "chart", role: "img", "aria-label": description, "data-testid": testid || null });
  const el = h("figure", { class: "figure" }, plot, h("figcaption", {}, caption));
  return { el, plot };
}

const PLOTLY_SRC = "/vendor/plotly-strict.min.js";
let plotlyLoad = null;

/** Plotly, loaded on the first chart: a 5 MB script that pages without charts (a document's tokens,
 * the lists) should not wait for, nor compile. A failed load is tried again by the next chart. */
function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  plotlyLoad ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = PLOTLY_SRC;
    script.onload = () => (window.Plotly ? resolve(window.Plotly) : reject(new Error("no window.Plotly")));
    script.onerror = () => reject(new Error("did not load"));
    document.head.append(script);
  }).catch((error) => { plotlyLoad = null; throw error; });
  return plotlyLoad;
}

/** Plotly, or null after saying in `el` that charts are unavailable. */
async function plotly(el) {
  try {
    return await loadPlotly();
  } catch {
    el.replaceChildren(h("p", { class: "notice notice-error" }, `Charts are unavailable: ${PLOTLY_SRC} did not load.`));
    return null;
  }
}

async function plot(el, traces, layout) {
  const Plotly = await plotly(el);
  if (Plotly) await Plotly.newPlot(el, traces, layout, CONFIG);
}

/** Draw, or redraw in place (Plotly.react: a zoom survives when the layout sets `uirevision`). */
export async function redraw(el, traces, layout) {
  const Plotly = await plotly(el);
  if (Plotly) await Plotly.react(el, traces, layout, CONFIG);
}

export function purge(el) {
  if (window.Plotly && el) window.Plotly.purge(el);
}

const centers = (edges) => edges.slice(0, -1).map((e, i) => (e + edges[i + 1]) / 2);

function lastNonZero(counts) {
  for (let i = counts.length - 1; i >= 0; i -= 1) if (counts[i] > 0) return i;
  return counts.length - 1;
}

/** Histogram of per-token loss with median and 90th-percentile markers. */
export function lossHistogram(el, hist, quantiles = {}) {
  const x = centers(hist.edges);
  const width = hist.edges[1] - hist.edges[0];
  const top = Math.min(hist.edges.length - 1, lastNonZero(hist.counts) + 2);
  const marks = [["0.5", "median"], ["0.9", "p90"]].filter(([q]) => Number.isFinite(quantiles[q]));
  const shapes = marks.map(([q]) => ({ type: "line", x0: quantiles[q], x1: quantiles[q], yref: "paper", y0: 0, y1: 1, line: { color: "#111827", width: 1, dash: "dot" } }));
  const annotations = marks.map(([q, name]) => ({ x: quantiles[q], yref: "paper", y: 1, text: `${name} ${fmtNum(quantiles[q], 2)}`, showarrow: false, xanchor: "left", yanchor: "top", font: { size: 11 } }));
  if (hist.overflow) annotations.push({ xref: "paper", x: 1, yref: "paper", y: 1, text: `+${fmtInt(hist.overflow)} above ${hist.edges.at(-1)} nats`, showarrow: false, xanchor: "right", font: { size: 11, color: "#b91c1c" } });
  return plot(el, [{
    type: "bar", x, y: hist.counts, width, marker: { color: x.map((v) => rgbCss(sample("magma", 0.9 - 0.75 * Math.min(1, v / Math.max(1, hist.edges[top])))) ) },
    hovertemplate: "loss %{x:.2f} ± " + (width / 2).toFixed(3) + " nats<br>%{y} tokens<extra></extra>",
  }], baseLayout({
    xaxis: { title: { text: "loss = −log p (nats)" }, range: [hist.edges[0], hist.edges[top]] },
    yaxis: { title: { text: "tokens" } }, shapes, annotations,
  }));
}

/** Histogram of any [0, max] quantity (entropy, p). */
export function simpleHistogram(el, hist, xTitle, color = ACCENT) {
  const x = centers(hist.edges);
  const width = hist.edges[1] - hist.edges[0];
  const top = Math.min(hist.edges.length - 1, lastNonZero(hist.counts) + 2);
  return plot(el, [{ type: "bar", x, y: hist.counts, width, marker: { color }, hovertemplate: "%{x:.3f}: %{y} tokens<extra></extra>" }],
    baseLayout({ height: 220, xaxis: { title: { text: xTitle }, range: [hist.edges[0], hist.edges[top]] }, yaxis: { title: { text: "tokens" } } }));
}

/** Top-label reliability diagram: accuracy per confidence bin against the diagonal. */
export function reliabilityDiagram(el, calib) {
  const x = centers(calib.edges);
  const width = calib.edges[1] - calib.edges[0];
  const used = calib.counts.map((c) => c > 0);
  const acc = calib.accuracy.map((a, i) => (used[i] ? a : null));
  const conf = calib.confidence.map((c, i) => (used[i] ? c : null));
  const text = calib.counts.map((c) => `${fmtInt(c)} tokens`);
  return plot(el, [
    { type: "bar", x, y: acc, width: width * 0.92, name: "accuracy", marker: { color: ACCENT, opacity: 0.85 }, text, hovertemplate: "confidence %{x:.2f}<br>accuracy %{y:.3f}<br>%{text}<extra></extra>", textposition: "none" },
    { type: "scatter", mode: "markers", x, y: conf, name: "mean confidence", marker: { color: "#f59e0b", size: 7, symbol: "diamond" }, hovertemplate: "mean confidence %{y:.3f}<extra></extra>" },
    { type: "scatter", mode: "lines", x: [0, 1], y: [0, 1], name: "perfect calibration", line: { color: "#6b7280", dash: "dash", width: 1 }, hoverinfo: "skip" },
  ], baseLayout({
    showlegend: true, legend: { orientation: "h", y: -0.25, x: 0 }, height: 300, margin: { l: 56, r: 16, t: 12, b: 72 },
    xaxis: { title: { text: "confidence (top-1 p)" }, range: [0, 1] }, yaxis: { title: { text: "top-1 accuracy" }, range: [0, 1] },
  }));
}

/** Two runs' reliability diagrams overlaid: accuracy against mean confidence per bin, one line each. */
export function reliabilityOverlay(el, runs) {
  const traces = runs.map(({ name, calib, color }) => {
    const used = calib.counts.map((c, i) => c > 0 && calib.confidence[i] !== null);
    const pick = (values) => values.filter((_, i) => used[i]);
    return {
      type: "scatter", mode: "lines+markers", name, x: pick(calib.confidence), y: pick(calib.accuracy),
      text: pick(calib.counts).map((c) => `${fmtInt(c)} tokens`), line: { color }, marker: { color, size: 7 },
      hovertemplate: `${plotlyText(name)}<br>confidence %{x:.3f}<br>accuracy %{y:.3f}<br>%{text}<extra></extra>`,
    };
  });
  traces.push({ type: "scatter", mode: "lines", x: [0, 1], y: [0, 1], name: "perfect calibration", line: { color: "#6b7280", dash: "dash", width: 1 }, hoverinfo: "skip" });
  return plot(el, traces, baseLayout({
    showlegend: true, legend: { orientation: "h", y: -0.25, x: 0 }, height: 300, margin: { l: 56, r: 16, t: 12, b: 72 },
    xaxis: { title: { text: "mean confidence (top-1 p)" }, range: [0, 1] }, yaxis: { title: { text: "top-1 accuracy" }, range: [0, 1] },
  }));
}

// GLTR's colours: green (top 10), yellow (top 100), red (top 1000), purple (the rest).
const GLTR_COLORS = ["#22c55e", "#eab308", "#ef4444", "#a855f7"];

/** Share of tokens by rank bucket of the true token (GLTR). */
export function gltrBars(el, gltr) {
  const total = gltr.reduce((s, b) => s + b.count, 0) || 1;
  return plot(el, [{
    type: "bar", x: gltr.map((b) => `rank ${b.label}`), y: gltr.map((b) => b.count / total),
    marker: { color: gltr.map((_, i) => GLTR_COLORS[i % GLTR_COLORS.length]) },
    text: gltr.map((b) => `${fmtPct(b.count / total)} (${fmtInt(b.count)})`), textposition: "outside", cliponaxis: false,
    hovertemplate: "%{x}: %{text}<extra></extra>",
  }], baseLayout({ height: 260, yaxis: { title: { text: "share of tokens" }, tickformat: ".0%", rangemode: "tozero" } }));
}

export const gammaColor = (i, n) => rgbCss(sample("viridis", n > 1 ? (0.9 * i) / (n - 1) : 0.5));

/** Lorenz curves: share of the total gradient norm held by the hardest x% of tokens, per γ. */
export function lorenzCurves(el, focal) {
  const traces = focal.map((f, i) => {
    const n = f.lorenz.length - 1;
    return {
      type: "scatter", mode: "lines", name: `γ = ${f.gamma}`,
      x: f.lorenz.map((_, j) => j / n), y: f.lorenz, line: { color: gammaColor(i, focal.length), width: 2 },
      hovertemplate: `γ = ${f.gamma}<br>hardest %{x:.0%} of tokens hold %{y:.1%} of the gradient<extra></extra>`,
    };
  });
  traces.push({ type: "scatter", mode: "lines", x: [0, 1], y: [0, 1], name: "uniform", line: { color: "#9ca3af", dash: "dash", width: 1 }, hoverinfo: "skip" });
  return plot(el, traces, baseLayout({
    showlegend: true, legend: { orientation: "v", x: 1.02, y: 1 }, height: 300, margin: { l: 56, r: 96, t: 12, b: 48 },
    xaxis: { title: { text: "hardest fraction of tokens" }, tickformat: ".0%", range: [0, 1] },
    yaxis: { title: { text: "share of gradient norm" }, tickformat: ".0%", range: [0, 1.02] },
  }));
}

/** Mean loss by token-frequency decile (rarest types on the left). */
export function frequencyBars(el, buckets) {
  return plot(el, [{
    type: "bar", x: buckets.map((b) => `${b.bucket + 1}`), y: buckets.map((b) => b.mean_loss),
    marker: { color: buckets.map((_, i) => rgbCss(sample("viridis", 0.15 + (0.75 * i) / Math.max(1, buckets.length - 1)))) },
    customdata: buckets.map((b) => fmtInt(b.tokens)), hovertemplate: "decile %{x}: mean loss %{y:.3f}<br>%{customdata} tokens<extra></extra>",
  }], baseLayout({ height: 240, xaxis: { title: { text: "frequency decile (1 = rarest types)" }, type: "category" }, yaxis: { title: { text: "mean loss" }, rangemode: "tozero" } }));
}

// A long document is drawn as at most this many points (the maximum of each bin, so peaks survive).
const MAX_LINE_POINTS = 2000;

/** values → {x, y} with at most `limit` points: each bin's maximum, at that token's index. */
export function downsampleMax(values, limit = MAX_LINE_POINTS) {
  if (values.length <= limit) return { x: values.map((_, i) => i), y: values, binned: false };
  const bin = Math.ceil(values.length / limit);
  const x = [];
  const y = [];
  for (let start = 0; start < values.length; start += bin) {
    let at = start;
    for (let j = start + 1; j < Math.min(start + bin, values.length); j += 1) if (values[j] > values[at]) at = j;
    x.push(at);
    y.push(values[at]);
  }
  return { x, y, binned: true };
}

/** Per-token loss along a document; clicking a point calls onPick(index). */
export async function positionLoss(el, values, { title = "loss", onPick, color = ACCENT } = {}) {
  const { x, y, binned } = downsampleMax(values);
  await plot(el, [{
    type: "scatter", mode: "lines", x, y,
    line: { color, width: 1 }, fill: "tozeroy", fillcolor: "rgba(79,70,229,0.12)",
    hovertemplate: `token %{x}<br>${binned ? "max " : ""}${title} %{y:.3f}<extra></extra>`,
  }], baseLayout({ height: 150, margin: { l: 48, r: 12, t: 8, b: 36 }, xaxis: { title: { text: "token index" } }, yaxis: { title: { text: title } } }));
  if (onPick && el.on) el.on("plotly_click", (event) => { if (event.points && event.points.length) onPick(event.points[0].x); });
}

// ---- experiments: metrics against the training step, one colour per loss --------------------------

// Categorical colours for the losses of an experiment (at most 16), in the order of its config, so a
// loss keeps its colour in every chart, table and legend. Ordered for contrast between neighbours.
const SERIES_COLORS = [
  "#4f46e5", "#ea580c", "#0d9488", "#db2777", "#ca8a04", "#0284c7", "#7c3aed", "#65a30d",
  "#dc2626", "#475569", "#c026d3", "#0f766e", "#b45309", "#1d4ed8", "#be123c", "#4d7c0f",
];
export const seriesColor = (i) => SERIES_COLORS[((i % SERIES_COLORS.length) + SERIES_COLORS.length) % SERIES_COLORS.length];

/**
 * Text safe to hand to Plotly, which parses a subset of HTML in names and hover templates: only
 * letters, digits and a little punctuation survive ("<", "&", quotes become "·"). Loss specs are
 * canonical on the server ("focal-schedule:0->2"); the arrow is drawn as "→".
 */
export function plotlyText(text) {
  return String(text ?? "").replace(/->/g, "→").replace(/[^\p{L}\p{N} .,:;_+=()%→γεα≥≤−×-]/gu, "·");
}

const drawn = new WeakMap(); // chart element → the JSON of what it shows (skip identical redraws)
const pickers = new WeakMap(); // chart element → the current click handler

/**
 * A metric against the training step, one line per trace, drawn with Plotly.react so that a poll
 * updates the chart in place (zoom kept through `uirevision`). traces: [{label, color, x, y, dash,
 * width, markers, customdata}]; `pick(customdatum)` is called when a point is clicked.
 */
export async function stepChart(el, traces, {
  yTitle, yFormat = ".3f", tickformat, yType = "linear", zeroBased = false, height = 260, empty = "No data yet.", pick,
} = {}) {
  const data = traces.map((t) => ({
    type: "scatter", mode: t.markers ? "lines+markers" : "lines", name: plotlyText(t.label),
    x: t.x, y: t.y, customdata: t.customdata,
    line: { color: t.color, width: t.width || 2, dash: t.dash || "solid" },
    marker: { color: t.color, size: 7 },
    hovertemplate: `${plotlyText(t.label)}: %{y:${yFormat}}<extra></extra>`,
  }));
  const hasData = traces.some((t) => t.y.some((v) => v !== null && v !== undefined));
  const layout = baseLayout({
    height, uirevision: "keep", hovermode: "x unified",
    margin: { l: 56, r: 16, t: 12, b: 44 },
    xaxis: { title: { text: "step" }, rangemode: "tozero" },
    yaxis: { title: { text: plotlyText(yTitle) }, type: yType, tickformat: tickformat || undefined },
    annotations: hasData ? [] : [{ xref: "paper", yref: "paper", x: 0.5, y: 0.5, text: plotlyText(empty), showarrow: false, font: { size: 13, color: "#6b7280" } }],
  });
  if (zeroBased) {
    // A non-negative quantity from 0; all zeros would otherwise autorange to [−1, 1].
    const top = Math.max(0, ...traces.flatMap((t) => t.y.filter(Number.isFinite)));
    if (top > 0) layout.yaxis.rangemode = "tozero";
    else layout.yaxis.range = [0, 0.1];
  }
  if (!hasData) {
    layout.xaxis.showticklabels = false;
    layout.yaxis.showticklabels = false;
  }
  if (pick) pickers.set(el, pick);
  const key = JSON.stringify([data, layout]);
  if (drawn.get(el) === key) return;
  const Plotly = await plotly(el);
  if (!Plotly) return;
  const first = !drawn.has(el);
  drawn.set(el, key);
  await Plotly.react(el, data, layout, CONFIG);
  if (first && el.on) {
    el.on("plotly_click", (event) => {
      const handler = pickers.get(el);
      const point = event && event.points && event.points[0];
      if (handler && point && point.customdata !== undefined && point.customdata !== null) handler(point.customdata);
    });
  }
}
