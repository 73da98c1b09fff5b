// One token across the checkpoints of the series: clicking a token (or Enter on it) shows its p and
// loss against the step in a small chart, and the model's top-k predictions at each step, from
// api.tokenTrajectory. Token texts go in through textContent (h), never into the chart.

import { api } from "../../api.js";
import { tokenTrajectoryChart } from "../../charts_series.js";
import * as charts from "../../charts.js";
import { errorBox, loading } from "../../components.js";
import { h, replace } from "../../dom.js";
import { fmtInt, fmtNum, fmtProb } from "../../format.js";
import { visibleText } from "../../tokens.js";

const MARK_DELAY_MS = 150;

/** {el, show(position), mark(step)}: the card's body; `mark` follows the scrubber's step. */
export function tokenSteps(ctx, at, docId) {
  const body = h("div", { class: "token-steps", "data-testid": "token-steps" },
    h("p", { class: "muted small" }, "Click a token to see its p and loss at every checkpoint of the series."));
  const chart = charts.figure("p and loss of the token at each checkpoint.", "p and loss of the clicked token against the training step", "token-trajectory");
  ctx.onDispose(() => charts.purge(chart.plot));
  let shown = null;
  let markedStep = null;
  let request = 0;
  const draw = () => tokenTrajectoryChart(chart.plot, shown, markedStep).catch((error) => {
    if (ctx.alive) chart.el.append(errorBox(error, { title: "The chart failed" }));
  });
  const show = async (position) => {
    const mine = (request += 1);
    replace(body, loading(`Loading token ${fmtInt(position)} at every step…`));
    try {
      const trajectory = await api.tokenTrajectory(at, docId, position, ctx.signal);
      if (!ctx.alive || mine !== request) return;
      shown = trajectory;
      replace(body, tokenHead(trajectory), chart.el, topKTable(trajectory));
      draw();
    } catch (error) {
      if (ctx.alive && error.name !== "AbortError" && mine === request) replace(body, errorBox(error, { title: "Cannot follow this token" }));
    }
  };
  // The chart's step line follows the scrubber once it rests: redrawing a chart on every step of a
  // drag would cost more than recolouring the text.
  let markTimer = null;
  ctx.onDispose(() => clearTimeout(markTimer));
  const mark = (step) => {
    markedStep = step;
    clearTimeout(markTimer);
    if (shown) markTimer = setTimeout(draw, MARK_DELAY_MS);
  };
  return { el: body, show, mark };
}

function tokenHead(t) {
  return h("div", { class: "tt-head" },
    h("code", { class: "tok-chip tok-chip-large", "data-testid": "token-steps-text" }, visibleText(t.text)),
    h("span", { class: "muted small" }, `token ${fmtInt(t.position)} · id ${t.token_id}`));
}

/** Each step: the true token's p and rank, then the top-k predictions (the true one ticked). */
function topKTable(t) {
  const rows = t.steps.map((step, s) => h("tr", { "data-testid": "token-step-row", dataset: { step } },
    h("td", { class: "num" }, fmtInt(step)),
    h("td", { class: "num", title: `loss ${fmtNum(t.loss[s], 3)} nats` }, fmtProb(t.p[s])),
    h("td", { class: "num" }, fmtInt(t.rank[s])),
    h("td", {}, h("div", { class: "topk-chips" }, t.top_ids[s].map((tokenId, k) => {
      const text = t.top_text[s] && t.top_text[s].length ? t.top_text[s][k] : null;
      return h("span", { class: ["topk-chip", tokenId === t.token_id && "is-actual"], title: `p ${fmtProb(Math.exp(t.top_logprobs[s][k]))}` },
        h("code", { class: "tok-chip" }, text === null ? `id ${tokenId}` : visibleText(text)),
        h("span", { class: "topk-p" }, fmtProb(Math.exp(t.top_logprobs[s][k]))));
    })))));
  return h("div", { class: "table-wrap token-steps-table" },
    h("table", { class: "table", "aria-label": "The token at each step", "data-testid": "token-steps-table" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col", class: "num" }, "step"), h("th", { scope: "col", class: "num" }, "p"),
        h("th", { scope: "col", class: "num" }, "rank"), h("th", { scope: "col" }, `top-${t.top_ids[0] ? t.top_ids[0].length : 0}`))),
      h("tbody", {}, rows)));
}
