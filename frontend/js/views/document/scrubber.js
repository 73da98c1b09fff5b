// The checkpoint scrubber: when the run's checkpoint belongs to a series whose checkpoints were scored
// on the same corpus with the same options (aligned runs, at least two), a slider over their steps and
// a play button recolour the text step by step. One request brings the document's arrays at every
// step (the trajectory), so moving the slider never waits on the network; each step's numbers are
// derived once, when first shown, and only the tokens' colours change (the text is never rebuilt).

import { api } from "../../api.js";
import { h } from "../../dom.js";
import { fmtInt } from "../../format.js";
import { afterPaint } from "./paint_timing.js";

// Playing shows each checkpoint this long: time to see what changed before the next.
const PLAY_MS = 900;

/**
 * The series this run can be followed across, or null: {at (the series on the corpus, for api.js),
 * checkpoints (its aligned runs, ascending by step), problem (why not, when they are not aligned)}.
 */
export async function seriesOfRun(run, signal) {
  const at = { seriesId: run.checkpoint.series_id, corpusId: run.corpus.id, options: JSON.stringify(run.options) };
  const found = await api.seriesCheckpoints(at, signal);
  const inSeries = found.items.some((item) => item.run_id === run.id);
  if (!inSeries || found.items.length < 2) return null;
  return { at, checkpoints: found.items, problem: found.aligned ? null : found.problem };
}

/**
 * One step of the trajectory as a colouring source (see colouring.js): loss and p from log p; the
 * top-1's log p from the trajectory's, which lists it only where the rank is above 0 (elsewhere the
 * top-1 is the true token).
 */
export function stepSource(trajectory, s) {
  const logprob = Float64Array.from(trajectory.logprob[s]);
  const rank = trajectory.rank[s];
  const ranked = trajectory.top1_logprob[s];
  const loss = new Float64Array(logprob.length);
  const p = new Float64Array(logprob.length);
  const top1 = new Float64Array(logprob.length);
  for (let i = 0, k = 0; i < logprob.length; i += 1) {
    loss[i] = -logprob[i];
    p[i] = Math.exp(logprob[i]);
    top1[i] = rank[i] > 0 ? ranked[k++] : logprob[i];
  }
  return { n_tokens: trajectory.n_tokens, logprob, loss, p, entropy: trajectory.entropy[s], rank, top1_logprob: top1 };
}

/**
 * The scrubber over `trajectory` (api.documentTrajectory) for the document view: {el}. `runData` is
 * the run's own tokens (its step is shown from them, unrounded); `colours.show(source)` recolours;
 * `onStep(step, source, own)` follows the shown step (the token chart marks it, the tooltip shows
 * its numbers; `own`: the run's own step).
 */
export function checkpointScrubber(ctx, { run, runData, trajectory, colours, onStep }) {
  const steps = trajectory.steps;
  const runIndex = trajectory.run_ids.indexOf(run.id);
  const sources = new Array(steps.length);
  const sourceAt = (s) => (s === runIndex ? runData : (sources[s] ||= stepSource(trajectory, s)));
  const asked = steps.indexOf(Number(ctx.query.get("step")));
  let index = ctx.query.has("step") && asked >= 0 ? asked : runIndex;

  const range = h("input", {
    type: "range", id: "scrubber-range", min: 0, max: steps.length - 1, step: 1, value: index, "data-testid": "scrubber-range",
  });
  const label = h("output", { class: "range-value", for: "scrubber-range", "data-testid": "scrubber-step", "aria-live": "polite" });
  const play = h("button", { type: "button", class: "btn btn-small scrubber-play", "data-testid": "scrubber-play", "aria-pressed": "false" });
  const showStep = (next, start) => {
    index = next;
    range.value = String(index);
    const step = steps[index];
    label.textContent = `step ${fmtInt(step)}${index === runIndex ? " (this run)" : ""}`;
    range.setAttribute("aria-valuetext", `step ${step}`);
    colours.show(sourceAt(index));
    afterPaint("scrubber-step", start);
    ctx.updateQuery({ step: index === runIndex ? null : step });
    onStep(step, sourceAt(index), index === runIndex);
  };
  range.addEventListener("input", (event) => { stopPlaying(); showStep(Number(range.value), event.timeStamp); });

  let timer = null;
  const setPlaying = (on) => {
    play.textContent = on ? "❚❚ Pause" : "▶ Play";
    play.setAttribute("aria-pressed", String(on));
  };
  const stopPlaying = () => {
    clearInterval(timer);
    timer = null;
    setPlaying(false);
  };
  const tick = () => {
    if (index >= steps.length - 1) { stopPlaying(); return; }
    showStep(index + 1, performance.now());
  };
  play.addEventListener("click", () => {
    if (timer !== null) { stopPlaying(); return; }
    if (index >= steps.length - 1) showStep(0, performance.now());
    timer = setInterval(tick, PLAY_MS);
    setPlaying(true);
  });
  ctx.onDispose(stopPlaying);
  setPlaying(false);

  const el = h("div", { class: "scrubber", role: "group", "aria-label": "Checkpoint of the series", "data-testid": "scrubber" },
    play,
    h("label", { for: "scrubber-range", class: "scrubber-label" }, "Checkpoint"),
    h("div", { class: "scrubber-track" }, range,
      h("div", { class: "scrubber-ends muted small" }, h("span", {}, `step ${fmtInt(steps[0])}`), h("span", {}, `step ${fmtInt(steps.at(-1))}`))),
    label);
  return { el, start: () => showStep(index, performance.now()), step: () => steps[index] };
}
