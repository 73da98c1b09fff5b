// #/runs/{id}/types?sort=&desc=&q=&offset=&type= — every token type of a run: count, frequency rank,
// mean p and the mean of each definition of a hard token; sortable, filterable by text, paged. A type
// opens its occurrences with their context, each linking to its document. State lives in the address.

import { api, latestOnly } from "../api.js";
import { card, errorBox, field, pager, select, table } from "../components.js";
import { h, replace } from "../dom.js";
import { fmtInt, fmtNum, fmtProb } from "../format.js";
import { visibleText } from "../tokens.js";

const PAGE = 50;
const COLUMNS = [
  ["count", "count"], ["frequency_rank", "frequency rank"], ["mean_loss", "mean loss"], ["mean_p", "mean p"],
  ["mean_one_minus_p", "mean 1 − p"], ["mean_rank", "mean rank"], ["mean_entropy", "mean entropy"],
  ["mean_surprise", "mean surprise"], ["mean_margin", "mean margin"],
];

export async function mount(ctx) {
  const { runId } = ctx.params;
  const run = await api.run(runId, ctx.signal);
  if (!ctx.alive) return;
  ctx.setTitle(`Token types · run #${runId}`);
  const state = {
    sort: ctx.query.get("sort") || "count", desc: ctx.query.get("desc") !== "0", q: ctx.query.get("q") || "",
    offset: Number(ctx.query.get("offset")) || 0, type: ctx.query.has("type") ? Number(ctx.query.get("type")) : null,
  };
  const listEl = h("div", { "data-testid": "types-list" });
  const occurrencesEl = h("div", { "data-testid": "type-occurrences" });
  // A filter typed while the previous one's answer is on its way: only the latest answer is shown.
  const [latestTypes, latestOccurrences] = [latestOnly(ctx), latestOnly(ctx)];
  const refresh = () => {
    ctx.updateQuery({ sort: state.sort, desc: state.desc ? 1 : 0, q: state.q, offset: state.offset, type: state.type });
    showTypes(ctx, runId, state, listEl, refresh, latestTypes);
    if (state.type !== null) showOccurrences(ctx, runId, state.type, occurrencesEl, latestOccurrences);
  };
  replace(ctx.root,
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" }, h("a", { href: "#/runs" }, "Runs"), h("span", { "aria-hidden": "true" }, " / "),
      h("a", { href: `#/runs/${runId}` }, `Run #${runId}`), h("span", { "aria-hidden": "true" }, " / "), "Token types"),
    h("h1", {}, "Token types ", h("span", { class: "h1-sub" }, `of run #${runId} on ${run.corpus.name}`)),
    controls(state, refresh), listEl, occurrencesEl);
  refresh();
}

function controls(state, refresh) {
  const sort = select(COLUMNS.map(([value, label]) => ({ value, label })), { value: state.sort, name: "sort" });
  const order = select([{ value: "1", label: "largest first" }, { value: "0", label: "smallest first" }], { value: state.desc ? "1" : "0", name: "desc" });
  const text = h("input", { type: "search", name: "q", value: state.q, placeholder: "text contains…" });
  sort.addEventListener("change", () => { state.sort = sort.value; state.offset = 0; refresh(); });
  order.addEventListener("change", () => { state.desc = order.value === "1"; state.offset = 0; refresh(); });
  text.addEventListener("change", () => { state.q = text.value; state.offset = 0; refresh(); });
  return h("form", { class: "controls controls-row", on: { submit: (e) => e.preventDefault() } },
    field("Sort by", sort), field("Order", order), field("Filter", text));
}

async function showTypes(ctx, runId, state, el, refresh, latest) {
  try {
    const page = await latest(api.runTypes(runId, { sort: state.sort, descending: state.desc, text: state.q || undefined, offset: state.offset, limit: PAGE }, ctx.signal));
    if (!page) return;
    replace(el, table({
      testid: "types-table", label: "Token types", rows: page.items,
      columns: [
        { label: "token", cell: (t) => h("button", { type: "button", class: "link-button", on: { click: () => { state.type = t.token_id; refresh(); } } },
          h("code", { class: "tok-chip" }, visibleText(t.text))) },
        ...COLUMNS.map(([key, label]) => ({ label, numeric: true, cell: (t) => (key === "mean_p" ? fmtProb(t[key]) : Number.isInteger(t[key]) ? fmtInt(t[key]) : fmtNum(t[key], 3)) })),
      ],
    }), pager({ total: page.total, offset: page.offset, limit: PAGE, noun: "types", onChange: (offset) => { state.offset = offset; refresh(); } }));
  } catch (error) {
    if (ctx.alive && error.name !== "AbortError") replace(el, errorBox(error, { title: "Cannot list the token types" }));
  }
}

async function showOccurrences(ctx, runId, tokenId, el, latest) {
  try {
    const found = await latest(api.typeOccurrences(runId, tokenId, { limit: PAGE }, ctx.signal));
    if (!found) return;
    replace(el, card(`Occurrences of token ${tokenId} (${fmtInt(found.total)})`, table({
      label: "Occurrences", rows: found.items,
      columns: [
        { label: "in context", cell: (o) => h("a", { href: `#/runs/${runId}/documents/${o.document_id}?token=${o.position}` },
          h("span", { class: "muted" }, o.context_before.slice(-30)), h("mark", {}, visibleText(o.text)), h("span", { class: "muted" }, o.context_after.slice(0, 30))) },
        { label: "loss", numeric: true, cell: (o) => fmtNum(o.loss, 3) },
        { label: "p", numeric: true, cell: (o) => fmtProb(o.p) },
      ],
    })));
  } catch (error) {
    if (ctx.alive && error.name !== "AbortError") replace(el, errorBox(error, { title: "Cannot list the occurrences" }));
  }
}
