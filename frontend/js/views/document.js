// #/runs/{id}/documents/{doc_id} — the document's text with every token coloured by its loss (or p,
// entropy, focal weight, focal loss), whitespace preserved, gaps as plain text; a tooltip with each
// token's numbers and top-k alternatives on hover or keyboard focus; γ and scale controls; the loss
// along the document; links to the run's previous and next scored documents. When the run's
// checkpoint belongs to a series scored on this corpus, a checkpoint scrubber recolours the text step
// by step (?step=) and a clicked token shows its trajectory. The parts are in views/document/: text,
// interaction (tooltip and keys), colouring (painter, paint timing), legend, stats, navigation,
// scrubber, token_steps.

import { api } from "../api.js";
import * as charts from "../charts.js";
import { card, errorBox } from "../components.js";
import { h, replace } from "../dom.js";
import { fmtInt, modelName } from "../format.js";
import { TokenTooltip } from "../token_tooltip.js";
import { DEFAULT_GAMMA, colouring, initialSettings } from "./document/colouring.js";
import { tokenInteraction } from "./document/interaction.js";
import { neighboursNav } from "./document/navigation.js";
import { checkpointScrubber, seriesOfRun } from "./document/scrubber.js";
import { documentText } from "./document/text.js";
import { tokenSteps } from "./document/token_steps.js";

export async function mount(ctx) {
  const { runId, docId } = ctx.params;
  const [run, doc, data] = await Promise.all([
    api.run(runId, ctx.signal), api.document(docId, ctx.signal),
    api.documentTokens(runId, docId, DEFAULT_GAMMA, ctx.signal),
  ]);
  if (!ctx.alive) return;
  const title = doc.title || `Document ${docId}`;
  ctx.setTitle(`${title} · run #${runId}`);

  const settings = initialSettings(ctx.query, data);
  const tooltip = new TokenTooltip();
  const text = documentText(doc, data);
  const tokens = tokenInteraction(ctx, text, data, tooltip, () => settings.gamma);
  const colours = colouring(ctx, data, text, settings, tokens.refresh);
  const lossChart = charts.figure("Loss of each token along the document; click to jump to a token.", "Loss by token position", "position-loss");
  ctx.onDispose(() => charts.purge(lossChart.plot));
  const seriesSlot = h("div", { class: "scrubber-slot" });
  const seriesSide = h("div");

  replace(ctx.root,
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" },
      h("a", { href: "#/runs" }, "Runs"), h("span", { "aria-hidden": "true" }, " / "),
      h("a", { href: `#/runs/${runId}` }, `Run #${runId}`), h("span", { "aria-hidden": "true" }, " / "), title),
    h("div", { class: "page-head" },
      h("div", {},
        h("h1", {}, title),
        h("p", { class: "lede" }, `${doc.source} · ${fmtInt(doc.n_chars)} characters · scored by ${modelName(run.checkpoint)} on ${run.corpus.name}`)),
      neighboursNav(ctx, runId, docId)),
    colours.statsEl,
    h("div", { class: "doc-layout" },
      h("div", { class: "doc-main" },
        h("div", { class: "doc-toolbar" }, seriesSlot, colours.legendEl, colours.countsEl),
        text.el),
      h("aside", { class: "doc-side" }, card("Colouring", colours.controls), seriesSide, card("Loss along the document", lossChart.el))),
    tooltip.el);
  colours.recolor();
  // ?token=i (a link from the transitions' occurrences): that token, focused, with its tooltip.
  if (ctx.query.has("token")) tokens.focusToken(Number(ctx.query.get("token")) || 0);
  charts.positionLoss(lossChart.plot, data.loss, { onPick: (i) => tokens.focusToken(i) }).catch((error) => {
    if (ctx.alive) lossChart.el.append(errorBox(error, { title: "The chart failed" }));
  });
  acrossCheckpoints(ctx, { run, data, docId, colours, tokens, seriesSlot, seriesSide }).catch((error) => {
    if (ctx.alive && error.name !== "AbortError") replace(seriesSlot, errorBox(error, { title: "Cannot follow this document across checkpoints" }));
  });
}

/** The scrubber and the token trajectory card, when the run belongs to a series scored on this corpus. */
async function acrossCheckpoints(ctx, { run, data, docId, colours, tokens, seriesSlot, seriesSide }) {
  const series = await seriesOfRun(run, ctx.signal);
  if (!ctx.alive || !series) return;
  if (series.problem) {
    replace(seriesSlot, h("p", { class: "muted small", "data-testid": "scrubber-problem" }, `No checkpoint scrubber: ${series.problem}`));
    return;
  }
  const trajectory = await api.documentTrajectory(series.at, docId, ctx.signal);
  if (!ctx.alive) return;
  if (trajectory.n_tokens !== data.n_tokens) {
    replace(seriesSlot, h("p", { class: "muted small", "data-testid": "scrubber-problem" },
      `No checkpoint scrubber: the series has ${fmtInt(trajectory.n_tokens)} tokens for this document, this run ${fmtInt(data.n_tokens)}.`));
    return;
  }
  const steps = tokenSteps(ctx, series.at, docId);
  const onStep = (step, source, own) => {
    steps.mark(step);
    tokens.showStep(own ? null : { step, source });
  };
  const scrubber = checkpointScrubber(ctx, { run, runData: data, trajectory, colours, onStep });
  tokens.onPick(steps.show);
  const href = `#/series/${series.at.seriesId}/corpora/${series.at.corpusId}?options=${encodeURIComponent(series.at.options)}`;
  replace(seriesSlot, scrubber.el);
  replace(seriesSide, card("Token across checkpoints", steps.el,
    h("p", { class: "muted small" }, "Colours and the tooltip follow the scrubber. ",
      h("a", { href }, "All tokens across checkpoints →"))));
  scrubber.start();
}
