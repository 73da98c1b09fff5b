// The "New experiment" form: name, corpora, seed, the losses (one model each), preset, tokenizer,
// steps and checkpoint interval, optional overrides of the preset; help from the server (the loss forms
// it accepts, the preset's shape, the checkpoint steps the trainer will save).

import { api } from "../../api.js";
import { field, formStatus, notice, select } from "../../components.js";
import { h, replace } from "../../dom.js";
import { fmtCompact, fmtInt } from "../../format.js";

// The plan line asks the server for the checkpoint steps; wait for the typing to pause.
const PLAN_DEBOUNCE_MS = 250;
// What each tokenizer is, for the select (the tokenizers themselves come from the server).
const TOKENIZER_HINTS = { bpe: "trained on the corpus", smollm2: "49,152 tokens" };
// The tokenizer whose vocabulary is fixed: the vocabulary-size override does not apply to it.
const FIXED_VOCAB_TOKENIZER = "smollm2";

/** "ce, focal:2;  poly1:1" → ["ce", "focal:2", "poly1:1"] (commas, semicolons or new lines). */
function splitLosses(text) {
  return String(text || "").split(/[,;\n]+/).map((s) => s.trim()).filter(Boolean);
}

function defaultName(now = new Date()) {
  const p = (n) => String(n).padStart(2, "0");
  return `exp-${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}`;
}

const archName = (preset) => (preset.arch === "llama" ? "Llama" : "GPT-2");

function presetText(preset, tokenizer) {
  const shape = [
    archName(preset),
    `${preset.n_layer} layers`, `d_model ${preset.d_model}`,
    `${preset.n_head} heads${preset.n_kv_head ? ` (${preset.n_kv_head} kv)` : ""}`,
    preset.d_ff ? `d_ff ${preset.d_ff}` : null,
    `context ${fmtInt(preset.context)}`, `batch ${preset.batch_size}`, `lr ${preset.lr}`,
  ].filter(Boolean).join(" · ");
  const params = preset.params && preset.params[tokenizer];
  return [shape, params ? `${fmtCompact(params)} parameters with the ${tokenizer} tokenizer` : null].filter(Boolean);
}

/** Fill `container` with the form (open when there is no experiment yet), or say what is missing. */
export async function experimentForm(container, ctx, { corpora, open }) {
  const [presets, losses] = await Promise.all([api.trainingPresets(ctx.signal), api.trainingLosses(ctx.signal)]);
  if (!ctx.alive) return;
  if (!corpora.length) {
    replace(container, notice(h("span", {}, "To start an experiment, first ", h("a", { href: "#/corpora" }, "upload a corpus"), " to train on."), "info"));
    return;
  }
  const inputs = formInputs(corpora, presets, ctx.vocab.tokenizers);
  const presetInfo = h("div", { class: "preset-info", "data-testid": "preset-info" });
  const plan = h("p", { class: "plan muted small", "data-testid": "experiment-plan" });
  const syncPreset = () => showPreset(presets.find((p) => p.name === inputs.preset.value), inputs, presetInfo);
  const syncPlan = planPreview(ctx, inputs, plan);
  for (const el of [inputs.preset, inputs.tokenizer, inputs.losses, inputs.steps, inputs.saveEvery, inputs.evalCorpus]) {
    for (const event of ["input", "change"]) {
      el.addEventListener(event, syncPreset);
      el.addEventListener(event, syncPlan.soon);
    }
  }
  syncPreset();
  syncPlan.now();

  const status = formStatus();
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Start experiment");
  const form = formLayout(inputs, { usage: lossUsage(losses, inputs.losses), presetInfo, plan, submit });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    startExperiment(ctx, requestBody(inputs), submit, status);
  });
  replace(container, h("details", { class: "card card-collapsible", open },
    h("summary", {}, h("span", { class: "card-title" }, "New experiment")),
    form, status.el));
}

function formInputs(corpora, presets, tokenizers) {
  const corpusOptions = corpora.map((c) => ({ value: c.id, label: `${c.name} (${fmtInt(c.n_documents)} docs, ${fmtCompact(c.n_chars)} chars)` }));
  // The biggest corpus is the likeliest to train on (the list is newest first).
  const biggest = corpora.reduce((a, b) => (b.n_chars > a.n_chars ? b : a));
  return {
    name: h("input", { type: "text", name: "name", required: true, maxlength: 80, value: defaultName(), class: "mono", spellcheck: "false" }),
    trainCorpus: select(corpusOptions, { name: "corpus_id", value: biggest.id }),
    evalCorpus: select([{ value: "", label: "none (training curves only)" }, ...corpusOptions], { name: "eval_corpus_id", value: "" }),
    losses: h("input", { type: "text", name: "losses", required: true, value: "ce, focal:2", class: "mono", spellcheck: "false", autocomplete: "off" }),
    preset: select(presets.map((p) => ({ value: p.name, label: `${p.name} (${archName(p)}, ${fmtCompact(p.params && p.params.bpe)} params)` })), { name: "preset", value: "tiny" }),
    steps: h("input", { type: "number", name: "steps", min: 1, value: 300, required: true }),
    saveEvery: h("input", { type: "number", name: "save_every", min: 1, value: 50, required: true }),
    seed: h("input", { type: "number", name: "seed", min: 0, value: 0, required: true }),
    tokenizer: select(tokenizers.map((t) => ({ value: t, label: TOKENIZER_HINTS[t] ? `${t} (${TOKENIZER_HINTS[t]})` : t })), { name: "tokenizer", value: "bpe" }),
    vocab: h("input", { type: "number", name: "vocab_size", min: 512 }),
    lr: h("input", { type: "number", name: "lr", min: 0, max: 1, step: "any" }),
    batch: h("input", { type: "number", name: "batch_size", min: 1 }),
    seqLen: h("input", { type: "number", name: "seq_len", min: 8 }),
  };
}

/** The loss forms the server accepts; clicking one adds its example to the losses. */
function lossUsage(losses, lossInput) {
  return h("div", { class: "loss-usage", "data-testid": "loss-usage" },
    h("span", { class: "muted small" }, "Accepted: "),
    losses.map((l) => {
      const example = (/\(e\.g\. ([^)]+)\)/.exec(l.usage) || [null, l.name])[1];
      const add = () => {
        lossInput.value = [...splitLosses(lossInput.value), example].join(", ");
        lossInput.dispatchEvent(new Event("input"));
        lossInput.focus();
      };
      return h("button", { type: "button", class: "usage-chip", title: `add ${example}`, on: { click: add } }, l.usage);
    }));
}

/** The preset's shape under its select, and its values as the overrides' placeholders. */
function showPreset(preset, inputs, presetInfo) {
  const tokenizer = inputs.tokenizer.value;
  replace(presetInfo, preset ? [
    h("div", { class: "small mono" }, presetText(preset, tokenizer).join(" · ")),
    preset.note ? h("div", { class: "muted small" }, preset.note) : null,
  ] : null);
  if (preset) {
    inputs.vocab.placeholder = tokenizer === FIXED_VOCAB_TOKENIZER ? "49152 (fixed)" : String(preset.vocab_size);
    inputs.lr.placeholder = String(preset.lr);
    inputs.batch.placeholder = String(preset.batch_size);
    inputs.seqLen.placeholder = String(preset.context);
  }
  inputs.vocab.disabled = tokenizer === FIXED_VOCAB_TOKENIZER;
}

/**
 * The plan line: models × steps and the checkpoint steps, by the server's rule (GET
 * /training/save-steps). {soon()} after a keystroke, {now()} at once; a newer question aborts an
 * older one, so an old answer never overwrites a newer one.
 */
function planPreview(ctx, inputs, planEl) {
  let timer = null;
  let controller = null;
  ctx.onDispose(() => { clearTimeout(timer); if (controller) controller.abort(); });
  const now = async () => {
    clearTimeout(timer);
    if (controller) controller.abort();
    const nModels = splitLosses(inputs.losses.value).length;
    if (!nModels) { planEl.textContent = ""; return; }
    controller = new AbortController();
    try {
      const plan = await api.saveSteps(inputs.steps.value, inputs.saveEvery.value, controller.signal);
      if (ctx.alive) planEl.textContent = planText(nModels, plan, Boolean(inputs.evalCorpus.value));
    } catch (error) {
      if (error.name === "AbortError" || !ctx.alive) return;
      // 422: steps or save_every out of range while the user types; the fields' own limits and the
      // server's answer to "Start experiment" say what is wrong, so the plan just goes blank.
      planEl.textContent = error.status === 422 ? "" : `Cannot preview the checkpoints: ${error.message}`;
    }
  };
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(now, PLAN_DEBOUNCE_MS);
  };
  return { now, soon };
}

function planText(nModels, { steps, save_steps: saves }, scored) {
  if (!saves.length) return "";
  const shown = saves.length > 6 ? `${saves.slice(0, 4).join(", ")}, …, ${saves.at(-1)}` : saves.join(", ");
  return `${nModels} model${nModels === 1 ? "" : "s"} × ${fmtInt(steps)} steps; ${saves.length} checkpoints each (steps ${shown})${scored ? ", each scored on the eval corpus" : ""}.`;
}

function formLayout(inputs, { usage, presetInfo, plan, submit }) {
  return h("form", { class: "experiment-form", "aria-label": "Start an experiment" },
    h("div", { class: "form-grid-4" },
      field("Name", inputs.name, { hint: "letters, digits, . _ - (prefixes the series names)" }),
      field("Training corpus", inputs.trainCorpus),
      field("Eval corpus", inputs.evalCorpus, { hint: "held-out text each checkpoint is scored on" }),
      field("Seed", inputs.seed, { hint: "the same for every loss" })),
    h("div", { class: "field-wide" }, field("Losses", inputs.losses, { hint: "comma-separated; one model per loss" }), usage),
    h("div", { class: "form-grid-4" },
      h("div", { class: "field-span-2" }, field("Preset", inputs.preset), presetInfo),
      field("Tokenizer", inputs.tokenizer),
      h("div", { class: "field-row" }, field("Steps", inputs.steps), field("Save every", inputs.saveEvery, { hint: "steps per checkpoint" }))),
    h("details", { class: "advanced" },
      h("summary", {}, "Advanced: override the preset"),
      h("div", { class: "form-grid-4" },
        field("Vocabulary size", inputs.vocab, { hint: "bpe only" }), field("Learning rate", inputs.lr),
        field("Batch size", inputs.batch), field("Sequence length", inputs.seqLen, { hint: "tokens per training row" }))),
    plan,
    h("div", { class: "form-actions" }, submit));
}

function requestBody(inputs) {
  const optional = (input) => (input.value.trim() === "" ? null : Number(input.value));
  const fixedVocab = inputs.tokenizer.value === FIXED_VOCAB_TOKENIZER;
  return {
    name: inputs.name.value.trim(), corpus_id: Number(inputs.trainCorpus.value),
    eval_corpus_id: inputs.evalCorpus.value ? Number(inputs.evalCorpus.value) : null,
    losses: splitLosses(inputs.losses.value), preset: inputs.preset.value,
    steps: Number(inputs.steps.value), save_every: Number(inputs.saveEvery.value), seed: Number(inputs.seed.value),
    tokenizer: inputs.tokenizer.value, vocab_size: fixedVocab ? null : optional(inputs.vocab),
    lr: optional(inputs.lr), batch_size: optional(inputs.batch), seq_len: optional(inputs.seqLen),
  };
}

/** POST the experiment; open its page, or show the server's refusal. */
async function startExperiment(ctx, body, submit, status) {
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
}
