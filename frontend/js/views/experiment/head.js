// The top of an experiment's page: what was trained (preset, steps, seed, tokenizer, corpora) and the
// training progress of each series, one row per loss.

import { card, progressBar, statusBadge, timeAgo } from "../../components.js";
import { h } from "../../dom.js";
import { fmtAgo, fmtCompact, fmtInt, fmtNum, fmtRate, fmtSeconds, parseTime } from "../../format.js";
import { lossKey } from "../../parts.js";
import { studyHref } from "../experiments/studies.js";

/** The heading and facts; `about` holds the corpora and presets (each null when they did not load). */
export function header(view, { trainCorpus, evalCorpus, presets }) {
  const { exp, config } = view;
  const preset = (presets || []).find((p) => p.name === config.preset);
  const params = preset && preset.params ? preset.params[config.tokenizer] : null;
  const corpusLink = (corpus, fallbackId) => h("a", { href: "#/corpora" }, corpus ? corpus.name : `corpus #${fallbackId}`);
  const facts = [
    `${config.preset || "?"}${preset ? ` (${preset.arch === "llama" ? "Llama" : "GPT-2"}${params ? `, ${fmtCompact(params)} params` : ""})` : ""}`,
    `${fmtInt(config.steps)} steps, checkpoint every ${fmtInt(config.save_every)}`,
    `seed ${config.seed}`,
    `${config.tokenizer} tokenizer${config.vocab_size ? `, ${fmtInt(config.vocab_size)} tokens` : ""}`,
    config.batch_size ? `batch ${config.batch_size} × ${config.seq_len}` : null,
    config.lr ? `lr ${config.lr}` : null,
  ].filter(Boolean);
  return h("div", {},
    h("h1", {}, exp.name, " ", h("span", { class: "h1-sub" }, view.series.map((s) => s.label).join(" vs ")), " ",
      h("span", { "data-testid": "experiment-status" }, statusBadge(view.status))),
    h("p", { class: "lede" },
      h("span", { class: "mono small" }, facts.join(" · ")), h("br"),
      "Trained on ", corpusLink(trainCorpus, exp.train_corpus_id),
      view.hasEval ? [", scored on ", corpusLink(evalCorpus, exp.eval_corpus_id)] : " (no eval corpus: checkpoints are not scored)",
      " · created ", timeAgo(parseTime(exp.created_at), fmtAgo(exp.created_at)),
      config.study ? [" · one seed of study ",
        h("a", { href: studyHref(config.study.name), "data-testid": "experiment-study-link" }, config.study.name)] : null));
}

function seriesRow(s, view) {
  const job = s.job;
  const detail = (job && job.detail) || {};
  const status = job ? job.status : "done";
  const facts = [];
  if (Number.isFinite(detail.loss)) facts.push(`loss ${fmtNum(detail.loss, 3)}`);
  if (Number.isFinite(detail.ce) && s.loss !== "ce") facts.push(`CE ${fmtNum(detail.ce, 3)}`);
  if (Number.isFinite(detail.gamma) && s.loss && s.loss.startsWith("focal-schedule")) facts.push(`γ ${fmtNum(detail.gamma, 2)}`);
  const rate = detail.tokens_per_s ?? (job && job.tokens_per_s);
  if (status === "running" && Number.isFinite(rate)) facts.push(fmtRate(rate));
  if (status === "running" && Number.isFinite(detail.eta_s)) facts.push(`ETA ${fmtSeconds(detail.eta_s)}`);
  const done = job ? job.progress_done : 0;
  const total = job ? job.progress_total : view.config.steps || 0;
  return h("li", { class: "series-row", "data-testid": "series-row", dataset: { loss: s.label, status } },
    h("div", { class: "series-name" }, lossKey(s.label, s.color),
      h("div", { class: "muted small mono", title: "model series" }, h("a", { href: `#/series/${s.series_id}`, "data-testid": "series-link" }, s.name)),
      acrossCheckpointsLinks(s, view)),
    h("div", {}, statusBadge(status)),
    h("div", { class: "progress-cell" },
      progressBar(done, total, { label: `step ${fmtInt(done)} / ${fmtInt(total)}`, status }),
      h("div", { class: "muted small" }, facts.length ? facts.join(" · ") : status === "queued" ? "waiting for a worker" : "\u00a0")),
    h("div", { class: "small series-scored" },
      view.hasEval
        ? [h("strong", {}, `${s.scored} / ${fmtInt(s.expected)}`), " checkpoints scored"]
        : [h("strong", {}, `${s.checkpoints.length} / ${fmtInt(s.expected)}`), " checkpoints saved"]),
    job && job.error ? h("div", { class: "series-error" },
      h("pre", { class: "error-text", "data-testid": "job-error" }, job.error),
      h("a", { class: "small", href: `#/jobs?kind=train&status=${encodeURIComponent(status)}` }, `Job #${job.id} on the Jobs page (full traceback)`)) : null);
}
/** Links to the series' statistics across checkpoints on the eval corpus, once two checkpoints are scored there. */
function acrossCheckpointsLinks(s, view) {
  if (!view.hasEval || s.scored < 2) return null;
  const base = `#/series/${s.series_id}/corpora/${view.exp.eval_corpus_id}?tab=`;
  return h("div", { class: "small", "data-testid": "across-links" },
    h("a", { href: `${base}transitions` }, "transitions"), " · ", h("a", { href: `${base}learned-at` }, "learned-at"), " · ",
    h("a", { href: `${base}cartography` }, "cartography"));
}

/** The "Training" card: one row per series, and a word on the refresh while anything is live. */
export function trainingCard(view) {
  return card("Training",
    h("ul", { class: "series-list", "data-testid": "series-progress", "aria-label": "Series of this experiment" },
      view.series.map((s) => seriesRow(s, view))),
    view.live ? h("p", { class: "muted small" }, "This page refreshes every 2 seconds while a model trains or a checkpoint awaits scoring.") : null);
}
