// The final checkpoint of each loss on the eval corpus, side by side: held-out loss, its difference
// from cross-entropy's, perplexity, calibration, rare vs frequent tokens; the best of each column bold.

import { card, notice, statusBadge, table } from "../../components.js";
import { h } from "../../dom.js";
import { fmtInt, fmtNum, fmtPct } from "../../format.js";
import { lossKey } from "../../parts.js";

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
  // From the training job's own held-out evaluation (checkpoint.heldout): closer to the calibrated value is better.
  { key: "coverage90", get: (f) => (f.heldout ? f.heldout.nucleus_coverage["0.9"] : null), label: "Top-p 0.9 cover", title: "share of tokens inside the smallest top-0.9 set (calibrated: 0.9)", fmt: (v) => fmtNum(v, 3), better: (a, b) => Math.abs(a - 0.9) < Math.abs(b - 0.9) },
  { key: "temperature", get: (f) => (f.heldout ? f.heldout.temperature : null), label: "Best T", title: "post-hoc temperature minimising held-out NLL (> 1: over-confident)", fmt: (v) => fmtNum(v, 3), better: (a, b) => Math.abs(Math.log(a)) < Math.abs(Math.log(b)) },
];
const valueOf = (c, f) => (f ? (c.get ? c.get(f) : f[c.key]) : null);

/** Index of the single best value; null when another shows the same (rounded) text, or no values. */
function best(values, better, fmt) {
  let at = null;
  values.forEach((v, i) => { if (Number.isFinite(v) && (at === null || better(v, values[at]))) at = i; });
  if (at === null) return null;
  const shown = fmt(values[at]);
  return values.some((v, i) => i !== at && Number.isFinite(v) && fmt(v) === shown) ? null : at;
}

/** `otherRuns`: other models' done runs on the eval corpus, each linked into Compare against every loss. */
export function finalCard(view, otherRuns = []) {
  if (!view.hasEval) {
    return card("Final checkpoints", notice("This experiment has no eval corpus, so its checkpoints are not scored: compare the training curves below, or score a checkpoint on a corpus from the Runs page.", "info"));
  }
  const rows = view.series;
  if (!rows.some((s) => s.final)) {
    return card("Final checkpoint per loss", notice("No checkpoint is scored yet: this table fills in as the scoring runs of the checkpoints finish.", "info"));
  }
  return card("Final checkpoint per loss",
    h("div", { class: "table-compact" }, table({
      label: "Final checkpoint per loss", testid: "final-table", rows, columns: finalColumns(rows),
      rowProps: (s) => ({ "data-testid": "final-row", dataset: { loss: s.label } }),
    })),
    h("p", { class: "muted small" }, "The last scored checkpoint of each loss, on the eval corpus. Bold: the best value of the column."),
    otherModels(rows, otherRuns));
}

/** "SmolLM2@0 vs ce" links: another model (A) against each loss's final checkpoint (B), token by token. */
function otherModels(rows, otherRuns) {
  const finals = rows.filter((s) => s.final && s.final.run_id);
  if (!otherRuns.length || !finals.length) return null;
  return h("p", { class: "compare-links", "data-testid": "compare-other-models" }, "Compare token by token: ",
    otherRuns.flatMap((run) => finals.map((s) => h("a", {
      href: `#/compare?a=${run.id}&b=${s.final.run_id}`, class: "chip-link", "data-testid": "compare-link",
      title: "different tokenizers line up on character-span segments",
    }, `${run.checkpoint.series_name}@${run.checkpoint.step} vs ${s.label}`))));
}

/** Loss, step, held-out loss, Δ vs ce (when a ce series has a final checkpoint), the other metrics, run. */
function finalColumns(rows) {
  const finals = rows.map((s) => s.final);
  const nFinal = finals.filter(Boolean).length;
  const baseline = rows.find((s) => s.loss === "ce" && s.final);
  const bestAt = Object.fromEntries(FINAL_COLUMNS.map((c) => [c.key, nFinal > 1 ? best(finals.map((f) => valueOf(c, f)), c.better, c.fmt) : null]));
  const metric = (c) => ({
    label: c.label, numeric: true, title: c.title, cell: (s) => {
      if (!s.final) return "—";
      const isBest = bestAt[c.key] === rows.indexOf(s);
      const value = valueOf(c, s.final);
      if (value === null || value === undefined) return "—";
      return h("span", { class: isBest ? "best" : null, title: isBest ? `best of the ${nFinal} losses` : null, "data-testid": c.testid || null }, c.fmt(value));
    },
  });
  return [
    { label: "Loss", class: "col-loss", cell: (s) => h("div", {}, lossKey(s.label, s.color), h("div", { class: "muted small mono series-sub" }, s.name)) },
    {
      label: "Step", numeric: true, cell: (s) => {
        if (s.final) return h("span", { "data-testid": "final-step" }, fmtInt(s.final.step));
        const ended = s.job && (s.job.status === "failed" || s.job.status === "cancelled");
        return ended ? statusBadge(s.job.status) : h("span", { class: "badge badge-pending" }, "pending");
      },
    },
    metric(FINAL_COLUMNS[0]),
    baseline ? deltaColumn(baseline) : null,
    ...FINAL_COLUMNS.slice(1).map(metric),
    { label: "Run", title: "the final checkpoint's scoring run", cell: (s) => (s.final && s.final.run_id ? h("a", { href: `#/runs/${s.final.run_id}` }, `run #${s.final.run_id}`) : "—") },
    { label: "Compare", title: "token by token against another loss's final checkpoint (this one is A)", cell: (s) => compareLinks(s, rows) },
  ].filter(Boolean);
}

/** Links into the Compare view: this loss's final run as A against each other loss's as B. */
function compareLinks(s, rows) {
  if (!s.final || !s.final.run_id) return "—";
  const others = rows.filter((o) => o !== s && o.final && o.final.run_id);
  return h("span", { class: "compare-links" }, others.map((o) => h("a", {
    href: `#/compare?a=${s.final.run_id}&b=${o.final.run_id}`, class: "chip-link", "data-testid": "compare-link",
    title: `${s.label} (A) against ${o.label} (B), token by token, at their last scored checkpoints`,
  }, `vs ${o.label}`)));
}

/** Held-out loss minus the ce model's: green below, red above, "±0.000" when they round the same. */
function deltaColumn(baseline) {
  return {
    label: "Δ vs ce", numeric: true, title: "held-out loss minus the ce model's (negative: better than cross-entropy)",
    cell: (s) => {
      if (!s.final) return "—";
      if (s === baseline) return h("span", { class: "muted" }, "baseline");
      const d = s.final.mean_loss - baseline.final.mean_loss;
      const text = Math.abs(d).toFixed(3);
      if (text === "0.000") return h("span", { class: "muted", title: `${d} nats` }, "±0.000");
      return h("span", { class: d < 0 ? "delta-good" : "delta-bad", title: `${d} nats` }, `${d > 0 ? "+" : "−"}${text}`);
    },
  };
}
