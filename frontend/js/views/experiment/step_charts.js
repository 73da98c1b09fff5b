// The experiment's charts: each metric against the training step, one colour per loss. The training
// curves always; the held-out metrics only with an eval corpus (a point per scored checkpoint, which
// opens its scoring run when clicked).

import * as charts from "../../charts.js";

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

/** A number of the training job's own held-out evaluation (checkpoint.heldout) per loss at each checkpoint. */
function evaluated(pick, { dash, suffix = "", width } = {}) {
  return (view) => view.series.map((s) => {
    const points = s.checkpoints.filter((c) => c.heldout && pick(c.heldout) !== null && pick(c.heldout) !== undefined
      && (c.step > 0 || !view.hideUntrained));
    return {
      label: `${s.label}${suffix}`, color: s.color, dash, width, markers: true,
      x: points.map((c) => c.step), y: points.map((c) => pick(c.heldout)),
    };
  });
}

/** A per-step column of the training curve (curve[key]) per loss, where it has values. */
function perStep(key) {
  return (view) => view.series.map((s) => {
    const c = s.curve || { step: [] };
    const rows = c.step.map((step, i) => [step, (c[key] || [])[i]]).filter(([, y]) => y !== null && y !== undefined);
    return { label: s.label, color: s.color, x: rows.map(([x]) => x), y: rows.map(([, y]) => y) };
  }).filter((trace) => trace.x.length);
}

const evaluatedChart = (traces, options) => (el, view) => charts.stepChart(el, traces(view), {
  ...options, empty: "Waiting for the first evaluated checkpoint",
});

const heldOutChart = (traces, options) => (el, view) => charts.stepChart(el, traces(view), {
  ...options, empty: "Waiting for the first scored checkpoint", pick: goToRun,
});

export const CHARTS = [
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
  {
    id: "nucleus", heldOut: true, title: "Nucleus coverage",
    caption: "Share of eval tokens whose true token is inside the smallest top-p set, p = 0.9 (solid) and 0.5 (dashed). A calibrated model hits p; below p it is over-confident, which is what top-p sampling feels.",
    description: "Nucleus coverage at p 0.9 and 0.5 against the step, per loss",
    draw: evaluatedChart((view) => [
      ...evaluated((h) => h.nucleus_coverage["0.9"], { suffix: " p=0.9" })(view),
      ...evaluated((h) => h.nucleus_coverage["0.5"], { suffix: " p=0.5", dash: "dash", width: 1.5 })(view),
    ], { yTitle: "coverage", yFormat: ".3f" }),
  },
  {
    id: "temperature", heldOut: true, title: "Post-hoc temperature",
    caption: "The T that minimises held-out NLL of softmax(z/T): above 1 the model is over-confident, below 1 under-confident.",
    description: "Best post-hoc temperature against the step, per loss",
    draw: evaluatedChart(evaluated((h) => h.temperature), { yTitle: "T", yFormat: ".3f" }),
  },
  {
    id: "entropy-gap", heldOut: true, title: "Expected entropy − realised loss",
    caption: "Mean entropy of the predicted distribution minus the held-out loss (nats): 0 if calibrated, negative if over-confident.",
    description: "Mean predicted entropy minus held-out loss against the step, per loss",
    draw: evaluatedChart(evaluated((h) => h.mean_entropy - h.ce), { yTitle: "nats", yFormat: ".3f" }),
  },
  {
    id: "grad-norm", title: "Gradient norm",
    caption: "Gradient norm of each logged step before clipping to 1.",
    description: "Gradient norm against the step, per loss",
    draw: (el, view) => charts.stepChart(el, perStep("grad_norm")(view), { yTitle: "‖g‖", yType: "log", empty: "Waiting for the first training step" }),
  },
  {
    id: "gamma", title: "Effective γ",
    caption: "The γ each step used: constant for focal, a line for a schedule, the batch's for focal-adaptive.",
    description: "Effective focal gamma against the step, per loss",
    draw: (el, view) => charts.stepChart(el, perStep("gamma")(view), { yTitle: "γ", empty: "No loss with a γ" }),
  },
];
