// #/experiments/{id} — one experiment: a model per loss, same seed and settings, compared side by side.
// Training progress per series, the final checkpoint of each loss, held-out metrics against the step
// (loss, perplexity, ECE, rare vs frequent tokens, easy-token share) and every checkpoint with a link
// to its scoring run. Polls every 2 s while a series trains or a checkpoint awaits scoring; the charts
// are redrawn in place (Plotly.react), so a zoom survives a refresh.

import { api } from "../api.js";
import * as charts from "../charts.js";
import { LIVE_STATUSES, card, errorBox, notice, pager, progressBar, statusBadge, table, timeAgo } from "../components.js";
import { h, replace } from "../dom.js";
import { fmtAgo, fmtCompact, fmtInt, fmtNum, fmtPct, fmtRate, parseTime } from "../tokens.js";

const REFRESH_MS = 2000;
// Curve points per series: enough for a smooth line, bounded for a 2-second poll.
const CURVE_POINTS = 500;
const CHECKPOINT_ROWS = 25;

/** Steps with a checkpoint: 0 (the untrained model), every save_every, and the last (as the trainer). */
export function saveSteps(steps, saveEvery) {
  if (!(steps > 0) || !(saveEvery > 0)) return [];
  const out = new Set([0, steps]);
  for (let s = saveEvery; s <= steps; s += saveEvery) out.add(s);
  return [...out].sort((a, b) => a - b);
}

/** Seconds as "45 s", "4 min 05 s", "2 h 10 min". */
export function fmtSeconds(s) {
  if (typeof s !== "number" || !Number.isFinite(s) || s < 0) return "—";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.round((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** A loss with its colour: the key used in the legend, tables and progress rows. */
export function lossKey(label, color, { testid } = {}) {
  return h("span", { class: "loss-key", "data-testid": testid || null },
    h("span", { class: "swatch", style: { background: color }, "aria-hidden": "true" }), h("span", { class: "mono" }, label));
}

/**
 * The experiment's state in one word: failed (a series failed), running, queued, scoring (trained,
 * checkpoints await their scoring runs), done, or cancelled.
 */
export function experimentStatus(statuses, { unscored = 0 } = {}) {
  if (!statuses.length) return "queued";
  for (const s of ["failed", "running", "queued", "cancelled"]) if (statuses.includes(s)) return s;
  return unscored > 0 ? "scoring" : "done";
}

export async function mount(ctx) {
  const id = ctx.params.experimentId;
  let cmp = await api.experimentComparison(id, { max_points: CURVE_POINTS }, ctx.signal);
  if (!ctx.alive) return;
  const exp = cmp.experiment;
  ctx.setTitle(`${exp.name} · Experiments`);
  // Decoration only (corpus names, the preset's shape): the page works without them.
  const soft = (p) => p.catch((error) => (error.name === "AbortError" ? Promise.reject(error) : null));
  const [trainCorpus, evalCorpus, presets] = await Promise.all([
    soft(api.corpus(exp.train_corpus_id, ctx.signal)),
    exp.eval_corpus_id ? soft(api.corpus(exp.eval_corpus_id, ctx.signal)) : null,
    soft(api.trainingPresets(ctx.signal)),
  ]);
  if (!ctx.alive) return;

  const headEl = h("div", { class: "page-head" });
  const pollStatus = h("div", { "aria-live": "polite" });
  const progressEl = h("div");
  const legend = h("div", { class: "loss-legend", "data-testid": "loss-legend", role: "group", "aria-label": "Colour of each loss" });
  const finalEl = h("div");
  const checkpointsEl = h("div");
  // Without an eval corpus nothing is scored: only the training curves have data.
  const hasEval = exp.eval_corpus_id !== null && exp.eval_corpus_id !== undefined;
  const figures = CHARTS.filter((c) => hasEval || !c.heldOut)
    .map((c) => ({ ...c, fig: charts.figure(c.caption, c.description, `chart-${c.id}`) }));
  ctx.onDispose(() => figures.forEach((f) => charts.purge(f.fig.plot)));
  let checkpointOffset = 0;
  let live = false;
  // Step 0 is the untrained model (loss ≈ log of the vocabulary size): hiding it rescales the charts
  // to where the losses differ.
  let hideUntrained = ctx.query.get("untrained") === "hide";
  const untrainedToggle = h("input", { type: "checkbox", checked: hideUntrained, "data-testid": "hide-untrained" });
  untrainedToggle.addEventListener("change", () => {
    hideUntrained = untrainedToggle.checked;
    ctx.replaceQuery(hideUntrained ? { untrained: "hide" } : {});
    render();
  });

  const render = () => {
    const view = { ...viewModel(cmp), hideUntrained };
    live = view.live;
    replace(headEl, header(view, { trainCorpus, evalCorpus, presets }));
    replace(progressEl, card("Training",
      h("ul", { class: "series-list", "data-testid": "series-progress", "aria-label": "Series of this experiment" },
        view.series.map((s) => seriesRow(s, view))),
      live ? h("p", { class: "muted small" }, "This page refreshes every 2 seconds while a model trains or a checkpoint awaits scoring.") : null));
    replace(legend, h("span", { class: "legend-label" }, "Colours"),
      view.series.map((s) => lossKey(s.label, s.color, { testid: "legend-item" })));
    replace(finalEl, finalCard(view));
    replace(checkpointsEl, checkpointsCard(view, checkpointOffset, (o) => { checkpointOffset = o; render(); }));
    for (const f of figures) {
      f.draw(f.fig.plot, view).catch((error) => { if (ctx.alive) f.fig.el.append(errorBox(error, { title: "A chart failed" })); });
    }
  };

  let inFlight = false;
  const refresh = async () => {
    if (inFlight) return;
    inFlight = true;
    try {
      cmp = await api.experimentComparison(id, { max_points: CURVE_POINTS }, ctx.signal);
      if (!ctx.alive) return;
      pollStatus.replaceChildren();
      render();
    } catch (error) {
      if (ctx.alive && error.name !== "AbortError") replace(pollStatus, errorBox(error, { title: "Could not refresh this experiment" }));
    } finally {
      inFlight = false;
    }
  };

  replace(ctx.root,
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" }, h("a", { href: "#/experiments" }, "Experiments"), h("span", { "aria-hidden": "true" }, " / "), exp.name),
    headEl, pollStatus, progressEl, finalEl,
    h("section", { class: "charts-section", "aria-label": "Metrics against the training step" },
      h("div", { class: "section-head" }, h("h2", {}, "Over training"),
        h("div", { class: "section-tools" },
          hasEval ? h("label", { class: "check" }, untrainedToggle, "Hide step 0 (untrained)") : null, legend)),
      h("div", { class: hasEval ? "grid-2" : "grid-wide" }, figures.map((f) => card(f.title, f.fig.el)))),
    checkpointsEl);
  render();
  ctx.every(REFRESH_MS, () => { if (live) refresh(); });
}

/** The comparison in display order, with colours, expected checkpoint counts and the live flag. */
function viewModel(cmp) {
  const exp = cmp.experiment;
  const config = exp.config || {};
  const order = config.losses || [];
  const expected = saveSteps(config.steps, config.save_every).length;
  const hasEval = exp.eval_corpus_id !== null && exp.eval_corpus_id !== undefined;
  const series = cmp.series.map((s, i) => {
    const at = order.indexOf(s.loss);
    const scored = s.checkpoints.filter((c) => c.scored).length;
    return { ...s, label: s.loss || s.name, color: charts.seriesColor(at >= 0 ? at : i), scored, expected };
  });
  const statuses = series.map((s) => (s.job ? s.job.status : "done"));
  const jobsLive = statuses.some((st) => LIVE_STATUSES.has(st));
  // A checkpoint whose scoring run failed will not be scored by waiting: it does not keep the page live.
  const waiting = (c) => !c.scored && !["failed", "cancelled"].includes(c.run_status);
  const unscored = hasEval ? series.reduce((n, s) => n + s.checkpoints.filter(waiting).length, 0) : 0;
  return {
    exp, config, series, hasEval, expected, unscored,
    status: experimentStatus(statuses, { unscored }),
    live: jobsLive || unscored > 0,
  };
}

function header(view, { trainCorpus, evalCorpus, presets }) {
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
      " · created ", timeAgo(parseTime(exp.created_at), fmtAgo(exp.created_at))));
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
    h("div", { class: "series-name" }, lossKey(s.label, s.color), h("div", { class: "muted small mono", title: "model series" }, s.name)),
    h("div", {}, statusBadge(status)),
    h("div", { class: "progress-cell" },
      progressBar(done, total, { label: `step ${fmtInt(done)} / ${fmtInt(total)}`, status }),
      h("div", { class: "muted small" }, facts.length ? facts.join(" · ") : status === "queued" ? "waiting for a worker" : "\u00a0")),
    h("div", { class: "small series-scored" },
      view.hasEval
        ? [h("strong", {}, `${s.scored} / ${s.expected}`), " checkpoints scored"]
        : [h("strong", {}, `${s.checkpoints.length} / ${s.expected}`), " checkpoints saved"]),
    job && job.error ? h("div", { class: "series-error" },
      h("pre", { class: "error-text", "data-testid": "job-error" }, job.error),
      h("a", { class: "small", href: `#/jobs?kind=train&status=${encodeURIComponent(status)}` }, `Job #${job.id} on the Jobs page (full traceback)`)) : null);
}

// ---- final checkpoint per loss ---------------------------------------------------------------------

const LOWER = (a, b) => a < b;
const HIGHER = (a, b) => a > b;
const FINAL_COLUMNS = [
  { key: "mean_loss", label: "Held-out loss", title: "mean −log p per eval token (nats)", fmt: (v) => fmtNum(v, 3), better: LOWER, testid: "final-mean-loss" },
  { key: "perplexity", label: "Perplexity", title: "exp(held-out loss)", fmt: (v) => fmtNum(v, v >= 100 ? 1 : 2), better: LOWER },
  { key: "ece", label: "ECE", title: "top-label expected calibration error, 15 bins", fmt: (v) => fmtNum(v, 4), better: LOWER },
  { key: "brier", label: "Brier", title: "mean Σ_v (p_v − 1[v = y])²", fmt: (v) => fmtNum(v, 4), better: LOWER },
  { key: "top1_accuracy", label: "Top-1", title: "share of tokens ranked first", fmt: (v) => fmtPct(v, 1), better: HIGHER },
  { key: "rare_loss", label: "Rare loss", title: "mean loss on tokens of the rarest types (30% of the text)", fmt: (v) => fmtNum(v, 3), better: LOWER },
  { key: "frequent_loss", label: "Frequent loss", title: "mean loss on tokens of the most frequent types (30% of the text)", fmt: (v) => fmtNum(v, 3), better: LOWER },
  { key: "easy_share", label: "Easy share", title: "share of tokens with p ≥ 0.5", fmt: (v) => fmtPct(v, 1), better: HIGHER },
];

/** Index of the single best value; null when another shows the same (rounded) text, or no values. */
function best(values, better, fmt) {
  let at = null;
  values.forEach((v, i) => { if (Number.isFinite(v) && (at === null || better(v, values[at]))) at = i; });
  if (at === null) return null;
  const shown = fmt(values[at]);
  return values.some((v, i) => i !== at && Number.isFinite(v) && fmt(v) === shown) ? null : at;
}

function finalCard(view) {
  if (!view.hasEval) {
    return card("Final checkpoints", notice("This experiment has no eval corpus, so its checkpoints are not scored: compare the training curves below, or score a checkpoint on a corpus from the Runs page.", "info"));
  }
  const rows = view.series;
  const finals = rows.map((s) => s.final);
  const nFinal = finals.filter(Boolean).length;
  if (!nFinal) {
    return card("Final checkpoint per loss", notice("No checkpoint is scored yet: this table fills in as the scoring runs of the checkpoints finish.", "info"));
  }
  const baseline = rows.find((s) => s.loss === "ce" && s.final);
  const bestAt = Object.fromEntries(FINAL_COLUMNS.map((c) => [c.key, nFinal > 1 ? best(finals.map((f) => (f ? f[c.key] : null)), c.better, c.fmt) : null]));
  const metric = (c) => ({
    label: c.label, numeric: true, title: c.title, cell: (s) => {
      if (!s.final) return "—";
      const isBest = bestAt[c.key] === rows.indexOf(s);
      return h("span", { class: isBest ? "best" : null, title: isBest ? `best of the ${nFinal} losses` : null, "data-testid": c.testid || null }, c.fmt(s.final[c.key]));
    },
  });
  const columns = [
    { label: "Loss", class: "col-loss", cell: (s) => h("div", {}, lossKey(s.label, s.color), h("div", { class: "muted small mono series-sub" }, s.name)) },
    {
      label: "Step", numeric: true, cell: (s) => {
        if (s.final) return h("span", { "data-testid": "final-step" }, fmtInt(s.final.step));
        const ended = s.job && (s.job.status === "failed" || s.job.status === "cancelled");
        return ended ? statusBadge(s.job.status) : h("span", { class: "badge badge-pending" }, "pending");
      },
    },
    metric(FINAL_COLUMNS[0]),
    baseline ? {
      label: "Δ vs ce", numeric: true, title: "held-out loss minus the ce model's (negative: better than cross-entropy)",
      cell: (s) => {
        if (!s.final) return "—";
        if (s === baseline) return h("span", { class: "muted" }, "baseline");
        const d = s.final.mean_loss - baseline.final.mean_loss;
        const text = Math.abs(d).toFixed(3);
        if (text === "0.000") return h("span", { class: "muted", title: `${d} nats` }, "±0.000");
        return h("span", { class: d < 0 ? "delta-good" : "delta-bad", title: `${d} nats` }, `${d > 0 ? "+" : "−"}${text}`);
      },
    } : null,
    ...FINAL_COLUMNS.slice(1).map(metric),
    { label: "Run", title: "the final checkpoint's scoring run", cell: (s) => (s.final && s.final.run_id ? h("a", { href: `#/runs/${s.final.run_id}` }, `run #${s.final.run_id}`) : "—") },
  ].filter(Boolean);
  return card("Final checkpoint per loss",
    h("div", { class: "table-compact" }, table({
      label: "Final checkpoint per loss", testid: "final-table", rows, columns,
      rowProps: (s) => ({ "data-testid": "final-row", dataset: { loss: s.label } }),
    })),
    h("p", { class: "muted small" }, "The last scored checkpoint of each loss, on the eval corpus. Bold: the best value of the column."));
}

// ---- every checkpoint, one row per step, one column per loss ---------------------------------------

function checkpointsCard(view, offset, onPage) {
  const steps = [...new Set(view.series.flatMap((s) => s.checkpoints.map((c) => c.step)))].sort((a, b) => a - b);
  const at = view.series.map((s) => new Map(s.checkpoints.map((c) => [c.step, c])));
  const tokensAt = (step) => {
    for (const m of at) if (m.has(step) && m.get(step).tokens_seen !== null) return m.get(step).tokens_seen;
    return null;
  };
  const cell = (c, s) => {
    if (!c) return h("span", { class: "muted" }, "—");
    const train = Number.isFinite(c.train_loss) ? h("div", { class: "muted small", title: "mean training loss since the previous checkpoint (loss optimised)" }, `train ${fmtNum(c.train_loss, 3)}`) : null;
    if (!view.hasEval) return h("div", {}, h("span", { class: "muted" }, "not scored"), train);
    if (!c.run_id) return h("div", {}, h("span", { class: "badge badge-pending" }, "no run"), train);
    const name = `run #${c.run_id}`;
    return h("div", { class: "ckpt-cell" },
      c.scored
        ? h("span", { class: "strong", "data-testid": "checkpoint-loss", title: "held-out loss" }, fmtNum(c.mean_loss, 3))
        : ["failed", "cancelled"].includes(c.run_status)
          ? statusBadge(c.run_status)
          : h("span", { class: "badge badge-pending", "data-testid": "pending", title: "its scoring run has not finished" }, "pending"),
      " ",
      h("a", { href: `#/runs/${c.run_id}`, class: "small", "aria-label": `${name}: ${s.label} at step ${c.step}`, "data-testid": "checkpoint-run" }, name),
      train);
  };
  const page = steps.slice(offset, offset + CHECKPOINT_ROWS);
  return card(`Checkpoints (${fmtInt(steps.length)} steps × ${view.series.length} losses)`,
    table({
      label: "Checkpoints", testid: "checkpoints-table", rows: page,
      empty: "No checkpoint yet: the first is saved when training starts (step 0).",
      rowProps: (step) => ({ "data-testid": "checkpoint-row", dataset: { step } }),
      columns: [
        { label: "Step", numeric: true, cell: (step) => h("span", { class: "strong" }, fmtInt(step)) },
        { label: "Tokens seen", numeric: true, cell: (step) => fmtCompact(tokensAt(step)) },
        ...view.series.map((s, i) => ({ label: lossKey(s.label, s.color), cell: (step) => cell(at[i].get(step), s) })),
      ],
    }),
    pager({ total: steps.length, offset, limit: CHECKPOINT_ROWS, noun: "steps", onChange: onPage }),
    h("p", { class: "muted small" }, view.hasEval
      ? "Held-out loss of each checkpoint, linked to its scoring run (every token's loss, calibration, hardest tokens)."
      : "Without an eval corpus the checkpoints are saved but not scored."));
}

// ---- charts ---------------------------------------------------------------------------------------

const goToRun = (runId) => { window.location.hash = `#/runs/${runId}`; };

/** One held-out metric per loss at each scored checkpoint; clicking a point opens its run. */
function heldOut(key, { dash, suffix = "", width } = {}) {
  return (view) => view.series.map((s) => {
    const points = s.checkpoints.filter((c) => c.scored && c[key] !== null && c[key] !== undefined && (c.step > 0 || !view.hideUntrained));
    return {
      label: `${s.label}${suffix}`, color: s.color, dash, width, markers: true,
      x: points.map((c) => c.step), y: points.map((c) => c[key]), customdata: points.map((c) => c.run_id),
    };
  });
}

const heldOutChart = (traces, options) => (el, view) => charts.stepChart(el, traces(view), {
  ...options, empty: "Waiting for the first scored checkpoint", pick: goToRun,
});

const CHARTS = [
  {
    id: "train-loss", title: "Training loss",
    caption: "Each training step's batch: solid = the loss optimised, dotted = its plain cross-entropy (the same line for ce). Only the dotted lines compare across losses.",
    description: "Training loss and cross-entropy against the step, per loss",
    draw: (el, view) => charts.stepChart(el, view.series.flatMap((s) => {
      const c = s.curve || { step: [], loss: [], ce_loss: [] };
      const lines = [{ label: s.label, color: s.color, x: c.step, y: c.loss }];
      if (s.loss !== "ce") lines.push({ label: `${s.label} (CE)`, color: s.color, x: c.step, y: c.ce_loss, dash: "dot", width: 1.5 });
      return lines;
    }), { yTitle: "loss (nats)", empty: "Waiting for the first training step" }),
  },
  {
    id: "heldout-loss", heldOut: true, title: "Held-out loss",
    caption: "Mean −log p per token of the eval corpus at each checkpoint (nats). Click a point to open its scoring run.",
    description: "Held-out loss against the step, per loss",
    draw: heldOutChart(heldOut("mean_loss"), { yTitle: "held-out loss (nats)" }),
  },
  {
    id: "perplexity", heldOut: true, title: "Perplexity",
    caption: "exp(held-out loss), on a log scale.",
    description: "Held-out perplexity against the step, per loss",
    draw: heldOutChart(heldOut("perplexity"), { yTitle: "perplexity", yType: "log", yFormat: ".1f" }),
  },
  {
    id: "ece", heldOut: true, title: "Calibration (top-label ECE)",
    caption: "Expected calibration error of the top-1 prediction on the eval corpus (15 bins): lower is better calibrated.",
    description: "Top-label expected calibration error against the step, per loss",
    draw: heldOutChart(heldOut("ece"), { yTitle: "ECE", yFormat: ".4f", zeroBased: true }),
  },
  {
    id: "rare-frequent", heldOut: true, title: "Rare vs frequent tokens",
    caption: "Mean loss on tokens of the rarest types (solid) and of the most frequent types (dashed), each 30% of the eval text.",
    description: "Held-out loss on rare and on frequent tokens against the step, per loss",
    draw: heldOutChart((view) => [
      ...heldOut("rare_loss", { suffix: " rare" })(view),
      ...heldOut("frequent_loss", { suffix: " frequent", dash: "dash", width: 1.5 })(view),
    ], { yTitle: "loss (nats)" }),
  },
  {
    id: "easy-share", heldOut: true, title: "Easy tokens",
    caption: "Share of eval tokens the model gives p ≥ 0.5.",
    description: "Share of easy tokens (p at least 0.5) against the step, per loss",
    draw: heldOutChart(heldOut("easy_share"), { yTitle: "tokens with p ≥ 0.5", yFormat: ".1%", tickformat: ".1~%", zeroBased: true }),
  },
];
