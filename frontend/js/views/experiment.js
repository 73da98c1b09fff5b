// #/experiments/{id} — one experiment: a model per loss, same seed and settings, compared side by side.
// Training progress per series, the final checkpoint of each loss, held-out metrics against the step
// (loss, perplexity, ECE, rare vs frequent tokens, easy-token share) and every checkpoint with a link
// to its scoring run. Polls every 2 s while a series trains or a checkpoint awaits scoring; the charts
// are redrawn in place (Plotly.react), so a zoom survives a refresh. The parts are in views/experiment/.

import { api } from "../api.js";
import * as charts from "../charts.js";
import { card, errorBox } from "../components.js";
import { h, replace } from "../dom.js";
import { experimentStatus, lossKey } from "../parts.js";
import { checkpointsCard } from "./experiment/checkpoints.js";
import { finalCard } from "./experiment/final_table.js";
import { collapseCard, samplesCard } from "./experiment/samples.js";
import { header, trainingCard } from "./experiment/head.js";
import { CHARTS } from "./experiment/step_charts.js";

const REFRESH_MS = 2000;
// Curve points per series: enough for a smooth line, bounded for a 2-second poll.
const CURVE_POINTS = 500;

export async function mount(ctx) {
  const id = ctx.params.experimentId;
  let cmp = await api.experimentComparison(id, { max_points: CURVE_POINTS }, ctx.signal);
  if (!ctx.alive) return;
  const exp = cmp.experiment;
  ctx.setTitle(`${exp.name} · Experiments`);
  const about = await aboutExperiment(exp, ctx.signal);
  if (!ctx.alive) return;

  const hasEval = hasEvalCorpus(exp);
  // Without an eval corpus nothing is scored: only the training curves have data.
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
    ctx.updateQuery({ untrained: hideUntrained ? "hide" : null });
    render();
  });
  const parts = {
    head: h("div", { class: "page-head" }), pollStatus: h("div", { "aria-live": "polite" }), progress: h("div"),
    legend: h("div", { class: "loss-legend", "data-testid": "loss-legend", role: "group", "aria-label": "Colour of each loss" }),
    final: h("div"), checkpoints: h("div"), collapse: h("div"), samples: h("div"), hasEval, figures, untrainedToggle,
  };

  const render = () => {
    const view = { ...viewModel(cmp, ctx.vocab, about.expected), hideUntrained };
    live = view.live;
    renderParts(ctx, parts, view, about, checkpointOffset, (o) => { checkpointOffset = o; render(); });
  };
  const refresh = poller(ctx, parts.pollStatus, () => api.experimentComparison(id, { max_points: CURVE_POINTS }, ctx.signal), (fresh) => {
    cmp = fresh;
    render();
  });
  replace(ctx.root, ...layout(exp, parts));
  render();
  ctx.every(REFRESH_MS, () => { if (live) refresh(); });
}

const hasEvalCorpus = (exp) => exp.eval_corpus_id !== null && exp.eval_corpus_id !== undefined;

/**
 * What the page shows besides the comparison: corpus names and the preset's shape (decoration: the page
 * works without them), and how many checkpoints each series saves, by the server's rule (null when
 * the server did not say; the page shows "—").
 */
async function aboutExperiment(exp, signal) {
  const soft = (p) => p.catch((error) => (error.name === "AbortError" ? Promise.reject(error) : null));
  const config = exp.config || {};
  const [trainCorpus, evalCorpus, presets, plan, evalRuns] = await Promise.all([
    soft(api.corpus(exp.train_corpus_id, signal)),
    exp.eval_corpus_id ? soft(api.corpus(exp.eval_corpus_id, signal)) : null,
    soft(api.trainingPresets(signal)),
    soft(api.saveSteps(config.steps, config.save_every, signal)),
    exp.eval_corpus_id ? soft(api.runs({ corpus_id: exp.eval_corpus_id, limit: 100 }, signal)) : null,
  ]);
  // Other models' finished runs on the eval corpus (SmolLM2 in the demo), to compare each loss against.
  const otherRuns = evalRuns ? evalRuns.items.filter((r) => r.progress.status === "done") : [];
  return { trainCorpus, evalCorpus, presets, expected: plan ? plan.save_steps.length : null, otherRuns };
}

/** The comparison in display order, with colours, expected checkpoint counts and the live flag. */
function viewModel(cmp, vocab, expected) {
  const exp = cmp.experiment;
  const config = exp.config || {};
  const order = config.losses || [];
  const hasEval = hasEvalCorpus(exp);
  const series = cmp.series.map((s, i) => {
    const at = order.indexOf(s.loss);
    const scored = s.checkpoints.filter((c) => c.scored).length;
    return { ...s, label: s.loss || s.name, color: charts.seriesColor(at >= 0 ? at : i), scored, expected };
  });
  const statuses = series.map((s) => (s.job ? s.job.status : "done"));
  const jobsLive = statuses.some((st) => vocab.live.has(st));
  // A checkpoint whose scoring run failed will not be scored by waiting: it does not keep the page live.
  const waiting = (c) => !c.scored && !["failed", "cancelled"].includes(c.run_status);
  const unscored = hasEval ? series.reduce((n, s) => n + s.checkpoints.filter(waiting).length, 0) : 0;
  return {
    exp, config, series, hasEval, expected, unscored,
    status: experimentStatus(statuses, { unscored }),
    live: jobsLive || unscored > 0,
  };
}

function renderParts(ctx, parts, view, about, checkpointOffset, onPage) {
  replace(parts.head, header(view, about));
  replace(parts.progress, trainingCard(view));
  replace(parts.legend, h("span", { class: "legend-label" }, "Colours"),
    view.series.map((s) => lossKey(s.label, s.color, { testid: "legend-item" })));
  const ours = new Set(view.series.map((s) => s.series_id));
  replace(parts.final, finalCard(view, about.otherRuns.filter((r) => !ours.has(r.checkpoint.series_id))));
  replace(parts.checkpoints, checkpointsCard(view, checkpointOffset, onPage));
  replace(parts.collapse, collapseCard(view));
  replace(parts.samples, samplesCard(view));
  for (const f of parts.figures) {
    f.draw(f.fig.plot, view).catch((error) => { if (ctx.alive) f.fig.el.append(errorBox(error, { title: "A chart failed" })); });
  }
}

function layout(exp, parts) {
  return [
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" }, h("a", { href: "#/experiments" }, "Experiments"), h("span", { "aria-hidden": "true" }, " / "), exp.name),
    parts.head, parts.pollStatus, parts.progress, parts.final,
    h("section", { class: "charts-section", "aria-label": "Metrics against the training step" },
      h("div", { class: "section-head" }, h("h2", {}, "Over training"),
        h("div", { class: "section-tools" },
          parts.hasEval ? h("label", { class: "check" }, parts.untrainedToggle, "Hide step 0 (untrained)") : null, parts.legend)),
      h("div", { class: parts.hasEval ? "grid-2" : "grid-wide" }, parts.figures.map((f) => card(f.title, f.fig.el)))),
    parts.collapse, parts.samples, parts.checkpoints,
  ];
}

/** A refresh that skips a tick while the previous one is in flight and shows its error in `statusEl`. */
function poller(ctx, statusEl, load, onData) {
  let inFlight = false;
  return async () => {
    if (inFlight) return;
    inFlight = true;
    try {
      const data = await load();
      if (!ctx.alive) return;
      statusEl.replaceChildren();
      onData(data);
    } catch (error) {
      if (ctx.alive && error.name !== "AbortError") replace(statusEl, errorBox(error, { title: "Could not refresh this experiment" }));
    } finally {
      inFlight = false;
    }
  };
}
