// #/studies/NAME — a study (`focalscope study`: one experiment per seed, the same losses in each) across
// its seeds, as `focalscope report` shows it: the command that reruns it with seeds and versions, the
// table of mean ± sd per loss with the difference from ce paired by seed (95% t-interval; one within
// the seed noise is muted), collapse flags, the main charts and the first seed's samples. The table
// cells are the report's own text, from the server. ?loss=NAME selects a loss: its row and lines
// stand out. While jobs run the page says the numbers are partial and refreshes itself.

import { api } from "../api.js";
import * as charts from "../charts.js";
import { card, notice, statusBadge } from "../components.js";
import { h, replace } from "../dom.js";
import { drawStudyCharts, studyFigures } from "./study/charts.js";
import { samplesCard, settingsCard } from "./study/settings.js";
import { differencesTable, resultsTable } from "./study/tables.js";

const LIVE_REFRESH_MS = 5000;

export async function mount(ctx) {
  const name = ctx.params.studyName;
  ctx.setTitle(`${name} · Studies`);
  let study = await api.study(name, ctx.signal);
  if (!ctx.alive) return;
  const figures = studyFigures();
  ctx.onDispose(() => Object.values(figures).forEach((f) => charts.purge(f.plot)));
  const query = ctx.query.get("loss");
  let selected = study.rows.some((r) => r.loss === query) ? query : null;
  const parts = { head: h("div"), settings: h("div"), results: h("div"), differences: h("div"), samples: h("div") };

  const select = (loss) => {
    selected = loss === selected ? null : loss;
    ctx.updateQuery({ loss: selected });
    render();
  };
  const render = () => {
    const colors = new Map(study.rows.map((r, i) => [r.loss, charts.seriesColor(i)]));
    const view = { study, colors, selected, select };
    replace(parts.head, heading(study));
    replace(parts.settings, settingsCard(study));
    replace(parts.results, resultsTable(view));
    replace(parts.differences, differencesTable(view));
    replace(parts.samples, samplesCard(view));
    drawStudyCharts(figures, view);
  };

  replace(ctx.root, parts.head, parts.settings,
    card("Final checkpoints: mean ± sd over seeds", parts.results),
    card("Differences from ce, paired by seed", parts.differences),
    card("Charts", h("div", { class: "grid-2" }, Object.values(figures).map((f) => f.el))),
    parts.samples);
  render();
  if (study.in_progress) {
    ctx.every(LIVE_REFRESH_MS, async () => {
      if (!study.in_progress) return;
      const fresh = await api.study(name, ctx.signal).catch(() => null);
      if (fresh && ctx.alive) {
        study = fresh;
        render();
      }
    });
  }
}

function heading(study) {
  return h("div", { class: "page-head" },
    h("div", {},
      h("p", { class: "muted small" }, h("a", { href: "#/experiments" }, "Experiments"), " › study"),
      h("h1", {}, study.name, " ", h("span", { class: "h1-sub" }, study.rows.map((r) => r.loss).join(" vs ")), " ",
        h("span", { "data-testid": "study-status" }, statusBadge(study.in_progress ? "running" : "done"))),
      h("p", { class: "lede" }, `${study.seeds.length} seeds (${study.seeds.join(", ")}), one experiment each: `,
        study.experiments.map((e, i) => [i ? ", " : "",
          h("a", { href: `#/experiments/${e.id}`, "data-testid": "study-experiment" }, e.name)])),
      study.in_progress
        ? notice("Some runs are still training or being scored: these numbers are partial and refresh by themselves.")
        : null));
}
