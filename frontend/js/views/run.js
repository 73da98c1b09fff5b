// #/runs/{id} — one run: key figures, loss / calibration / GLTR / focal-budget charts, the hardest
// and easiest token types, and the documents with their scores (pending ones fill in while it runs).

import { api } from "../api.js";
import * as charts from "../charts.js";
import { card, errorBox, notice, pager, statGrid, statusBadge, table, timeAgo } from "../components.js";
import { h, replace } from "../dom.js";
import { fmtAgo, fmtCompact, fmtInt, fmtNum, fmtPct, fmtProb, modelName, optionsText, parseTime } from "../format.js";
import { progressCell } from "../parts.js";
import { visibleText } from "../tokens.js";

const REFRESH_MS = 2000;
const DOCS_PAGE = 100;

export async function mount(ctx) {
  const runId = ctx.params.runId;
  let docsOffset = 0;
  let run = await api.run(runId, ctx.signal);
  let docs = await api.runDocuments(runId, { offset: docsOffset, limit: DOCS_PAGE }, ctx.signal);
  if (!ctx.alive) return;
  ctx.setTitle(`Run #${runId}`);

  const headEl = h("div", { class: "page-head" });
  const progressEl = h("div");
  const summaryEl = h("div", { class: "summary" });
  const docsEl = h("div");
  const pollStatus = h("div", { "aria-live": "polite" });
  const actionStatus = h("div", { "aria-live": "polite" });
  let summaryShown = false;
  const plots = [];
  ctx.onDispose(() => plots.forEach(charts.purge));

  const render = () => {
    const live = ctx.vocab.live.has(run.progress.status);
    replace(headEl, header(run, live, () => refresh(), (error) => replace(actionStatus, errorBox(error, { title: "The server refused" }))));
    progressEl.replaceChildren(...(live || run.progress.errors.length || run.progress.status !== "done"
      ? [card("Progress", h("div", { class: "progress-wide" }, progressCell(run.progress)),
        live ? h("p", { class: "muted small" }, "This page refreshes every 2 seconds while the run is live.") : null)]
      : []));
    if (run.summary && !summaryShown) {
      summaryShown = true;
      renderSummary(summaryEl, run, plots).catch((error) => summaryEl.append(errorBox(error, { title: "A chart failed" })));
    } else if (!run.summary && !summaryShown) {
      replace(summaryEl, notice(run.progress.status === "done"
        ? "The run's documents are scored; its summary is being computed."
        : "Charts appear when every document is scored and the summary is computed.", "info"));
    }
    replace(docsEl, card(`Documents (${fmtInt(docs.total)})`,
      documentsTable(run, docs.items),
      pager({ total: docs.total, offset: docsOffset, limit: DOCS_PAGE, noun: "documents", onChange: (o) => { docsOffset = o; refresh(); } })));
  };

  const refresh = async () => {
    try {
      [run, docs] = await Promise.all([api.run(runId, ctx.signal), api.runDocuments(runId, { offset: docsOffset, limit: DOCS_PAGE }, ctx.signal)]);
      if (!ctx.alive) return;
      pollStatus.replaceChildren();
      render();
    } catch (error) {
      if (ctx.alive && error.name !== "AbortError") replace(pollStatus, errorBox(error, { title: "Could not refresh this run" }));
    }
  };

  replace(ctx.root,
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" }, h("a", { href: "#/runs" }, "Runs"), h("span", { "aria-hidden": "true" }, " / "), `Run #${runId}`),
    headEl, actionStatus, pollStatus, progressEl, summaryEl, docsEl);
  render();
  ctx.every(REFRESH_MS, () => {
    if (ctx.vocab.live.has(run.progress.status) || !run.summary) refresh();
  });
}

function header(run, live, refresh, showError) {
  const p = run.progress;
  const act = (fn) => async (event) => {
    event.currentTarget.disabled = true;
    try { await fn(); } catch (error) { showError(error); }
    refresh();
  };
  const actions = [];
  if (live) actions.push(h("button", { type: "button", class: "btn", on: { click: act(() => api.cancelRun(run.id)) } }, "Cancel run"));
  if (p.status === "done") {
    actions.push(h("a", { class: "btn", href: `#/runs/${run.id}/types`, "data-testid": "types-link" }, "Token types"),
      h("a", { class: "btn", href: `#/compare?a=${run.id}`, title: "compare with another run on this corpus" }, "Compare…"));
  }
  if (p.status === "failed" || p.status === "cancelled" || p.shards_failed > 0) actions.push(h("button", { type: "button", class: "btn", on: { click: act(() => api.retryRun(run.id)) } }, "Retry failed shards"));
  return [
    h("div", {},
      h("h1", {}, `Run #${run.id} `, h("span", { class: "h1-sub" }, `${modelName(run.checkpoint)} on ${run.corpus.name}`), " ", statusBadge(p.status)),
      h("p", { class: "lede" },
        h("span", { class: "mono small" }, optionsText(run.options)), " · ",
        `${run.checkpoint.architecture}, ${run.checkpoint.format}`, " · created ", timeAgo(parseTime(run.created_at), fmtAgo(run.created_at)),
        h("br"), h("span", { class: "muted small mono", title: "checkpoint path" }, run.checkpoint.path))),
    h("div", { class: "actions" }, actions),
  ];
}

async function renderSummary(el, run, plots) {
  const s = run.summary;
  const st = s.stats || {};
  if (!s.n_tokens || st.empty) {
    replace(el, notice("This run scored no tokens (are the documents empty?).", "info"));
    return;
  }
  const vocab = st.vocabulary || {};
  const q = st.loss_quantiles || {};
  const stats = statGrid([
    { label: "Tokens", value: fmtInt(s.n_tokens), hint: "scored tokens" },
    { label: "Documents", value: fmtInt(s.n_documents) },
    { label: "Mean loss", value: `${fmtNum(s.mean_loss, 3)}`, hint: "nats per token: mean of −log p" },
    { label: "Perplexity", value: fmtNum(s.perplexity, s.perplexity >= 100 ? 0 : 2), hint: "exp(mean loss)" },
    { label: "ECE", value: fmtNum(s.ece, 4), hint: "expected calibration error, 15 equal-width bins (top-1)" },
    { label: "Brier", value: fmtNum(s.brier, 4), hint: "mean Σ_v (p_v − 1[v = y])²" },
    { label: "Top-1 accuracy", value: fmtPct(s.top1_accuracy, 1), hint: "share of tokens the model ranked first" },
    { label: "Token types", value: fmtInt(vocab.n_types), hint: "distinct token ids" },
  ], { testid: "run-stats" });

  const loss = charts.figure(
    `Loss per token (nats). Median ${fmtNum(q["0.5"], 2)}, p90 ${fmtNum(q["0.9"], 2)}, p99 ${fmtNum(q["0.99"], 2)}.`,
    `Histogram of ${fmtInt(s.n_tokens)} token losses; median ${fmtNum(q["0.5"], 2)} nats`, "loss-histogram");
  const calib = charts.figure(`Reliability of the top-1 prediction. ECE ${fmtNum(s.ece, 4)}: bars below the diagonal are over-confident.`,
    `Reliability diagram, ECE ${fmtNum(s.ece, 4)}`, "reliability");
  const gltr = charts.figure("Rank of the true token among the model's predictions (GLTR buckets).", "Token share by rank bucket", "gltr");
  const lorenz = charts.figure("Share of the total gradient norm held by the hardest tokens, per focal γ (γ = 0 is cross-entropy).",
    "Gradient budget Lorenz curves for each gamma", "focal-lorenz");
  const freq = charts.figure("Mean loss by frequency decile: does difficulty follow rarity?", "Mean loss by token-frequency decile", "frequency");
  const entropy = charts.figure("Entropy of the predictive distribution (nats).", "Entropy histogram", "entropy");

  replace(el,
    stats,
    h("div", { class: "grid-2" },
      card("Loss distribution", loss.el),
      card("Calibration", calib.el),
      card("Focal loss: where the gradient goes", lorenz.el, focalTable(st.focal || []),
        h("p", { class: "muted small" }, "Eff. tokens: (Σw)²/Σw² with w = (1−p)^γ, as a share of all tokens. Top x%: share of the gradient norm held by the hardest x% of tokens.")),
      card("GLTR rank buckets", gltr.el),
      card("Difficulty by frequency", freq.el),
      card("Uncertainty", entropy.el)),
    h("div", { class: "grid-2" },
      card("Hardest token types", vocabTable(vocab.hardest || [], "hardest")),
      card("Easiest token types", vocabTable(vocab.easiest || [], "easiest"))));

  const jobs = [];
  if (st.loss_histogram) { plots.push(loss.plot); jobs.push(charts.lossHistogram(loss.plot, st.loss_histogram, q)); }
  if (st.calibration) { plots.push(calib.plot); jobs.push(charts.reliabilityDiagram(calib.plot, st.calibration)); }
  if (st.gltr) { plots.push(gltr.plot); jobs.push(charts.gltrBars(gltr.plot, st.gltr)); }
  if (st.focal) { plots.push(lorenz.plot); jobs.push(charts.lorenzCurves(lorenz.plot, st.focal)); }
  if (vocab.frequency_buckets) { plots.push(freq.plot); jobs.push(charts.frequencyBars(freq.plot, vocab.frequency_buckets)); }
  if (st.entropy_histogram) { plots.push(entropy.plot); jobs.push(charts.simpleHistogram(entropy.plot, st.entropy_histogram, "entropy (nats)", "#0d9488")); }
  await Promise.all(jobs);
}

function focalTable(focal) {
  if (!focal.length) return null;
  const fractions = Object.keys(focal[0].budget_share || {}).map(Number).sort((a, b) => a - b).filter((f) => f <= 0.1);
  return table({
    label: "Focal loss per gamma", testid: "focal-table",
    rows: focal,
    columns: [
      { label: "γ", cell: (f) => h("span", { class: "gamma-key" }, h("span", { class: "swatch", style: { background: charts.gammaColor(focal.indexOf(f), focal.length) } }), String(f.gamma)) },
      { label: "Eff. tokens", numeric: true, title: "(Σw)² / Σw² as a share of all tokens", cell: (f) => h("span", { title: `${fmtNum(f.effective_tokens, 1)} tokens` }, fmtPct(f.effective_fraction)) },
      ...fractions.map((fr) => ({ label: `Top ${fmtPct(fr, 0)}`, numeric: true, title: `share of the gradient norm held by the hardest ${fmtPct(fr, 0)} of tokens`, cell: (f) => fmtPct(f.budget_share[String(fr)]) })),
      { label: "Mean FL", numeric: true, title: "mean focal loss (1−p)^γ·(−log p)", cell: (f) => fmtNum(f.mean_focal_loss, 3) },
    ],
  });
}

function vocabTable(rows, which) {
  return table({
    label: `${which} token types`, testid: `vocab-${which}`,
    empty: "No token type occurs often enough (≥ 5 times) to rank.",
    rows: rows.slice(0, 15),
    columns: [
      { label: "Token", cell: (r) => h("code", { class: "tok-chip", title: `token id ${r.token_id}` }, visibleText(r.text)) },
      { label: "Id", numeric: true, cell: (r) => h("span", { class: "muted" }, String(r.token_id)) },
      { label: "Count", numeric: true, cell: (r) => fmtInt(r.count) },
      { label: "Mean loss", numeric: true, cell: (r) => fmtNum(r.mean_loss, 3) },
      { label: "Mean p", numeric: true, cell: (r) => fmtProb(r.mean_p) },
    ],
  });
}

function documentsTable(run, docs) {
  const maxMean = Math.max(1e-9, ...docs.filter((d) => d.scored).map((d) => d.mean_loss));
  return table({
    label: "Documents of this run", testid: "documents-table",
    empty: "This corpus has no documents.",
    rows: docs,
    rowProps: (d) => ({ "data-testid": "document-row", dataset: { documentId: d.document_id, scored: d.scored } }),
    columns: [
      { label: "#", numeric: true, cell: (d) => h("span", { class: "muted" }, String(d.position + 1)) },
      {
        label: "Document", cell: (d) => h("div", {},
          d.scored ? h("a", { href: `#/runs/${run.id}/documents/${d.document_id}` }, d.title || `document ${d.document_id}`) : h("span", {}, d.title || `document ${d.document_id}`),
          h("div", { class: "muted small" }, d.source)),
      },
      { label: "Chars", numeric: true, cell: (d) => fmtCompact(d.n_chars) },
      { label: "Status", cell: (d) => (d.scored ? h("span", { class: "badge badge-done" }, "scored") : h("span", { class: "badge badge-pending", "data-testid": "pending" }, "pending")) },
      { label: "Tokens", numeric: true, cell: (d) => (d.scored ? fmtInt(d.n_tokens) : "—") },
      {
        label: "Mean loss", numeric: true, class: "col-bar", cell: (d) => (d.scored
          ? h("div", { class: "inline-bar" }, h("span", { class: "inline-bar-fill", style: { width: `${(100 * d.mean_loss) / maxMean}%` } }), h("span", { class: "inline-bar-value" }, fmtNum(d.mean_loss, 3)))
          : "—"),
      },
      { label: "Max loss", numeric: true, cell: (d) => (d.scored ? fmtNum(d.max_loss, 2) : "—") },
    ],
  });
}
