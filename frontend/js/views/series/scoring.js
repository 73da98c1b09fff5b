// Which checkpoints of a series are scored on each corpus: one row of step chips per corpus and set of
// scoring options (a chip's colour is its run's status; a dashed chip is a checkpoint without a run),
// a button that scores the missing checkpoints with the same options (so the new runs align with
// the old), links to the statistics across checkpoints where two or more runs are done, and a form to
// score every checkpoint on another corpus.

import { api } from "../../api.js";
import { card, field, formStatus, select } from "../../components.js";
import { h, replace } from "../../dom.js";
import { fmtInt, optionsText } from "../../format.js";

const VIEWS = [
  { tab: "transitions", label: "Transitions" },
  { tab: "learned-at", label: "Learned-at" },
  { tab: "cartography", label: "Cartography" },
];

/** {el, render(series)}: the card, and its redraw from a fresh GET /series/{id}. */
export function scoringPanel(seriesId, corpora, refresh) {
  const sections = h("div", { "data-testid": "series-corpora" });
  const status = formStatus();
  const score = async (button, corpus, options) => {
    button.disabled = true;
    status.busy(`Queuing runs on ${corpus.name}…`);
    try {
      const { created, existing } = await api.scoreSeries(seriesId, corpus.id, options);
      status.ok(`Queued ${fmtInt(created.length)} ${created.length === 1 ? "run" : "runs"} on ${corpus.name}`
        + `${existing.length ? ` (${fmtInt(existing.length)} scored or queued already)` : ""}.`);
      refresh();
    } catch (error) {
      status.error(error);
    } finally {
      button.disabled = false;
    }
  };
  const el = card("Scored on", sections, status.el, otherCorpusForm(corpora, score));
  const render = (series) => replace(sections, series.corpora.length
    ? series.corpora.map((corpus) => corpusSection(series, corpus, score))
    : h("p", { class: "muted" }, "Not scored on any corpus yet: choose one below."));
  return { el, render };
}

/** Options as one key, whatever the order of their fields. */
const optionsKey = (options) => JSON.stringify(Object.keys(options).sort().map((k) => [k, options[k]]));

function corpusSection(series, corpus, score) {
  const groups = new Map();
  for (const run of corpus.runs) {
    const key = optionsKey(run.options);
    if (!groups.has(key)) groups.set(key, { options: run.options, runs: new Map() });
    groups.get(key).runs.set(run.step, run);
  }
  const several = groups.size > 1;
  const target = { id: corpus.corpus_id, name: corpus.corpus_name };
  return h("section", { class: "corpus-scoring", "data-testid": "corpus-scoring", dataset: { corpusId: corpus.corpus_id } },
    h("div", { class: "corpus-scoring-head" },
      h("h3", {}, corpus.corpus_name, " ", h("span", { class: "muted small" }, `${fmtInt(corpus.n_documents)} documents`)),
      corpus.missing_steps.length
        ? h("span", { class: "muted small", "data-testid": "missing-steps" }, `not scored at step ${corpus.missing_steps.map(fmtInt).join(", ")}`)
        : h("span", { class: "muted small" }, "every checkpoint scored")),
    [...groups.values()].map((group) => optionsRow(series, target, group, several, score)));
}

function optionsRow(series, corpus, group, several, score) {
  const missing = series.checkpoints.filter((c) => !group.runs.has(c.step));
  const done = [...group.runs.values()].filter((r) => r.status === "done").length;
  const query = several ? `&options=${encodeURIComponent(JSON.stringify(group.options))}` : "";
  const button = missing.length ? h("button", {
    type: "button", class: "btn btn-small btn-primary", "data-testid": "score-missing",
    on: { click: (event) => score(event.currentTarget, corpus, group.options) },
  }, `Score missing checkpoints (${fmtInt(missing.length)})`) : null;
  return h("div", { class: "corpus-scoring-row" },
    h("p", { class: "muted small mono" }, optionsText(group.options)),
    h("ul", { class: "step-chips", "aria-label": `Checkpoints scored on ${corpus.name}` },
      series.checkpoints.map((c) => stepChip(c.step, group.runs.get(c.step)))),
    h("div", { class: "actions" }, button,
      done >= 2
        ? [h("span", { class: "small" }, "Across checkpoints:"),
          VIEWS.map((v) => h("a", { class: "btn btn-small", "data-testid": "across-link", href: `#/series/${series.id}/corpora/${corpus.id}?tab=${v.tab}${query}` }, v.label))]
        : h("span", { class: "muted small" }, "Statistics across checkpoints need two scored checkpoints.")));
}

function stepChip(step, run) {
  const status = run ? run.status : "missing";
  return h("li", { class: ["step-chip", `step-chip-${status}`], "data-testid": "step-chip", dataset: { step, status }, title: run ? `run #${run.run_id}: ${status}` : "not scored" },
    run ? h("a", { href: `#/runs/${run.run_id}`, "aria-label": `step ${step}: run #${run.run_id}, ${status}` }, fmtInt(step)) : fmtInt(step));
}

/** Score every checkpoint on a corpus of the user's choice (default options). */
function otherCorpusForm(corpora, score) {
  if (!corpora.length) return null;
  const corpusSel = select(corpora.map((c) => ({ value: c.id, label: c.name })), { name: "corpus" });
  const submit = h("button", { type: "submit", class: "btn" }, "Score every checkpoint");
  const form = h("form", { class: "question", "aria-label": "Score on a corpus" },
    field("Score on corpus", corpusSel, { hint: "default scoring options" }), h("div", { class: "form-actions" }, submit));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const corpus = corpora.find((c) => String(c.id) === corpusSel.value);
    if (corpus) score(submit, corpus, undefined);
  });
  return form;
}
