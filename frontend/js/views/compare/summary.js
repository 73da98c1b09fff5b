// The corpus-wide comparison of runs A and B: key figures side by side (mean loss, bits per
// character, ECE, Brier), both reliability diagrams overlaid, Δ by GLTR rank bucket and by token
// frequency bucket, and where B wins and loses most, each unit with its context and a link that
// shows its document.

import * as charts from "../../charts.js";
import { card, statGrid, table } from "../../components.js";
import { h } from "../../dom.js";
import { fmtInt, fmtNum, fmtPct } from "../../format.js";
import { visibleText } from "../../tokens.js";

const COLOUR_A = "#ea580c";
const COLOUR_B = "#4f46e5";

/** {el, plots}: the summary's cards; `docHref(documentId)` links a unit to its document in this view. */
export function compareSummary(summary, docHref) {
  const ca = summary.calibration_a;
  const cb = summary.calibration_b;
  const pair = (a, b, digits = 4) => `${fmtNum(a, digits)} → ${fmtNum(b, digits)}`;
  const stats = statGrid([
    { label: "alignment", value: summary.alignment, hint: "token: the runs stored the same token ids; segment: character spans where both tokenizations have a boundary" },
    { label: "tokens A → B", value: `${fmtInt(summary.tokens_a)} → ${fmtInt(summary.tokens_b)}` },
    { label: "mean loss A → B", value: pair(summary.mean_loss_a, summary.mean_loss_b), hint: "nats per token of each run's own tokenization" },
    { label: "bits / char A → B", value: pair(summary.bits_per_char_a, summary.bits_per_char_b), hint: "comparable across tokenizers" },
    { label: "total Δ log p", value: fmtNum(summary.total_delta, 4), hint: "Σ log p_B − Σ log p_A over the corpus (nats); > 0: B gives the text more probability" },
    { label: "ECE A → B", value: pair(ca.ece, cb.ece) },
    { label: "Brier A → B", value: pair(ca.brier, cb.brier) },
  ], { testid: "compare-stats" });
  const reliability = charts.figure("Top-1 reliability of both runs: points below the diagonal are over-confident.",
    "Reliability diagrams of A and B overlaid", "compare-reliability");
  return {
    el: h("div", {},
      stats,
      h("div", { class: "compare-lists" },
        card("Where B wins most", extremes(summary.b_wins_most, docHref, "compare-wins")),
        card("Where B loses most", extremes(summary.b_loses_most, docHref, "compare-losses"))),
      h("div", { class: "compare-lists" },
        card("Reliability", reliability.el),
        card("By rank bucket of A (GLTR)", buckets(summary.rank_buckets, (b) => b.label, "compare-rank-buckets")),
        card("By frequency bucket of A's token type", buckets(summary.frequency_buckets, (b) => `${b.bucket} (${b.bucket === 0 ? "rarest" : b.bucket === 9 ? "most frequent" : "…"})`, "compare-frequency-buckets")))),
    draw: () => (ca.reliability && cb.reliability
      ? charts.reliabilityOverlay(reliability.plot, [
        { name: `A (run #${summary.run_a.run_id})`, calib: ca.reliability, color: COLOUR_A },
        { name: `B (run #${summary.run_b.run_id})`, calib: cb.reliability, color: COLOUR_B }])
      : Promise.resolve()),
    plots: [reliability.plot],
  };
}

function extremes(units, docHref, testid) {
  return table({
    testid, label: testid, empty: "No units.",
    columns: [
      { label: "Δ log p", numeric: true, cell: (u) => fmtNum(u.delta, 3) },
      { label: "in context", cell: (u) => h("a", { href: docHref(u.document_id) },
        h("span", { class: "muted" }, u.context_before.slice(-24)), h("mark", {}, visibleText(u.text)), h("span", { class: "muted" }, u.context_after.slice(0, 24))) },
      { label: "log p A → B", numeric: true, cell: (u) => `${fmtNum(u.logprob_a, 3)} → ${fmtNum(u.logprob_b, 3)}` },
    ],
    rows: units,
  });
}

function buckets(rows, label, testid) {
  return table({
    testid, label: testid, rows: rows.filter((b) => b.tokens > 0),
    columns: [
      { label: "bucket", cell: label },
      { label: "A tokens", numeric: true, cell: (b) => fmtInt(b.tokens) },
      { label: "mean loss A → B", numeric: true, cell: (b) => `${fmtNum(b.mean_loss_a, 3)} → ${fmtNum(b.mean_loss_b, 3)}` },
      { label: "mean Δ", numeric: true, cell: (b) => fmtNum(b.mean_delta, 3) },
      { label: "B wins", numeric: true, cell: (b) => fmtPct(b.b_wins) },
    ],
  });
}
