// One document coloured by Δ = log p_B − log p_A per unit (a token, or a character-span segment when
// the runs' tokenizers differ), on a diverging colour-blind-safe scale: orange where B is worse, white
// at 0, purple where B is better. A unit's tooltip lists both models' tokens in it with p, rank and
// top-k. Token text goes in through textContent only.

import { divergingRgb, rgbCss, textOn } from "../../colors.js";
import { h, replace } from "../../dom.js";
import { fmtInt, fmtNum, fmtProb } from "../../format.js";
import { interleave, quantile, visibleText } from "../../tokens.js";

const GAP_PX = 8;

/** The scale's half-width M (nats): |Δ| ≥ M gets the darkest colour. Default: the 95th percentile of |Δ|. */
export function deltaRange(deltas, requested) {
  if (Number.isFinite(requested) && requested > 0) return requested;
  const top = quantile(deltas.map(Math.abs), 0.95);
  return Number.isFinite(top) && top > 0 ? Number(top.toPrecision(2)) : 1;
}

/** Δ → [r, g, b] on the scale −M … +M. */
export const deltaRgb = (delta, range) => divergingRgb(0.5 + delta / (2 * range));

/** {el, legendEl}: the coloured text of `data` (api.compareDocument) over `doc.text`, with its tooltip. */
export function diffText(doc, data, range) {
  const units = data.units;
  const el = h("div", { class: "doc-text", "data-testid": "compare-text", role: "group", "aria-label": "Document text coloured by Δ log p (B − A)" });
  const tooltip = h("div", { class: "token-tooltip", role: "tooltip", "data-testid": "compare-tooltip", hidden: true });
  for (const seg of interleave(doc.text, units.char_start, units.char_end)) {
    if (seg.kind === "gap") { el.append(document.createTextNode(seg.text)); continue; }
    const delta = units.delta[seg.index];
    const rgb = deltaRgb(delta, range);
    el.append(h("span", {
      class: "tok", "data-testid": "unit", "data-index": seg.index, "data-delta": delta, tabindex: 0,
      style: { backgroundColor: rgbCss(rgb), color: textOn(rgb) },
    }, seg.text));
  }
  const show = (span) => {
    fillTooltip(tooltip, data, Number(span.dataset.index));
    tooltip.hidden = false;
    place(tooltip, span);
  };
  const unitOf = (target) => (target instanceof Element ? target.closest(".tok") : null);
  el.addEventListener("mouseover", (e) => { const span = unitOf(e.target); if (span) show(span); });
  el.addEventListener("focusin", (e) => { const span = unitOf(e.target); if (span) show(span); });
  el.addEventListener("mouseleave", () => { tooltip.hidden = true; });
  return { el, tooltip, legendEl: legend(range) };
}

function legend(range) {
  const stops = Array.from({ length: 17 }, (_, i) => `${rgbCss(divergingRgb(i / 16))} ${(100 * i / 16).toFixed(1)}%`);
  return h("div", { class: "legend", "data-testid": "compare-legend" },
    h("div", { class: "legend-title" }, `Δ log p = log p_B − log p_A (nats), clamped at ±${fmtNum(range, 2)}`),
    h("div", { class: "legend-bar", "data-testid": "compare-legend-bar", style: { background: `linear-gradient(to right, ${stops.join(", ")})` },
      role: "img", "aria-label": "diverging scale: orange where B is worse, white at 0, purple where B is better" }),
    h("div", { class: "legend-ends" }, h("span", {}, `B worse (−${fmtNum(range, 2)})`), h("span", {}, "0"), h("span", {}, `B better (+${fmtNum(range, 2)})`)));
}

function fillTooltip(tooltip, data, unit) {
  const u = data.units;
  const row = (label, value) => h("div", { class: "tt-row" }, h("dt", {}, label), h("dd", {}, value));
  replace(tooltip,
    h("div", { class: "tt-head" }, h("code", { class: "tok-chip tok-chip-large" }, visibleText(u.text[unit])),
      h("span", { class: "muted small" }, `${data.alignment} ${fmtInt(unit)}`)),
    h("dl", { class: "tt-grid" },
      row("Δ log p", h("span", { "data-testid": "tooltip-delta" }, fmtNum(u.delta[unit], 4))),
      u.delta_p ? row("Δ p", fmtNum(u.delta_p[unit], 4)) : null,
      row("log p A", fmtNum(u.logprob_a[unit], 4)), row("log p B", fmtNum(u.logprob_b[unit], 4))),
    runTokens("A", data.a, unit), runTokens("B", data.b, unit));
}

/** The run's tokens in `unit`: text, p, rank and its top-k alternatives. */
function runTokens(label, run, unit) {
  const rows = [];
  for (let i = 0; i < run.n_tokens; i += 1) {
    if (run.unit[i] !== unit) continue;
    const alternatives = run.top_ids[i].map((id, j) => `${run.top_text[i][j] ? visibleText(run.top_text[i][j]) : `id ${id}`} ${fmtProb(Math.exp(run.top_logprobs[i][j]))}`);
    rows.push(h("li", {}, h("code", { class: "tok-chip" }, visibleText(run.text[i])),
      ` p ${fmtProb(Math.exp(run.logprob[i]))} · rank ${fmtInt(run.rank[i])}`,
      h("div", { class: "muted small" }, `top-${alternatives.length}: ${alternatives.join(" · ")}`)));
  }
  return h("div", {}, h("div", { class: "tt-alts-title" }, `Model ${label} (run #${run.run_id})`), h("ul", { class: "tt-alts" }, rows));
}

function place(tooltip, anchor) {
  const box = anchor.getBoundingClientRect();
  const tip = tooltip.getBoundingClientRect();
  const vw = document.documentElement.clientWidth;
  tooltip.style.top = `${Math.round(box.bottom + GAP_PX)}px`;
  tooltip.style.left = `${Math.round(Math.max(GAP_PX, Math.min(box.left, vw - tip.width - GAP_PX)))}px`;
}
