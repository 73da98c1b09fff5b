// Transitions between two checkpoints (Rho-1, section 2): every token occurrence is H (loss above τ)
// or L at step a and at step b; the 2×2 matrix counts the four moves. Clicking a cell lists its
// occurrences, paged, each with its context and a link into the document at step b.
// Query: ?a=&b=&tau=&cell=&offset=.

import { api, latestOnly } from "../../api.js";
import { card, errorBox, field, loading, pager, select, table } from "../../components.js";
import { h, replace } from "../../dom.js";
import { fmtInt, fmtNum, fmtPct } from "../../format.js";
import { visibleText } from "../../tokens.js";
import { numberParam, offsetParam, stepParam, wordParam } from "./state.js";

// The server's default τ: ln 2 nats, the loss of p = 1/2 (L ⇔ the true token holds the majority of the mass).
const DEFAULT_TAU = Math.LN2;
const MAX_TAU = 100;
const PAGE = 25;
const CELLS = {
  HH: { name: "H→H", about: "hard at both steps" },
  HL: { name: "H→L", about: "learned: hard at a, easy at b" },
  LH: { name: "L→H", about: "forgotten: easy at a, hard at b" },
  LL: { name: "L→L", about: "easy at both steps" },
};

export function transitionsPanel(ctx, at, steps) {
  const q = ctx.query;
  const state = {
    a: stepParam(q, "a", steps, steps[0]), b: stepParam(q, "b", steps, steps.at(-1)),
    tau: numberParam(q, "tau", DEFAULT_TAU, 0, MAX_TAU), cell: wordParam(q, "cell", Object.keys(CELLS), null),
    offset: offsetParam(q, "offset"),
  };
  const matrixEl = h("div", { "data-testid": "transition-matrix" });
  const listEl = h("div", { "data-testid": "occurrences" });
  const latestMatrix = latestOnly(ctx);
  const latestList = latestOnly(ctx);
  const save = () => ctx.updateQuery({ a: state.a, b: state.b, tau: state.tau === DEFAULT_TAU ? null : state.tau, cell: state.cell, offset: state.offset || null });
  const params = () => ({ a: state.a, b: state.b, tau: state.tau });

  const loadList = async () => {
    if (!state.cell) { listEl.replaceChildren(); return; }
    if (!listEl.hasChildNodes()) replace(listEl, loading());
    listEl.setAttribute("aria-busy", "true");
    const page = await latestList(api.transitionOccurrences(at, { ...params(), cell: state.cell, offset: state.offset, limit: PAGE }, ctx.signal));
    if (!page) return;
    listEl.removeAttribute("aria-busy");
    replace(listEl, occurrencesCard(page, (offset) => { state.offset = offset; save(); loadList().catch(showIn(listEl)); }));
  };
  const pick = (cell) => { state.cell = cell; state.offset = 0; save(); load().catch(showIn(matrixEl)); };
  let shown = null; // the matrix on the page, updated in place by later answers
  const load = async () => {
    // The shown matrix stays until the new one arrives, and its cells stay the same elements after:
    // a click on one (which may be what ended an edit of τ, and so started this load) must find its
    // cell even when the answer lands between the button's press and its release.
    if (!shown) replace(matrixEl, loading());
    matrixEl.setAttribute("aria-busy", "true");
    const answer = await latestMatrix(api.transitions(at, params(), ctx.signal));
    if (!answer) return;
    matrixEl.removeAttribute("aria-busy");
    if (!shown) {
      shown = matrix(pick);
      replace(matrixEl, shown.el);
    }
    shown.show(answer, state.cell);
    await loadList();
  };
  const showIn = (el) => (error) => {
    if (!ctx.alive || error.name === "AbortError") return;
    el.removeAttribute("aria-busy");
    replace(el, errorBox(error, { title: "The server refused this" }));
  };
  const form = question(state, steps, () => { state.offset = 0; save(); load().catch(showIn(matrixEl)); });
  load().catch(showIn(matrixEl));
  return { el: h("div", { class: "tab-panel" }, card("Between two checkpoints", form, matrixEl), listEl), dispose: () => {} };
}

function question(state, steps, onChange) {
  const stepOptions = steps.map((s) => ({ value: s, label: `step ${fmtInt(s)}` }));
  const aSel = select(stepOptions, { value: state.a, name: "a" });
  const bSel = select(stepOptions, { value: state.b, name: "b" });
  const tauInput = h("input", { type: "number", name: "tau", min: 0, max: MAX_TAU, step: 0.05, value: Number(state.tau.toFixed(4)) });
  aSel.addEventListener("change", () => { state.a = Number(aSel.value); onChange(); });
  bSel.addEventListener("change", () => { state.b = Number(bSel.value); onChange(); });
  tauInput.addEventListener("change", () => {
    const v = Number(tauInput.value);
    // Leaving the field fires "change" again after an edit already applied: only a new τ reloads.
    if (tauInput.value !== "" && Number.isFinite(v) && v !== state.tau) { state.tau = v; onChange(); }
  });
  return h("form", { class: "question", "aria-label": "Transition question", on: { submit: (e) => e.preventDefault() } },
    field("Step a", aSel), field("Step b", bSel),
    field("Loss threshold τ (nats)", tauInput, {
      hint: "H: loss > τ, L: loss ≤ τ. Default ln 2 ≈ 0.693: L means p ≥ ½, the true token holds the majority of the probability.",
    }));
}

/** Rows: H, L at step a; columns: H, L at step b; each cell a button that lists its occurrences.
 * Built once; `show(answer, selected)` writes an answer into the same elements. */
function matrix(pick) {
  const parts = {};
  const cellButton = (cell) => {
    const count = h("span", { class: "cell-count", "data-testid": "cell-count" });
    const share = h("span", { class: "cell-share" });
    const button = h("button", {
      type: "button", class: "transition-cell", "data-testid": "transition-cell", dataset: { cell },
      title: CELLS[cell].about, on: { click: () => pick(cell) },
    }, h("span", { class: "cell-name" }, `${CELLS[cell].name} `, h("span", { class: "muted small" }, CELLS[cell].about)), count, share);
    parts[cell] = { button, count, share };
    return button;
  };
  const [hb, lb, ha, la] = [h("th", { scope: "col" }), h("th", { scope: "col" }), h("th", { scope: "row" }), h("th", { scope: "row" })];
  const tableEl = h("table", { class: "transition-matrix" },
    h("thead", {}, h("tr", {}, h("td"), hb, lb)),
    h("tbody", {},
      h("tr", {}, ha, h("td", {}, cellButton("HH")), h("td", {}, cellButton("HL"))),
      h("tr", {}, la, h("td", {}, cellButton("LH")), h("td", {}, cellButton("LL")))));
  const note = h("p", { class: "muted small" });
  const show = (t, selected) => {
    tableEl.setAttribute("aria-label", `Transitions from step ${t.step_a} to step ${t.step_b}`);
    hb.textContent = `H at step ${fmtInt(t.step_b)}`;
    lb.textContent = `L at step ${fmtInt(t.step_b)}`;
    ha.textContent = `H at step ${fmtInt(t.step_a)}`;
    la.textContent = `L at step ${fmtInt(t.step_a)}`;
    for (const [cell, { button, count, share }] of Object.entries(parts)) {
      button.setAttribute("aria-pressed", String(cell === selected));
      count.textContent = fmtInt(t.counts[cell]);
      share.textContent = `${fmtPct(t.shares[cell])} of ${fmtInt(t.total)}`;
    }
    note.textContent = `${fmtInt(t.total)} token occurrences in ${fmtInt(t.documents)} documents, τ = ${fmtNum(t.tau, 4)} nats. Click a cell to list its occurrences.`;
  };
  return { el: h("div", {}, tableEl, note), show };
}

function occurrencesCard(page, onPage) {
  const cell = CELLS[page.cell];
  return card(`${cell.name}: ${cell.about}`,
    h("p", { "data-testid": "occurrences-total" }, `${fmtInt(page.total)} ${page.total === 1 ? "occurrence" : "occurrences"}`),
    table({
      label: `Occurrences ${cell.name}`, testid: "occurrences-table", rows: page.items, empty: "No occurrence in this cell.",
      rowProps: (o) => ({ "data-testid": "occurrence-row", dataset: { documentId: o.document_id, position: o.position } }),
      columns: [
        { label: "Token", cell: (o) => h("code", { class: "tok-chip" }, visibleText(o.text)) },
        { label: "Context", cell: (o) => h("span", { class: "context" }, o.context_before, h("mark", {}, o.text), o.context_after) },
        { label: `Loss at ${fmtInt(page.step_a)} → ${fmtInt(page.step_b)}`, numeric: true, cell: (o) => `${fmtNum(o.loss_a, 3)} → ${fmtNum(o.loss_b, 3)}` },
        {
          label: "Document", cell: (o) => h("a", { href: `#/runs/${page.run_b}/documents/${o.document_id}?token=${o.position}`, class: "nowrap" },
            `doc ${o.document_id}, token ${fmtInt(o.position)}`),
        },
      ],
    }),
    pager({ total: page.total, offset: page.offset, limit: page.limit, noun: "occurrences", onChange: onPage }));
}
