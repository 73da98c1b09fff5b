// #/experiments — studies (one experiment per seed, compared across seeds: views/experiments/studies.js),
// experiments (one model per loss, same seed and settings, compared side by side) with their training
// status, and a form to start one (views/experiments/form.js). A started experiment opens its own page.

import { api } from "../api.js";
import * as charts from "../charts.js";
import { card, errorBox, pager, progressBar, statusBadge, table, timeAgo } from "../components.js";
import { h, replace } from "../dom.js";
import { fmtAgo, fmtCompact, fmtInt, parseTime } from "../format.js";
import { experimentStatus, lossKey } from "../parts.js";
import { experimentForm } from "./experiments/form.js";
import { studiesTable, studyHref } from "./experiments/studies.js";

const PAGE = 50;
const LIVE_REFRESH_MS = 2000;
const IDLE_REFRESH_TICKS = 5;

export async function mount(ctx) {
  ctx.setTitle("Experiments");
  let offset = 0;
  let ticks = 0;
  let anyLive = false;
  const listStatus = h("div", { "aria-live": "polite" });
  const listEl = h("div");
  const formEl = h("div");
  const studiesEl = h("div");

  // Names for the corpus column, read once (a corpus made later shows as "corpus #id" until reload).
  const corpora = await api.corpora({ limit: 500 }, ctx.signal);
  const corpusName = new Map(corpora.items.map((c) => [c.id, c.name]));

  const refresh = async () => {
    const page = await api.experiments({ offset, limit: PAGE }, ctx.signal);
    if (!ctx.alive) return;
    anyLive = page.items.some((e) => ctx.vocab.live.has(rowStatus(e)) || rowStatus(e) === "scoring");
    const studies = await api.studies({ limit: PAGE }, ctx.signal);
    if (!ctx.alive) return;
    replace(studiesEl, studiesTable(studies.items));
    replace(listEl, experimentsTable(page.items, corpusName),
      pager({ total: page.total, offset, limit: PAGE, noun: "experiments", onChange: (o) => { offset = o; refreshSoon(); } }));
    listStatus.replaceChildren();
    return page;
  };
  const refreshSoon = () => refresh().catch((error) => {
    if (ctx.alive && error.name !== "AbortError") replace(listStatus, errorBox(error, { title: "Could not refresh the experiments" }));
  });

  replace(ctx.root,
    h("div", { class: "page-head" },
      h("div", {}, h("h1", {}, "Experiments"),
        h("p", { class: "lede" }, "Train one small model per loss — same corpus, seed and settings — and compare held-out loss, calibration and which tokens each loss learns, checkpoint by checkpoint."))),
    formEl,
    card("Studies across seeds", studiesEl),
    card("All experiments", listStatus, listEl));

  const first = await refresh();
  ctx.every(LIVE_REFRESH_MS, () => {
    ticks += 1;
    if (anyLive || ticks % IDLE_REFRESH_TICKS === 0) refreshSoon();
  });
  experimentForm(formEl, ctx, { corpora: corpora.items, open: first.total === 0 }).catch((error) => {
    if (ctx.alive && error.name !== "AbortError") replace(formEl, errorBox(error, { title: "Cannot load the new-experiment form" }));
  });
}

function experimentsTable(experiments, corpusName) {
  return table({
    label: "Experiments", testid: "experiments-table", rows: experiments,
    empty: "No experiments yet: start one above, or with `focalscope experiment`.",
    rowProps: (e) => ({ "data-testid": "experiment-row", dataset: { experimentId: e.id } }),
    columns: [
      { label: "Experiment", cell: (e) => h("div", {},
        h("a", { href: `#/experiments/${e.id}`, class: "run-link" }, e.name),
        e.config.study ? h("div", { class: "muted small" }, "seed ", String(e.config.seed), " of study ",
          h("a", { href: studyHref(e.config.study.name), "data-testid": "experiment-study-link" }, e.config.study.name)) : null) },
      {
        label: "Losses", title: "each loss's series: its checkpoints, and how its tokens move across them",
        cell: (e) => h("div", { class: "loss-keys" },
          (e.config.losses || []).map((loss, i) => seriesLink(e, i, lossKey(loss, charts.seriesColor(i))))),
      },
      {
        label: "Model", cell: (e) => h("div", {},
          h("div", { class: "strong" }, e.config.preset || "—"),
          h("div", { class: "muted small nowrap" }, [e.config.tokenizer, e.config.vocab_size ? `${fmtCompact(e.config.vocab_size)} vocab` : null].filter(Boolean).join(" · "))),
      },
      {
        label: "Steps", numeric: true, cell: (e) => h("div", {},
          h("div", {}, fmtInt(e.config.steps)),
          h("div", { class: "muted small" }, `every ${fmtInt(e.config.save_every)}`)),
      },
      {
        label: "Corpora", cell: (e) => {
          const named = (id) => corpusName.get(id) || `corpus #${id}`;
          return h("div", {},
            h("div", { title: "training corpus" }, named(e.train_corpus_id)),
            h("div", { class: "muted small" }, e.eval_corpus_id ? `eval: ${named(e.eval_corpus_id)}` : "no eval corpus"));
        },
      },
      { label: "Progress", class: "col-progress", title: "training steps of all series, and checkpoints scored on the eval corpus", cell: (e) => statusCell(e) },
      { label: "Created", cell: (e) => timeAgo(parseTime(e.created_at), fmtAgo(e.created_at)) },
    ],
  });
}

/** The loss's key, linked to its series on the eval corpus (the views across checkpoints) or, without one, to the series. */
function seriesLink(experiment, i, key) {
  const id = experiment.series_ids[i];
  if (id === undefined) return key;
  const href = experiment.eval_corpus_id ? `#/series/${id}/corpora/${experiment.eval_corpus_id}` : `#/series/${id}`;
  return h("a", { href, class: "series-link", "data-testid": "experiment-series-link" }, key);
}

/** One word for an experiment row, from the server's status summary. */
function rowStatus(experiment) {
  const st = experiment.status;
  if (!st) return "queued";
  const unscored = experiment.eval_corpus_id == null ? 0 : st.checkpoints - st.scored - st.scoring_failed;
  return experimentStatus(Object.keys(st.jobs), { unscored });
}

/** The experiment's series summed: one badge, one bar over all their steps, checkpoints scored. */
function statusCell(experiment) {
  const st = experiment.status;
  if (!st) return h("span", { class: "muted small" }, "—");
  const status = rowStatus(experiment);
  const counts = Object.entries(st.jobs).map(([s, n]) => `${n} ${s}`);
  if (experiment.eval_corpus_id != null) counts.push(`${fmtInt(st.scored)} / ${fmtInt(st.checkpoints)} checkpoints scored`);
  if (st.scoring_failed) counts.push(`${fmtInt(st.scoring_failed)} scoring failed`);
  return h("div", { class: "progress-cell", "data-testid": "experiment-status" },
    h("div", { class: "status-line" }, statusBadge(status), h("span", { class: "muted small" }, counts.join(" · "))),
    progressBar(st.steps_done, st.steps_total, { label: `${fmtInt(st.steps_done)} / ${fmtInt(st.steps_total)} steps`, status }));
}
