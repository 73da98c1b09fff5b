// #/compare?a=RUN&b=RUN&doc=ID&range=M — model A against model B on one corpus, token by token (or by
// character-span segments when their tokenizers differ): the corpus-wide summary (views/compare/
// summary.js) and one document coloured by Δ log p (views/compare/diff_text.js). Every choice is in
// the address, so a shared link shows what its sender saw.

import { api } from "../api.js";
import * as charts from "../charts.js";
import { card, errorBox, field } from "../components.js";
import { h, replace } from "../dom.js";
import { modelName } from "../format.js";
import { compareSummary } from "./compare/summary.js";
import { deltaRange, diffText } from "./compare/diff_text.js";

export async function mount(ctx) {
  const a = Number(ctx.query.get("a"));
  const b = Number(ctx.query.get("b"));
  ctx.setTitle("Compare");
  if (!(a > 0 && b > 0)) {
    replace(ctx.root, h("h1", {}, "Compare two runs"), card("Runs on the same corpus", pickRuns(ctx)));
    return;
  }
  const [runA, runB, summary] = await Promise.all([api.run(a, ctx.signal), api.run(b, ctx.signal), api.compare(a, b, {}, ctx.signal)]);
  if (!ctx.alive) return;
  ctx.setTitle(`${modelName(runA.checkpoint)} vs ${modelName(runB.checkpoint)}`);
  const docHref = (docId) => `#/compare?a=${a}&b=${b}&doc=${docId}`;
  const parts = compareSummary(summary, docHref);
  ctx.onDispose(() => parts.plots.forEach(charts.purge));
  const docSlot = h("div", { "data-testid": "compare-document" });
  replace(ctx.root,
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" }, h("a", { href: "#/runs" }, "Runs"), h("span", { "aria-hidden": "true" }, " / "), "Compare"),
    h("div", { class: "page-head" }, h("div", {},
      h("h1", {}, `A: ${modelName(runA.checkpoint)} `, h("span", { class: "h1-sub" }, `vs B: ${modelName(runB.checkpoint)}`)),
      h("p", { class: "lede" }, `Runs `, h("a", { href: `#/runs/${a}` }, `#${a}`), " and ", h("a", { href: `#/runs/${b}` }, `#${b}`),
        ` on ${runA.corpus.name}. Δ = log p_B − log p_A: positive where B gives the text more probability.`))),
    parts.el, docSlot);
  parts.draw().catch((error) => { if (ctx.alive) parts.el.append(errorBox(error, { title: "The chart failed" })); });
  const firstUnit = summary.b_wins_most[0] || summary.b_loses_most[0];
  const docId = Number(ctx.query.get("doc")) || (firstUnit ? firstUnit.document_id : 0);
  if (docId) await showDocument(ctx, { a, b, docId, slot: docSlot });
}

async function showDocument(ctx, { a, b, docId, slot }) {
  try {
    const [doc, data] = await Promise.all([api.document(docId, ctx.signal), api.compareDocument(a, b, docId, ctx.signal)]);
    if (!ctx.alive) return;
    const range = deltaRange(data.units.delta, Number(ctx.query.get("range")));
    const text = diffText(doc, data, range);
    ctx.updateQuery({ doc: docId });
    replace(slot, card(`${doc.title || `Document ${docId}`} — ${data.alignment} alignment, ${data.n_units} units, total Δ ${data.total_delta.toFixed(3)} nats`,
      text.legendEl, rangeControl(ctx, range, () => showDocument(ctx, { a, b, docId, slot })), text.el), text.tooltip);
  } catch (error) {
    if (ctx.alive && error.name !== "AbortError") replace(slot, errorBox(error, { title: "Cannot show this document" }));
  }
}

/** The scale's half-width, kept in the address (?range=); a change redraws the document (`redraw`). */
function rangeControl(ctx, range, redraw) {
  const input = h("input", { type: "number", min: 0.01, step: 0.1, value: range, name: "range" });
  input.addEventListener("change", () => {
    const v = Number(input.value);
    if (Number.isFinite(v) && v > 0) { ctx.updateQuery({ range: v }); redraw(); }
  });
  return field("Colour scale ± (nats)", input, { hint: "|Δ| at or beyond it gets the darkest colour" });
}

/** Two run ids; "Compare" opens #/compare?a=&b=. */
function pickRuns(ctx) {
  const a = h("input", { type: "number", min: 1, name: "a", required: true, value: ctx.query.get("a") || null });
  const b = h("input", { type: "number", min: 1, name: "b", required: true });
  const form = h("form", { class: "controls", on: { submit: (e) => { e.preventDefault(); window.location.hash = `#/compare?a=${a.value}&b=${b.value}`; } } },
    field("Run A", a), field("Run B", b), h("button", { type: "submit", class: "btn" }, "Compare"));
  ctx.onDispose(() => form.remove());
  return form;
}
