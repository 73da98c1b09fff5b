// Every checkpoint of the experiment, one row per step and one column per loss: its held-out loss
// linked to its scoring run, or why there is none (pending, failed, no eval corpus).

import { card, pager, statusBadge, table } from "../../components.js";
import { h } from "../../dom.js";
import { fmtCompact, fmtInt, fmtNum } from "../../format.js";
import { lossKey } from "../../parts.js";

const CHECKPOINT_ROWS = 25;

export function checkpointsCard(view, offset, onPage) {
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
