// #/runs — every scoring run with its status and progress, refreshed while any run is live, and a
// form to start a new run.

import { api } from "../api.js";
import { card, errorBox, field, formStatus, notice, pager, select, statusBadge, table, timeAgo } from "../components.js";
import { h, replace } from "../dom.js";
import { fmtAgo, fmtCompact, fmtInt, fmtNum, modelName, optionsText, parseTime } from "../format.js";
import { progressCell } from "../parts.js";

const PAGE = 50;
const LIVE_REFRESH_MS = 2000;
// With nothing live, look for runs started elsewhere (CLI, notebook) less often.
const IDLE_REFRESH_TICKS = 5;
// What each window policy does, for the form's select (the policies themselves come from the server).
const WINDOW_HINTS = { rolling: "disjoint windows, lm-eval", strided: "overlapping windows" };

export async function mount(ctx) {
  ctx.setTitle("Runs");
  let offset = 0;
  let ticks = 0;
  let anyLive = false;
  const listStatus = h("div", { "aria-live": "polite" });
  const listEl = h("div", { class: "runs-list" });
  const formEl = h("div");

  const refresh = async () => {
    const page = await api.runs({ offset, limit: PAGE }, ctx.signal);
    if (!ctx.alive) return;
    anyLive = page.items.some((r) => ctx.vocab.live.has(r.progress.status));
    replace(listEl, runsTable(page.items, ctx.vocab, refreshSoon),
      pager({ total: page.total, offset, limit: PAGE, noun: "runs", onChange: (o) => { offset = o; refreshSoon(); } }));
    listStatus.replaceChildren();
  };
  const refreshSoon = () => refresh().catch((error) => showPollError(error));
  const showPollError = (error) => {
    if (!ctx.alive || error.name === "AbortError") return;
    replace(listStatus, errorBox(error, { title: "Could not refresh the runs" }));
  };

  replace(ctx.root,
    h("div", { class: "page-head" },
      h("div", {}, h("h1", {}, "Runs"), h("p", { class: "lede" }, "Each run scores one checkpoint on one corpus and stores every token's loss, probability, rank and top-k alternatives."))),
    formEl,
    card("All runs", listStatus, listEl));

  await refresh();
  ctx.every(LIVE_REFRESH_MS, () => {
    ticks += 1;
    if (anyLive || ticks % IDLE_REFRESH_TICKS === 0) refreshSoon();
  });
  startRunForm(formEl, ctx, refreshSoon).catch((error) => {
    if (ctx.alive && error.name !== "AbortError") replace(formEl, errorBox(error, { title: "Cannot load the start-a-run form" }));
  });
}

function runsTable(runs, vocab, refreshSoon) {
  const act = (fn, label) => async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      await fn();
    } catch (error) {
      button.after(errorBox(error, { title: `Could not ${label}` }));
    }
    refreshSoon();
  };
  return table({
    label: "Runs", testid: "runs-table", empty: "No runs yet: start one above, or with `focalscope score`.",
    rowProps: (r) => ({ "data-testid": "run-row", dataset: { runId: r.id, status: r.progress.status } }),
    rows: runs,
    columns: [
      { label: "Run", cell: (r) => h("a", { href: `#/runs/${r.id}`, class: "run-link" }, `#${r.id}`) },
      {
        label: "Model", cell: (r) => h("div", {},
          h("div", { class: "strong", title: r.checkpoint.path }, modelName(r.checkpoint)),
          h("div", { class: "muted small" }, `${r.checkpoint.architecture} · ${r.checkpoint.format}`)),
      },
      {
        label: "Corpus", cell: (r) => h("div", {},
          h("div", {}, r.corpus.name),
          h("div", { class: "muted small" }, `${fmtInt(r.corpus.n_documents)} docs · ${fmtCompact(r.corpus.n_chars)} chars`)),
      },
      { label: "Options", cell: (r) => h("span", { class: "muted small mono" }, optionsText(r.options)) },
      { label: "Status", cell: (r) => statusBadge(r.progress.status) },
      { label: "Progress", class: "col-progress", cell: (r) => progressCell(r.progress) },
      {
        label: "Mean loss", numeric: true, title: "nats per token (perplexity below)", cell: (r) => {
          const s = r.headline;
          return s ? h("div", {}, h("div", { class: "strong", "data-testid": "mean-loss" }, fmtNum(s.mean_loss, 3)), h("div", { class: "muted small" }, `ppl ${fmtNum(s.perplexity, 1)}`)) : "—";
        },
      },
      { label: "Created", cell: (r) => timeAgo(parseTime(r.created_at), fmtAgo(r.created_at)) },
      {
        label: "", cell: (r) => {
          const p = r.progress;
          const buttons = [];
          if (vocab.live.has(p.status)) buttons.push(h("button", { type: "button", class: "btn btn-small", on: { click: act(() => api.cancelRun(r.id), "cancel") } }, "Cancel"));
          if (p.status === "failed" || p.status === "cancelled" || p.shards_failed > 0) buttons.push(h("button", { type: "button", class: "btn btn-small", on: { click: act(() => api.retryRun(r.id), "retry") } }, "Retry"));
          return h("div", { class: "actions" }, buttons);
        },
      },
    ],
  });
}

async function startRunForm(container, ctx, onCreated) {
  const [checkpoints, corpora] = await Promise.all([api.checkpoints({ limit: 500 }, ctx.signal), api.corpora({ limit: 500 }, ctx.signal)]);
  if (!ctx.alive) return;
  if (!checkpoints.items.length || !corpora.items.length) {
    const missing = [];
    if (!checkpoints.items.length) missing.push(h("a", { href: "#/models" }, "register a checkpoint"));
    if (!corpora.items.length) missing.push(h("a", { href: "#/corpora" }, "upload a corpus"));
    replace(container, notice(h("span", {}, "To start a run, first ", missing.flatMap((m, i) => (i ? [" and ", m] : [m])), "."), "info"));
    return;
  }
  const checkpoint = select(checkpoints.items.map((c) => ({ value: c.id, label: `${modelName(c)} (${c.architecture})` })), { name: "checkpoint_id" });
  const corpus = select(corpora.items.map((c) => ({ value: c.id, label: `${c.name} (${fmtInt(c.n_documents)} docs)` })), { name: "corpus_id" });
  const windowSel = select(ctx.vocab.window_policies.map((w) => ({ value: w, label: WINDOW_HINTS[w] ? `${w} (${WINDOW_HINTS[w]})` : w })), { name: "window" });
  const maxLength = h("input", { type: "number", name: "max_length", min: 2, max: 131072, value: 2048, required: true });
  const stride = h("input", { type: "number", name: "stride", min: 1, placeholder: "max length / 2" });
  const topK = h("input", { type: "number", name: "top_k", min: 1, max: 50, value: 5, required: true });
  const dtype = select(ctx.vocab.dtypes.map((d) => ({ value: d, label: d })), { name: "dtype" });
  const strideField = field("Stride", stride, { hint: "new tokens per window" });
  const syncStride = () => { strideField.hidden = windowSel.value !== "strided"; };
  windowSel.addEventListener("change", syncStride);
  syncStride();
  const status = formStatus();
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Start run");
  const form = h("form", { class: "form-grid", "aria-label": "Start a run" },
    field("Checkpoint", checkpoint), field("Corpus", corpus), field("Window", windowSel),
    field("Max length", maxLength, { hint: "tokens per window" }), strideField,
    field("Top-k", topK, { hint: "alternatives kept per token" }), field("Weights dtype", dtype),
    h("div", { class: "form-actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const options = { window: windowSel.value, max_length: Number(maxLength.value), top_k: Number(topK.value), dtype: dtype.value };
    if (windowSel.value === "strided" && stride.value) options.stride = Number(stride.value);
    submit.disabled = true;
    status.busy("Starting…");
    try {
      const { status: code, data } = await api.createRun({ checkpoint_id: Number(checkpoint.value), corpus_id: Number(corpus.value), options });
      const link = h("a", { href: `#/runs/${data.id}` }, `run #${data.id}`);
      status.ok(code === 201
        ? h("span", {}, "Queued ", link, ".")
        : h("span", {}, "This checkpoint, corpus and options were scored before: ", link, " (its failed shards, if any, are queued again)."));
      onCreated();
    } catch (error) {
      status.error(error);
    } finally {
      submit.disabled = false;
    }
  });
  replace(container, h("details", { class: "card card-collapsible" },
    h("summary", {}, h("span", { class: "card-title" }, "Start a run")),
    form, status.el));
}
