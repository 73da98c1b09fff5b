// #/runs/{id}/documents/{doc_id} — the document's text with every token coloured by its loss (or p,
// entropy, focal weight, focal loss), whitespace preserved, gaps as plain text; a tooltip with each
// token's numbers and top-k alternatives on hover or keyboard focus; γ and scale controls.

import { api } from "../api.js";
import * as charts from "../charts.js";
import { makeScale, textOn } from "../colors.js";
import { card, field, select, statGrid } from "../components.js";
import { h, replace } from "../dom.js";
import { TokenTooltip } from "../token_tooltip.js";
import {
  codePointOffsets, fmtInt, fmtNum, fmtPct, focalWeight, interleave, quantile, segmentsFromTokenTexts, whitespaceKind,
} from "../tokens.js";
import { modelName } from "./runs.js";

const DEFAULT_GAMMA = 2;
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

export async function mount(ctx) {
  const { runId, docId } = ctx.params;
  const [run, doc, data] = await Promise.all([
    api.run(runId, ctx.signal), api.document(docId, ctx.signal),
    api.documentTokens(runId, docId, DEFAULT_GAMMA, ctx.signal),
  ]);
  if (!ctx.alive) return;
  ctx.setTitle(`${doc.title || `Document ${docId}`} · run #${runId}`);

  const state = {
    metric: METRICS[ctx.query.get("color")] ? ctx.query.get("color") : "loss",
    gamma: numberParam(ctx.query, "gamma", DEFAULT_GAMMA, 0, MAX_GAMMA),
    max: {
      loss: numberParam(ctx.query, "max", niceMax(quantile(data.loss, 0.99)), 0.1, 1000),
      entropy: niceMax(quantile(data.entropy, 0.99)),
    },
    hard: DEFAULT_HARD,
    easy: DEFAULT_EASY,
    emphasis: "none",
  };

  // ---- text ------------------------------------------------------------------------------------
  const segments = typeof doc.text === "string" ? interleave(doc.text, data.char_start, data.char_end) : segmentsFromTokenTexts(data.text);
  const spans = new Array(data.n_tokens);
  const continuation = new Array(data.n_tokens).fill(false);
  const textEl = h("div", {
    class: "doc-text", "data-testid": "document-text", role: "group",
    "aria-label": "Document text; each token is coloured by difficulty. Use the arrow keys to move between tokens.",
  });
  for (const seg of segments) {
    if (seg.kind === "gap") {
      textEl.append(document.createTextNode(seg.text));
      continue;
    }
    const ws = whitespaceKind(seg.text);
    const span = h("span", {
      class: ["tok", ws && `ws-${ws}`, seg.continuation && "cont"], "data-testid": "token",
      "data-index": seg.index, "data-loss": data.loss[seg.index], tabindex: seg.index === 0 ? 0 : -1,
    }, seg.text);
    spans[seg.index] = span;
    continuation[seg.index] = seg.continuation;
    textEl.append(span);
  }

  // ---- tooltip: hover, keyboard focus ----------------------------------------------------------
  const tooltip = new TokenTooltip();
  const tokenOf = (target) => (target instanceof Element ? target.closest(".tok") : null);
  const offsets = typeof doc.text === "string" ? codePointOffsets(doc.text) : null;
  const spanText = (i) => (offsets ? doc.text.slice(offsets[data.char_start[i]] ?? 0, offsets[data.char_end[i]] ?? 0) : null);
  const showToken = (span) => {
    const i = Number(span.dataset.index);
    tooltip.show(span, data, i, { gamma: state.gamma, continuation: continuation[i], spanText: spanText(i) });
  };
  textEl.addEventListener("mouseover", (e) => { const span = tokenOf(e.target); if (span) showToken(span); });
  textEl.addEventListener("mouseleave", () => {
    const focused = tokenOf(document.activeElement);
    if (focused && textEl.contains(focused)) showToken(focused); else tooltip.hide();
  });
  textEl.addEventListener("focusin", (e) => {
    const span = tokenOf(e.target);
    if (!span) return;
    for (const s of textEl.querySelectorAll('.tok[tabindex="0"]')) s.tabIndex = -1;
    span.tabIndex = 0;
    span.setAttribute("aria-describedby", tooltip.id);
    showToken(span);
  });
  textEl.addEventListener("focusout", (e) => {
    const span = tokenOf(e.target);
    if (span) span.removeAttribute("aria-describedby");
    if (!textEl.contains(e.relatedTarget)) tooltip.hide();
  });
  const focusToken = (i) => {
    const span = spans[Math.max(0, Math.min(data.n_tokens - 1, i))];
    if (span) { span.focus(); span.scrollIntoView({ block: "nearest" }); }
  };
  textEl.addEventListener("keydown", (e) => {
    const span = tokenOf(e.target);
    if (!span) return;
    const i = Number(span.dataset.index);
    const moves = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0, End: data.n_tokens - 1 };
    if (e.key in moves) { e.preventDefault(); focusToken(moves[e.key]); } else if (e.key === "Escape") tooltip.hide();
  });
  const onScroll = () => { if (tooltip.index !== null) tooltip.place(spans[tooltip.index]); };
  window.addEventListener("scroll", onScroll, { passive: true });
  ctx.onDispose(() => window.removeEventListener("scroll", onScroll));

  // ---- controls --------------------------------------------------------------------------------
  const metricSel = select(Object.entries(METRICS).map(([value, m]) => ({ value, label: m.label })), { value: state.metric, name: "color" });
  const gammaInput = h("input", { type: "range", min: 0, max: MAX_GAMMA, step: 0.1, value: state.gamma, name: "gamma" });
  const gammaOut = h("output", { class: "range-value", "aria-live": "polite" }, String(state.gamma));
  const maxInput = h("input", { type: "number", min: 0.1, step: 0.5, value: state.max.loss, name: "max" });
  const maxField = field("Scale max", maxInput, { hint: "values above share the darkest colour" });
  const hardInput = h("input", { type: "number", min: 0, step: 0.5, value: state.hard, name: "hard" });
  const easyInput = h("input", { type: "number", min: 0, step: 0.1, value: state.easy, name: "easy" });
  const emphasisSel = select([{ value: "none", label: "all tokens" }, { value: "hard", label: "hard tokens" }, { value: "easy", label: "easy tokens" }], { name: "emphasis" });
  const legendEl = h("div", { class: "legend", "data-testid": "legend" });
  const statsEl = h("div");
  const countsEl = h("p", { class: "muted small", "data-testid": "difficulty-counts" });

  const currentScale = () => {
    const m = METRICS[state.metric];
    const [min, max] = m.range || [0, state.max[m.maxKey]];
    return makeScale({ min, max, invert: Boolean(m.invert) });
  };

  const recolor = () => {
    const m = METRICS[state.metric];
    const scale = currentScale();
    for (let i = 0; i < data.n_tokens; i += 1) {
      const span = spans[i];
      if (!span) continue;
      const rgb = scale.rgb(m.value(data, i, state.gamma));
      span.style.backgroundColor = `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
      span.style.color = textOn(rgb);
      const hard = data.loss[i] >= state.hard;
      const easy = data.loss[i] <= state.easy;
      span.classList.toggle("dim", (state.emphasis === "hard" && !hard) || (state.emphasis === "easy" && !easy));
    }
    renderLegend(legendEl, m, scale);
    maxField.hidden = !m.maxKey;
    maxInput.value = m.maxKey ? state.max[m.maxKey] : "";
    const nHard = data.loss.filter((l) => l >= state.hard).length;
    const nEasy = data.loss.filter((l) => l <= state.easy).length;
    const share = (k) => fmtPct(k / (data.n_tokens || 1));
    countsEl.textContent = `${fmtInt(nHard)} hard ${nHard === 1 ? "token" : "tokens"} (${share(nHard)}) with loss ≥ ${state.hard} nats · `
      + `${fmtInt(nEasy)} easy ${nEasy === 1 ? "token" : "tokens"} (${share(nEasy)}) with loss ≤ ${state.easy} nats`;
    replace(statsEl, documentStats(data, state.gamma));
    if (tooltip.index !== null) showToken(spans[tooltip.index]);
    ctx.replaceQuery({ color: state.metric, gamma: state.gamma, max: state.max.loss });
  };

  metricSel.addEventListener("change", () => { state.metric = metricSel.value; recolor(); });
  gammaInput.addEventListener("input", () => { state.gamma = Number(gammaInput.value); gammaOut.textContent = String(state.gamma); recolor(); });
  maxInput.addEventListener("change", () => {
    const key = METRICS[state.metric].maxKey;
    const v = Number(maxInput.value);
    if (key && Number.isFinite(v) && v > 0) { state.max[key] = v; recolor(); }
  });
  hardInput.addEventListener("change", () => { const v = Number(hardInput.value); if (Number.isFinite(v)) { state.hard = v; recolor(); } });
  easyInput.addEventListener("change", () => { const v = Number(easyInput.value); if (Number.isFinite(v)) { state.easy = v; recolor(); } });
  emphasisSel.addEventListener("change", () => { state.emphasis = emphasisSel.value; recolor(); });

  const gammaField = h("div", { class: "field" },
    h("label", { for: "gamma-slider" }, "Focal γ ", gammaOut), Object.assign(gammaInput, { id: "gamma-slider" }),
    h("small", { class: "hint" }, "for focal weight and focal loss"));
  const controls = h("form", { class: "controls", "aria-label": "Colouring", on: { submit: (e) => e.preventDefault() } },
    field("Colour by", metricSel), gammaField, maxField,
    h("div", { class: "field-row" }, field("Hard: loss ≥", hardInput, { hint: "nats" }), field("Easy: loss ≤", easyInput, { hint: "nats" })),
    field("Emphasise", emphasisSel));

  // ---- neighbours, header, chart ----------------------------------------------------------------
  const nav = h("div", { class: "doc-nav" });
  neighbours(runId, docId, ctx.signal).then(({ prev, next, position, total }) => {
    if (!ctx.alive) return;
    replace(nav,
      prev ? h("a", { class: "btn btn-small", href: `#/runs/${runId}/documents/${prev.document_id}`, rel: "prev" }, `← ${prev.title || "previous"}`) : null,
      position ? h("span", { class: "muted small" }, `document ${position} of ${fmtInt(total)}`) : null,
      next ? h("a", { class: "btn btn-small", href: `#/runs/${runId}/documents/${next.document_id}`, rel: "next" }, `${next.title || "next"} →`) : null);
  }).catch(() => {});

  const lossChart = charts.figure("Loss of each token along the document; click to jump to a token.", "Loss by token position", "position-loss");
  ctx.onDispose(() => charts.purge(lossChart.plot));

  replace(ctx.root,
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" },
      h("a", { href: "#/runs" }, "Runs"), h("span", { "aria-hidden": "true" }, " / "),
      h("a", { href: `#/runs/${runId}` }, `Run #${runId}`), h("span", { "aria-hidden": "true" }, " / "), doc.title || `Document ${docId}`),
    h("div", { class: "page-head" },
      h("div", {},
        h("h1", {}, doc.title || `Document ${docId}`),
        h("p", { class: "lede" }, `${doc.source} · ${fmtInt(doc.n_chars)} characters · scored by ${modelName(run.checkpoint)} on ${run.corpus.name}`)),
      nav),
    statsEl,
    h("div", { class: "doc-layout" },
      h("div", { class: "doc-main" },
        h("div", { class: "doc-toolbar" }, legendEl, countsEl),
        textEl),
      h("aside", { class: "doc-side" }, card("Colouring", controls), card("Loss along the document", lossChart.el))),
    tooltip.el);
  recolor();
  charts.positionLoss(lossChart.plot, data.loss, { onPick: (i) => focusToken(i) }).catch(() => {});
}

function documentStats(data, gamma) {
  const n = data.n_tokens;
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  const meanLoss = n ? sum(data.loss) / n : NaN;
  const weights = data.logprob.map((lp) => focalWeight(lp, gamma));
  const sw = sum(weights);
  const sw2 = sum(weights.map((w) => w * w));
  return statGrid([
    { label: "Tokens", value: fmtInt(n) },
    { label: "Mean loss", value: fmtNum(meanLoss, 3), hint: "nats per token" },
    { label: "Perplexity", value: fmtNum(Math.exp(meanLoss), Math.exp(meanLoss) >= 100 ? 0 : 2) },
    { label: "Max loss", value: fmtNum(n ? data.loss.reduce((a, b) => (b > a ? b : a), -Infinity) : NaN, 2) },
    { label: "Top-1 accuracy", value: fmtPct(n ? data.rank.filter((r) => r === 0).length / n : NaN), hint: "share of tokens ranked first" },
    { label: "Mean entropy", value: fmtNum(n ? sum(data.entropy) / n : NaN, 3), hint: "nats" },
    { label: `Effective tokens (γ=${gamma})`, value: fmtPct(sw2 > 0 ? (sw * sw) / sw2 / n : NaN), hint: "(Σw)² / Σw² as a share of tokens" },
  ], { testid: "document-stats" });
}

function renderLegend(el, metric, scale) {
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

async function neighbours(runId, docId, signal) {
  const page = await api.runDocuments(runId, { limit: 500 }, signal);
  const scored = page.items;
  const k = scored.findIndex((d) => d.document_id === docId);
  if (k < 0) return { total: page.total };
  const find = (from, step) => {
    for (let j = from; j >= 0 && j < scored.length; j += step) if (scored[j].scored) return scored[j];
    return null;
  };
  return { prev: find(k - 1, -1), next: find(k + 1, 1), position: k + 1, total: page.total };
}
