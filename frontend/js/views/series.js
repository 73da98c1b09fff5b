// #/series/{id} — one model series: its checkpoints, which of them are scored on each corpus (a chip
// per step with its run's status), a button to score the missing ones, and links to the statistics
// across checkpoints where at least two are scored alike. Refreshes every 2 s while a run is live.
// The scoring part is in views/series/scoring.js.

import { api } from "../api.js";
import { card, errorBox, pager, table, timeAgo } from "../components.js";
import { h, replace } from "../dom.js";
import { fmtAgo, fmtCompact, fmtInt, parseTime } from "../format.js";
import { scoringPanel } from "./series/scoring.js";

const REFRESH_MS = 2000;
const CHECKPOINT_ROWS = 50;

export async function mount(ctx) {
  const id = ctx.params.seriesId;
  let series = await api.seriesDetail(id, ctx.signal);
  if (!ctx.alive) return;
  ctx.setTitle(`${series.name} · Series`);
  const corpora = await api.corpora({ limit: 500 }, ctx.signal).catch((error) => {
    if (error.name === "AbortError") throw error;
    return { items: [] }; // the "score on another corpus" form is a convenience: the page works without it
  });
  if (!ctx.alive) return;
  let offset = Math.max(0, Number(ctx.query.get("offset")) || 0);
  const parts = { head: h("div", { class: "page-head" }), checkpoints: h("div"), pollStatus: h("div", { "aria-live": "polite" }) };
  const live = () => series.corpora.some((c) => c.runs.some((r) => ctx.vocab.live.has(r.status)));
  const refresh = async () => {
    try {
      const fresh = await api.seriesDetail(id, ctx.signal);
      if (!ctx.alive) return;
      series = fresh;
      parts.pollStatus.replaceChildren();
      render();
    } catch (error) {
      if (ctx.alive && error.name !== "AbortError") replace(parts.pollStatus, errorBox(error, { title: "Could not refresh this series" }));
    }
  };
  const render = () => {
    replace(parts.head, header(series));
    replace(parts.checkpoints, checkpointsCard(series, offset, (o) => { offset = o; ctx.updateQuery({ offset: o || null }); render(); }));
    scoring.render(series);
  };
  const scoring = scoringPanel(id, corpora.items, refresh);
  replace(ctx.root,
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" }, h("a", { href: "#/series" }, "Series"), h("span", { "aria-hidden": "true" }, " / "), series.name),
    parts.head, parts.pollStatus, scoring.el, parts.checkpoints);
  render();
  ctx.every(REFRESH_MS, () => { if (live()) refresh(); });
}

function header(series) {
  const facts = [`${fmtInt(series.n_checkpoints)} checkpoint${series.n_checkpoints === 1 ? "" : "s"}`];
  return h("div", {},
    h("h1", {}, series.name),
    h("p", { class: "lede" },
      series.description ? [series.description, h("br")] : null,
      facts.join(" · "),
      series.experiment_id ? [" · trained by ", h("a", { href: `#/experiments/${series.experiment_id}` }, `experiment #${series.experiment_id}`)] : null,
      series.job_id ? [" · ", h("a", { href: "#/jobs?kind=train" }, `train job #${series.job_id}`)] : null));
}

function checkpointsCard(series, offset, onPage) {
  const rows = series.checkpoints.slice(offset, offset + CHECKPOINT_ROWS);
  return card(`Checkpoints (${fmtInt(series.checkpoints.length)})`,
    table({
      label: "Checkpoints of the series", testid: "series-checkpoints-table", rows,
      empty: "No checkpoints yet.",
      rowProps: (c) => ({ "data-testid": "series-checkpoint-row", dataset: { step: c.step, checkpointId: c.id } }),
      columns: [
        { label: "Step", numeric: true, cell: (c) => h("span", { class: "strong" }, fmtInt(c.step)) },
        { label: "Tokens seen", numeric: true, cell: (c) => (c.tokens_seen === null ? "—" : fmtCompact(c.tokens_seen)) },
        { label: "Id", numeric: true, cell: (c) => h("span", { class: "muted" }, String(c.id)) },
        { label: "Registered", cell: (c) => timeAgo(parseTime(c.created_at), fmtAgo(c.created_at)) },
      ],
    }),
    pager({ total: series.checkpoints.length, offset, limit: CHECKPOINT_ROWS, noun: "checkpoints", onChange: onPage }));
}
