// Learned-at steps: for each token occurrence, the first checkpoint after which it stays easy (p ≥
// τ_easy at that step and every later one), or never. The histogram overall, and by token-frequency
// bucket (are frequent tokens learned first?). Query: ?tau_easy=&bars=stacked.

import { api, latestOnly } from "../../api.js";
import { learnedAtByBucketChart, learnedAtChart } from "../../charts_series.js";
import * as charts from "../../charts.js";
import { card, errorBox, field, loading, select, statGrid } from "../../components.js";
import { h, replace } from "../../dom.js";
import { fmtInt, fmtPct } from "../../format.js";
import { numberParam, wordParam } from "./state.js";

// The server's default: p ≥ 1/2 (the true token is then surely the top-1; the transitions' τ = ln 2 line).
const DEFAULT_TAU_EASY = 0.5;

export function learnedAtPanel(ctx, at) {
  const state = {
    tauEasy: numberParam(ctx.query, "tau_easy", DEFAULT_TAU_EASY, Number.MIN_VALUE, 1),
    bars: wordParam(ctx.query, "bars", ["grouped", "stacked"], "grouped"),
  };
  const overall = charts.figure("Occurrences by the step at which they were learned.", "Histogram of learned-at steps", "learned-at-chart");
  const byBucket = charts.figure("Token-frequency buckets hold about equal token mass; bucket 1 holds the rarest types.",
    "Learned-at steps by token-frequency bucket", "learned-at-buckets");
  const statsEl = h("div", {}, loading());
  const latest = latestOnly(ctx);
  let answer = null;
  const save = () => ctx.updateQuery({ tau_easy: state.tauEasy === DEFAULT_TAU_EASY ? null : state.tauEasy, bars: state.bars === "grouped" ? null : state.bars });
  const drawBuckets = () => learnedAtByBucketChart(byBucket.plot, answer, { stacked: state.bars === "stacked" });
  const load = async () => {
    const fresh = await latest(api.learnedAt(at, { tau_easy: state.tauEasy }, ctx.signal));
    if (!fresh) return;
    answer = fresh;
    replace(statsEl, summary(answer));
    await Promise.all([learnedAtChart(overall.plot, answer), drawBuckets()]);
  };
  const fail = (error) => { if (ctx.alive && error.name !== "AbortError") replace(statsEl, errorBox(error, { title: "The server refused this" })); };

  const tauInput = h("input", { type: "number", name: "tau_easy", min: 0.01, max: 1, step: 0.05, value: state.tauEasy });
  tauInput.addEventListener("change", () => {
    const v = Number(tauInput.value);
    if (tauInput.value !== "" && Number.isFinite(v)) { state.tauEasy = v; save(); load().catch(fail); }
  });
  const barsSel = select([{ value: "grouped", label: "grouped: share of each bucket" }, { value: "stacked", label: "stacked: occurrences" }], { value: state.bars, name: "bars" });
  barsSel.addEventListener("change", () => { state.bars = barsSel.value; save(); if (answer) drawBuckets().catch(fail); });
  const form = h("form", { class: "question", "aria-label": "Learned-at question", on: { submit: (e) => e.preventDefault() } },
    field("Easy when p ≥ τ_easy", tauInput, { hint: "Default ½: the true token is then the model's top-1." }),
    field("By bucket", barsSel));
  load().catch(fail);
  return {
    el: h("div", { class: "tab-panel" }, card("Learned at", form, statsEl, overall.el), card("By token frequency", byBucket.el)),
    dispose: () => { charts.purge(overall.plot); charts.purge(byBucket.plot); },
  };
}

function summary(learned) {
  const { overall } = learned;
  const learnedCount = overall.counts.reduce((a, b) => a + b, 0);
  const first = overall.counts[0] || 0;
  return statGrid([
    { label: "Occurrences", value: fmtInt(overall.tokens) },
    { label: "Learned", value: fmtPct(overall.tokens ? learnedCount / overall.tokens : NaN), hint: "easy at the last step, and ever since some step" },
    { label: `Easy from step ${fmtInt(learned.steps[0])}`, value: fmtPct(overall.tokens ? first / overall.tokens : NaN), hint: "easy at every checkpoint" },
    { label: "Never", value: fmtPct(overall.tokens ? overall.never / overall.tokens : NaN), hint: "not easy at the last step" },
  ], { testid: "learned-at-stats" });
}
