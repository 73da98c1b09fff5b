// #/jobs — the job queue: every score / summarize / train job with its progress, worker and error.

import { api } from "../api.js";
import { card, errorBox, field, pager, progressBar, select, statusBadge, table, timeAgo } from "../components.js";
import { h, replace } from "../dom.js";
import { fmtAgo, fmtCompact, fmtDuration, fmtRate, parseTime } from "../format.js";

const PAGE = 100;
const LIVE_REFRESH_MS = 2000;
const IDLE_REFRESH_TICKS = 5;

export async function mount(ctx) {
  ctx.setTitle("Jobs");
  const filters = { status: ctx.query.get("status") || "", kind: ctx.query.get("kind") || "", run_id: ctx.query.get("run_id") || "" };
  let offset = 0;
  let anyLive = false;
  let ticks = 0;
  const listEl = h("div");
  const pollStatus = h("div", { "aria-live": "polite" });

  const refresh = async () => {
    const page = await api.jobs({ ...filters, offset, limit: PAGE }, ctx.signal);
    if (!ctx.alive) return;
    anyLive = page.items.some((j) => ctx.vocab.live.has(j.status));
    pollStatus.replaceChildren();
    replace(listEl, jobsTable(page.items),
      pager({ total: page.total, offset, limit: PAGE, noun: "jobs", onChange: (o) => { offset = o; refreshSafe(); } }));
  };
  const refreshSafe = () => refresh().catch((error) => {
    if (ctx.alive && error.name !== "AbortError") replace(pollStatus, errorBox(error, { title: "Could not load the jobs" }));
  });

  const anyOf = (values) => ["", ...values].map((v) => ({ value: v, label: v || "any" }));
  const statusSel = select(anyOf(ctx.vocab.job_statuses), { value: filters.status });
  const kindSel = select(anyOf(ctx.vocab.job_kinds), { value: filters.kind });
  const onFilter = () => {
    filters.status = statusSel.value;
    filters.kind = kindSel.value;
    offset = 0;
    ctx.updateQuery(filters);
    refreshSafe();
  };
  statusSel.addEventListener("change", onFilter);
  kindSel.addEventListener("change", onFilter);

  replace(ctx.root,
    h("div", { class: "page-head" },
      h("div", {}, h("h1", {}, "Jobs"), h("p", { class: "lede" }, "Workers claim queued jobs; a run is split into score shards and one summarize job.")),
      h("form", { class: "filters", "aria-label": "Filter jobs", on: { submit: (e) => e.preventDefault() } },
        field("Status", statusSel), field("Kind", kindSel),
        filters.run_id ? h("p", { class: "muted small" }, `run #${filters.run_id} only`) : null)),
    pollStatus,
    card("Queue", listEl));
  await refresh();
  ctx.every(LIVE_REFRESH_MS, () => {
    ticks += 1;
    if (anyLive || ticks % IDLE_REFRESH_TICKS === 0) refreshSafe();
  });
}

function jobsTable(jobs) {
  return table({
    label: "Jobs", testid: "jobs-table", rows: jobs, empty: "No jobs match.",
    rowProps: (j) => ({ "data-testid": "job-row", dataset: { jobId: j.id, status: j.status } }),
    columns: [
      { label: "Job", cell: (j) => h("span", { class: "strong" }, `#${j.id}`) },
      { label: "Kind", cell: (j) => j.kind },
      { label: "Run", cell: (j) => (j.run_id ? h("a", { href: `#/runs/${j.run_id}` }, `#${j.run_id}`) : "—") },
      { label: "Status", cell: (j) => statusBadge(j.status) },
      {
        label: "Progress", class: "col-progress", cell: (j) => h("div", { class: "progress-cell" },
          j.progress_total > 0 ? progressBar(j.progress_done, j.progress_total, { status: j.status }) : null,
          h("div", { class: "muted small" }, [`${fmtCompact(j.tokens_done)} tokens`, j.tokens_per_s ? fmtRate(j.tokens_per_s) : null].filter(Boolean).join(" · "))),
      },
      { label: "Attempts", numeric: true, cell: (j) => `${j.attempts} / ${j.max_attempts}` },
      { label: "Worker", cell: (j) => h("span", { class: "mono small" }, j.worker || "—") },
      {
        label: "Timing", cell: (j) => h("div", { class: "small" },
          h("div", {}, "created ", timeAgo(parseTime(j.created_at), fmtAgo(j.created_at))),
          j.started_at ? h("div", { class: "muted" }, j.finished_at ? `took ${fmtDuration(j.started_at, j.finished_at)}` : `running ${fmtDuration(j.started_at, new Date())}`) : null),
      },
      { label: "Error", class: "col-error", cell: (j) => (j.error ? h("pre", { class: "error-text", "data-testid": "job-error" }, j.error) : "") },
    ],
  });
}
