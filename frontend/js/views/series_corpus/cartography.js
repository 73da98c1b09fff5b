// Dataset cartography (Swayamdipta et al. 2020) over token occurrences: confidence (mean p over the
// checkpoints) against variability (std of p), coloured by region, from a uniform sample of the
// corpus; the count of occurrences and types per region; and the token types, most frequent first
// (sortable by count, filterable by region). Hovering a point shows its token and context in a DOM
// box (views/series_corpus/hover.js). Query: ?region=&sort=&types_offset=.

import { api, latestOnly } from "../../api.js";
import { REGION_COLORS, cartographyScatter } from "../../charts_series.js";
import * as charts from "../../charts.js";
import { card, errorBox, field, loading, pager, select, table } from "../../components.js";
import { h, replace } from "../../dom.js";
import { fmtInt, fmtNum, fmtPct } from "../../format.js";
import { visibleText } from "../../tokens.js";
import { pointHover } from "./hover.js";
import { offsetParam, wordParam } from "./state.js";

const MAX_POINTS = 5000;
const TYPES_PAGE = 50;
const REGIONS = ["easy-to-learn", "ambiguous", "hard-to-learn"];

export function cartographyPanel(ctx, at) {
  const state = {
    region: wordParam(ctx.query, "region", REGIONS, null),
    sort: wordParam(ctx.query, "sort", ["count-desc", "count-asc"], "count-desc"),
    typesOffset: offsetParam(ctx.query, "types_offset"),
  };
  const scatter = charts.figure(`A uniform sample of at most ${fmtInt(MAX_POINTS)} occurrences; hover a point for its token and context.`,
    "Confidence against variability of token occurrences", "cartography-scatter");
  const hover = pointHover(ctx, at);
  const regionsEl = h("div", {}, loading());
  const typesEl = h("div");
  const latest = latestOnly(ctx);
  let drawn = false;
  const save = () => ctx.updateQuery({ region: state.region, sort: state.sort === "count-desc" ? null : state.sort, types_offset: state.typesOffset || null });
  const load = async () => {
    const answer = await latest(api.cartography(at, {
      max_points: MAX_POINTS, region: state.region ?? undefined, types_offset: state.typesOffset, types_limit: TYPES_PAGE,
    }, ctx.signal));
    if (!answer) return;
    replace(regionsEl, regionCounts(answer));
    renderTypes(answer);
    if (!drawn) {
      drawn = true;
      await cartographyScatter(scatter.plot, answer, { onHover: (i, event) => hover.show(answer.points, i, event), onUnhover: hover.hide });
    }
  };
  const fail = (error) => { if (ctx.alive && error.name !== "AbortError") replace(typesEl, errorBox(error, { title: "The server refused this" })); };
  const renderTypes = (answer) => replace(typesEl, typesTable(answer.types, state, {
    onSort: () => { state.sort = state.sort === "count-desc" ? "count-asc" : "count-desc"; save(); renderTypes(answer); },
    onPage: (offset) => { state.typesOffset = offset; save(); load().catch(fail); },
  }));
  const regionSel = select([{ value: "", label: "every region" }, ...REGIONS.map((r) => ({ value: r, label: r }))], { value: state.region ?? "", name: "region" });
  regionSel.addEventListener("change", () => { state.region = regionSel.value || null; state.typesOffset = 0; save(); load().catch(fail); });
  load().catch(fail);
  return {
    el: h("div", { class: "tab-panel" },
      card("Confidence and variability", regionsEl, scatter.el),
      card("Token types", h("form", { class: "question", "aria-label": "Token types", on: { submit: (e) => e.preventDefault() } }, field("Region", regionSel)), typesEl),
      hover.el),
    dispose: () => { hover.hide(); charts.purge(scatter.plot); },
  };
}

const regionKey = (name) => h("span", { class: "region-key" },
  h("span", { class: "swatch", style: { background: REGION_COLORS[name] }, "aria-hidden": "true" }), name);

function regionCounts(answer) {
  const total = answer.regions.reduce((n, r) => n + r.occurrences, 0);
  return h("div", {},
    table({
      label: "Occurrences per region", testid: "region-counts", rows: answer.regions,
      rowProps: (r) => ({ "data-testid": "region-row", dataset: { region: r.region } }),
      columns: [
        { label: "Region", cell: (r) => regionKey(r.region) },
        { label: "Occurrences", numeric: true, cell: (r) => h("span", { "data-testid": "region-occurrences" }, fmtInt(r.occurrences)) },
        { label: "Share", numeric: true, cell: (r) => fmtPct(total ? r.occurrences / total : NaN) },
        { label: `Types (≥ ${fmtInt(answer.types.min_count)} occurrences)`, numeric: true, cell: (r) => fmtInt(r.types) },
      ],
    }),
    h("p", { class: "muted small" },
      `Ambiguous: variability ≥ ${fmtNum(answer.variability_threshold, 2)}; otherwise easy-to-learn when confidence ≥ ${fmtNum(answer.confidence_threshold, 2)}, `
      + `else hard-to-learn. ${fmtInt(answer.points.shown)} of ${fmtInt(answer.points.occurrences)} occurrences drawn, over ${answer.steps.length} checkpoints.`));
}

function typesTable(types, state, { onSort, onPage }) {
  const rows = [...types.items].sort((x, y) => (state.sort === "count-asc" ? x.count - y.count : y.count - x.count) || x.token_id - y.token_id);
  const arrow = state.sort === "count-asc" ? "↑" : "↓";
  const countHeader = h("button", { type: "button", class: "th-button", "data-testid": "sort-count", on: { click: onSort },
    "aria-label": `Count, sorted ${state.sort === "count-asc" ? "ascending" : "descending"}; click to reverse` }, `Count ${arrow}`);
  return h("div", {},
    table({
      label: "Token types", testid: "types-table", rows, empty: "No token type with enough occurrences here.",
      rowProps: (t) => ({ "data-testid": "type-row", dataset: { tokenId: t.token_id, count: t.count } }),
      columns: [
        { label: "Token", cell: (t) => h("code", { class: "tok-chip" }, visibleText(t.text)) },
        { label: countHeader, numeric: true, cell: (t) => fmtInt(t.count) },
        { label: "Confidence", numeric: true, cell: (t) => fmtNum(t.confidence, 3) },
        { label: "Variability", numeric: true, cell: (t) => fmtNum(t.variability, 3) },
        { label: "Correctness", numeric: true, cell: (t) => fmtPct(t.correctness) },
        { label: "Forgetting", numeric: true, cell: (t) => fmtNum(t.forgetting, 2), title: "mean forgetting events per occurrence" },
        { label: "Region", cell: (t) => regionKey(t.region) },
      ],
    }),
    pager({ total: types.total, offset: types.offset, limit: types.limit, noun: "types", onChange: onPage }));
}
