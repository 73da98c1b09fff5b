// #/experiments — experiments (one model per loss, same seed and settings, compared side by side) with
// their training status, and a form to start one. A started experiment opens its own page.

import { api } from "../api.js";
import * as charts from "../charts.js";
import {
  LIVE_STATUSES, card, errorBox, field, formStatus, notice, pager, progressBar, select, statusBadge, table, timeAgo,
} from "../components.js";
import { h, replace } from "../dom.js";
import { fmtAgo, fmtCompact, fmtInt, parseTime } from "../tokens.js";
import { experimentStatus, lossKey, saveSteps } from "./experiment.js";

const PAGE = 50;
const LIVE_REFRESH_MS = 2000;
const IDLE_REFRESH_TICKS = 5;

export async function mount(ctx) {
  ctx.setTitle("Experiments");
  let offset = 0;
  let ticks = 0;
  let anyLive = false;
  const listStatus = h("div", { "aria-live": "polite" });
  const listEl = h("div");
  const formEl = h("div");

  // Names for the corpus column, read once (a corpus made later shows as "corpus #id" until reload).
  const corpora = await api.corpora({ limit: 500 }, ctx.signal);
  const corpusName = new Map(corpora.items.map((c) => [c.id, c.name]));

  const refresh = async () => {
    const page = await api.experiments({ offset, limit: PAGE }, ctx.signal);
    if (!ctx.alive) return;
    anyLive = page.items.some((e) => LIVE_STATUSES.has(rowStatus(e)) || rowStatus(e) === "scoring");
    replace(listEl, experimentsTable(page.items, corpusName),
      pager({ total: page.total, offset, limit: PAGE, noun: "experiments", onChange: (o) => { offset = o; refreshSoon(); } }));
    listStatus.replaceChildren();
    return page;
  };
  const refreshSoon = () => refresh().catch((error) => {
    if (ctx.alive && error.name !== "AbortError") replace(listStatus, errorBox(error, { title: "Could not refresh the experiments" }));
  });

  replace(ctx.root,
    h("div", { class: "page-head" },
      h("div", {}, h("h1", {}, "Experiments"),
        h("p", { class: "lede" }, "Train one small model per loss — same corpus, seed and settings — and compare held-out loss, calibration and which tokens each loss learns, checkpoint by checkpoint."))),
    formEl,
    card("All experiments", listStatus, listEl));

  const first = await refresh();
  ctx.every(LIVE_REFRESH_MS, () => {
    ticks += 1;
    if (anyLive || ticks % IDLE_REFRESH_TICKS === 0) refreshSoon();
  });
  experimentForm(formEl, ctx, { corpora: corpora.items, open: first.total === 0 }).catch((error) => {
    if (ctx.alive && error.name !== "AbortError") replace(formEl, errorBox(error, { title: "Cannot load the new-experiment form" }));
  });
}

function experimentsTable(experiments, corpusName) {
  return table({
    label: "Experiments", testid: "experiments-table", rows: experiments,
    empty: "No experiments yet: start one above, or with `focalscope experiment`.",
    rowProps: (e) => ({ "data-testid": "experiment-row", dataset: { experimentId: e.id } }),
    columns: [
      { label: "Experiment", cell: (e) => h("a", { href: `#/experiments/${e.id}`, class: "run-link" }, e.name) },
      {
        label: "Losses", cell: (e) => h("div", { class: "loss-keys" },
          (e.config.losses || []).map((loss, i) => lossKey(loss, charts.seriesColor(i)))),
      },
      {
        label: "Model", cell: (e) => h("div", {},
          h("div", { class: "strong" }, e.config.preset || "—"),
          h("div", { class: "muted small nowrap" }, [e.config.tokenizer, e.config.vocab_size ? `${fmtCompact(e.config.vocab_size)} vocab` : null].filter(Boolean).join(" · "))),
      },
      {
        label: "Steps", numeric: true, cell: (e) => h("div", {},
          h("div", {}, fmtInt(e.config.steps)),
          h("div", { class: "muted small" }, `every ${fmtInt(e.config.save_every)}`)),
      },
      {
        label: "Corpora", cell: (e) => {
          const named = (id) => corpusName.get(id) || `corpus #${id}`;
          return h("div", {},
            h("div", { title: "training corpus" }, named(e.train_corpus_id)),
            h("div", { class: "muted small" }, e.eval_corpus_id ? `eval: ${named(e.eval_corpus_id)}` : "no eval corpus"));
        },
      },
      { label: "Progress", class: "col-progress", title: "training steps of all series, and checkpoints scored on the eval corpus", cell: (e) => statusCell(e) },
      { label: "Created", cell: (e) => timeAgo(parseTime(e.created_at), fmtAgo(e.created_at)) },
    ],
  });
}

/** One word for an experiment row, from the server's status summary. */
function rowStatus(experiment) {
  const st = experiment.status;
  if (!st) return "queued";
  const unscored = experiment.eval_corpus_id == null ? 0 : st.checkpoints - st.scored - st.scoring_failed;
  return experimentStatus(Object.keys(st.jobs), { unscored });
}

/** The experiment's series summed: one badge, one bar over all their steps, checkpoints scored. */
function statusCell(experiment) {
  const st = experiment.status;
  if (!st) return h("span", { class: "muted small" }, "—");
  const status = rowStatus(experiment);
  const counts = Object.entries(st.jobs).map(([s, n]) => `${n} ${s}`);
  if (experiment.eval_corpus_id != null) counts.push(`${fmtInt(st.scored)} / ${fmtInt(st.checkpoints)} checkpoints scored`);
  if (st.scoring_failed) counts.push(`${fmtInt(st.scoring_failed)} scoring failed`);
  return h("div", { class: "progress-cell", "data-testid": "experiment-status" },
    h("div", { class: "status-line" }, statusBadge(status), h("span", { class: "muted small" }, counts.join(" · "))),
    progressBar(st.steps_done, st.steps_total, { label: `${fmtInt(st.steps_done)} / ${fmtInt(st.steps_total)} steps`, status }));
}

// ---- the form ------------------------------------------------------------------------------------

/** "ce, focal:2;  poly1:1" → ["ce", "focal:2", "poly1:1"] (commas, semicolons or new lines). */
export function splitLosses(text) {
  return String(text || "").split(/[,;\n]+/).map((s) => s.trim()).filter(Boolean);
}

function defaultName(now = new Date()) {
  const p = (n) => String(n).padStart(2, "0");
  return `exp-${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}`;
}

function presetText(preset, tokenizer) {
  const shape = [
    preset.arch === "llama" ? "Llama" : "GPT-2",
    `${preset.n_layer} layers`, `d_model ${preset.d_model}`,
    `${preset.n_head} heads${preset.n_kv_head ? ` (${preset.n_kv_head} kv)` : ""}`,
    preset.d_ff ? `d_ff ${preset.d_ff}` : null,
    `context ${fmtInt(preset.context)}`, `batch ${preset.batch_size}`, `lr ${preset.lr}`,
  ].filter(Boolean).join(" · ");
  const params = preset.params && preset.params[tokenizer];
  return [shape, params ? `${fmtCompact(params)} parameters with the ${tokenizer} tokenizer` : null].filter(Boolean);
}

async function experimentForm(container, ctx, { corpora, open }) {
  const [presets, losses] = await Promise.all([api.trainingPresets(ctx.signal), api.trainingLosses(ctx.signal)]);
  if (!ctx.alive) return;
  if (!corpora.length) {
    replace(container, notice(h("span", {}, "To start an experiment, first ", h("a", { href: "#/corpora" }, "upload a corpus"), " to train on."), "info"));
    return;
  }
  const corpusOptions = corpora.map((c) => ({ value: c.id, label: `${c.name} (${fmtInt(c.n_documents)} docs, ${fmtCompact(c.n_chars)} chars)` }));
  const name = h("input", { type: "text", name: "name", required: true, maxlength: 80, value: defaultName(), class: "mono", spellcheck: "false" });
  // The biggest corpus is the likeliest to train on (the list is newest first).
  const biggest = corpora.reduce((a, b) => (b.n_chars > a.n_chars ? b : a));
  const trainCorpus = select(corpusOptions, { name: "corpus_id", value: biggest.id });
  const evalCorpus = select([{ value: "", label: "none (training curves only)" }, ...corpusOptions], { name: "eval_corpus_id", value: "" });
  const lossInput = h("input", { type: "text", name: "losses", required: true, value: "ce, focal:2", class: "mono", spellcheck: "false", autocomplete: "off" });
  const presetSel = select(presets.map((p) => ({ value: p.name, label: `${p.name} (${p.arch === "llama" ? "Llama" : "GPT-2"}, ${fmtCompact(p.params && p.params.bpe)} params)` })), { name: "preset", value: "tiny" });
  const steps = h("input", { type: "number", name: "steps", min: 1, value: 300, required: true });
  const saveEvery = h("input", { type: "number", name: "save_every", min: 1, value: 50, required: true });
  const seed = h("input", { type: "number", name: "seed", min: 0, value: 0, required: true });
  const tokenizer = select([{ value: "bpe", label: "bpe (trained on the corpus)" }, { value: "smollm2", label: "smollm2 (49,152 tokens)" }], { name: "tokenizer", value: "bpe" });
  const vocab = h("input", { type: "number", name: "vocab_size", min: 512 });
  const lr = h("input", { type: "number", name: "lr", min: 0, max: 1, step: "any" });
  const batch = h("input", { type: "number", name: "batch_size", min: 1 });
  const seqLen = h("input", { type: "number", name: "seq_len", min: 8 });

  // Help: the loss forms the server accepts (click one to add its example), the preset's shape, and
  // what the numbers add up to.
  const usage = h("div", { class: "loss-usage", "data-testid": "loss-usage" },
    h("span", { class: "muted small" }, "Accepted: "),
    losses.map((l) => {
      const example = (/\(e\.g\. ([^)]+)\)/.exec(l.usage) || [null, l.name])[1];
      return h("button", {
        type: "button", class: "usage-chip", title: `add ${example}`,
        on: { click: () => { lossInput.value = [...splitLosses(lossInput.value), example].join(", "); lossInput.dispatchEvent(new Event("input")); lossInput.focus(); } },
      }, l.usage);
    }));
  const presetInfo = h("div", { class: "preset-info", "data-testid": "preset-info" });
  const plan = h("p", { class: "plan muted small", "data-testid": "experiment-plan" });
  const syncHelp = () => {
    const preset = presets.find((p) => p.name === presetSel.value);
    replace(presetInfo, preset ? [
      h("div", { class: "small mono" }, presetText(preset, tokenizer.value).join(" · ")),
      preset.note ? h("div", { class: "muted small" }, preset.note) : null,
    ] : null);
    if (preset) {
      vocab.placeholder = tokenizer.value === "smollm2" ? "49152 (fixed)" : String(preset.vocab_size);
      lr.placeholder = String(preset.lr);
      batch.placeholder = String(preset.batch_size);
      seqLen.placeholder = String(preset.context);
    }
    vocab.disabled = tokenizer.value === "smollm2";
    const n = splitLosses(lossInput.value).length;
    const saves = saveSteps(Number(steps.value), Number(saveEvery.value));
    plan.textContent = n && saves.length
      ? `${n} model${n === 1 ? "" : "s"} × ${fmtInt(Number(steps.value))} steps; ${saves.length} checkpoints each (steps ${saves.length > 6 ? `${saves.slice(0, 4).join(", ")}, …, ${saves.at(-1)}` : saves.join(", ")})${evalCorpus.value ? ", each scored on the eval corpus" : ""}.`
      : "";
  };
  for (const el of [presetSel, tokenizer, lossInput, steps, saveEvery, evalCorpus]) {
    el.addEventListener("input", syncHelp);
    el.addEventListener("change", syncHelp);
  }
  syncHelp();

  const status = formStatus();
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Start experiment");
  const optional = (input) => (input.value.trim() === "" ? null : Number(input.value));
  const form = h("form", { class: "experiment-form", "aria-label": "Start an experiment" },
    h("div", { class: "form-grid-4" },
      field("Name", name, { hint: "letters, digits, . _ - (prefixes the series names)" }),
      field("Training corpus", trainCorpus),
      field("Eval corpus", evalCorpus, { hint: "held-out text each checkpoint is scored on" }),
      field("Seed", seed, { hint: "the same for every loss" })),
    h("div", { class: "field-wide" }, field("Losses", lossInput, { hint: "comma-separated; one model per loss" }), usage),
    h("div", { class: "form-grid-4" },
      h("div", { class: "field-span-2" }, field("Preset", presetSel), presetInfo),
      field("Tokenizer", tokenizer),
      h("div", { class: "field-row" }, field("Steps", steps), field("Save every", saveEvery, { hint: "steps per checkpoint" }))),
    h("details", { class: "advanced" },
      h("summary", {}, "Advanced: override the preset"),
      h("div", { class: "form-grid-4" },
        field("Vocabulary size", vocab, { hint: "bpe only" }), field("Learning rate", lr), field("Batch size", batch), field("Sequence length", seqLen, { hint: "tokens per training row" }))),
    plan,
    h("div", { class: "form-actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      name: name.value.trim(), corpus_id: Number(trainCorpus.value),
      eval_corpus_id: evalCorpus.value ? Number(evalCorpus.value) : null,
      losses: splitLosses(lossInput.value), preset: presetSel.value,
      steps: Number(steps.value), save_every: Number(saveEvery.value), seed: Number(seed.value), tokenizer: tokenizer.value,
      vocab_size: tokenizer.value === "smollm2" ? null : optional(vocab), lr: optional(lr), batch_size: optional(batch), seq_len: optional(seqLen),
    };
    submit.disabled = true;
    status.busy("Starting…");
    try {
      const { data } = await api.createExperiment(body);
      if (!ctx.alive) return;
      window.location.hash = `#/experiments/${data.id}`;
    } catch (error) {
      if (error.name !== "AbortError") status.error(error);
    } finally {
      submit.disabled = false;
    }
  });
  replace(container, h("details", { class: "card card-collapsible", open },
    h("summary", {}, h("span", { class: "card-title" }, "New experiment")),
    form, status.el));
}
