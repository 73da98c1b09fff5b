// Pieces of UI that show one domain object the same way on every page that shows it: a run's progress,
// a loss's colour key, an experiment's state in one word. Generic pieces (tables, badges, forms) are in
// components.js.

import { progressBar } from "./components.js";
import { h } from "./dom.js";
import { fmtCompact, fmtInt, fmtRate } from "./format.js";

/** A run's progress: documents scored as a bar, then tokens, rate, shards and any shard errors. */
export function progressCell(p) {
  const label = `${fmtInt(p.documents_done)} / ${fmtInt(p.documents_total)} docs`;
  const facts = [`${fmtCompact(p.tokens_done)} tokens`];
  if (p.tokens_per_s) facts.push(fmtRate(p.tokens_per_s));
  if (p.shards_total > 1) facts.push(`${p.shards_done}/${p.shards_total} shards`);
  if (p.shards_failed) facts.push(`${p.shards_failed} failed`);
  return h("div", { class: "progress-cell" },
    progressBar(p.documents_done, p.documents_total, { label, status: p.status }),
    h("div", { class: "muted small" }, facts.join(" · ")),
    p.errors && p.errors.length ? h("ul", { class: "error-list", "data-testid": "run-errors" }, p.errors.map((e) => h("li", {}, e))) : null);
}

/** A loss with its colour: the key used in the legend, tables and progress rows. */
export function lossKey(label, color, { testid } = {}) {
  return h("span", { class: "loss-key", "data-testid": testid || null },
    h("span", { class: "swatch", style: { background: color }, "aria-hidden": "true" }), h("span", { class: "mono" }, label));
}

/**
 * The experiment's state in one word from its series' job statuses: failed (a series failed), running,
 * queued, scoring (trained, checkpoints await their scoring runs), done, or cancelled.
 */
export function experimentStatus(statuses, { unscored = 0 } = {}) {
  if (!statuses.length) return "queued";
  for (const s of ["failed", "running", "queued", "cancelled"]) if (statuses.includes(s)) return s;
  return unscored > 0 ? "scoring" : "done";
}
