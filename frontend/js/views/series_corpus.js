// #/series/{id}/corpora/{corpus_id} — token difficulty across the checkpoints of a series on a corpus,
// in three tabs: transitions between two steps (Rho-1's H→H, L→H, H→L, L→L), learned-at steps, and
// cartography (confidence vs variability). Every choice (tab, steps, thresholds, cell, page, region,
// sort) lives in the address's query, so a shared link shows the same; ?options= picks the runs'
// scoring options when the series was scored on the corpus with several. The tabs are in
// views/series_corpus/.

import { api } from "../api.js";
import { errorBox } from "../components.js";
import { h, replace } from "../dom.js";
import { fmtInt } from "../format.js";
import { cartographyPanel } from "./series_corpus/cartography.js";
import { learnedAtPanel } from "./series_corpus/learned_at.js";
import { transitionsPanel } from "./series_corpus/transitions.js";

const TABS = [
  { id: "transitions", label: "Transitions", panel: transitionsPanel, about: "Which tokens moved between hard and easy from one checkpoint to another." },
  { id: "learned-at", label: "Learned-at", panel: learnedAtPanel, about: "When each token occurrence became easy for good, overall and by token frequency." },
  { id: "cartography", label: "Cartography", panel: cartographyPanel, about: "Each occurrence's mean p against how much p moved over the checkpoints." },
];

export async function mount(ctx) {
  const { seriesId, corpusId } = ctx.params;
  const at = { seriesId, corpusId, options: ctx.query.get("options") || undefined };
  const [series, corpus, checkpoints] = await Promise.all([
    api.seriesDetail(seriesId, ctx.signal), api.corpus(corpusId, ctx.signal), api.seriesCheckpoints(at, ctx.signal),
  ]);
  if (!ctx.alive) return;
  ctx.setTitle(`${series.name} on ${corpus.name} · Series`);
  const steps = checkpoints.items.map((item) => item.step);
  const head = [
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" },
      h("a", { href: "#/series" }, "Series"), h("span", { "aria-hidden": "true" }, " / "),
      h("a", { href: `#/series/${seriesId}` }, series.name), h("span", { "aria-hidden": "true" }, " / "), corpus.name),
    h("div", { class: "page-head" }, h("div", {},
      h("h1", {}, series.name, " ", h("span", { class: "h1-sub" }, `on ${corpus.name}`)),
      h("p", { class: "lede" }, `${fmtInt(steps.length)} scored checkpoints (steps ${steps.map(fmtInt).join(", ")}) · ${fmtInt(corpus.n_documents)} documents`))),
  ];
  if (!checkpoints.aligned) {
    replace(ctx.root, ...head, errorBox(new Error(checkpoints.problem), { title: "No statistics across these checkpoints" }),
      h("p", {}, h("a", { href: `#/series/${seriesId}` }, "Back to the series (score missing checkpoints there)")));
    return;
  }
  const panelEl = h("div", { class: "tab-panel", role: "tabpanel", id: "series-tab-panel" });
  const tabButtons = TABS.map((tab) => h("button", {
    type: "button", role: "tab", class: "tab", id: `tab-${tab.id}`, "aria-controls": "series-tab-panel", "data-testid": `tab-${tab.id}`,
    on: { click: () => show(tab) },
  }, tab.label));
  let disposePanel = () => {};
  ctx.onDispose(() => disposePanel());
  const show = (tab) => {
    disposePanel();
    tabButtons.forEach((b, i) => b.setAttribute("aria-selected", String(TABS[i] === tab)));
    panelEl.setAttribute("aria-labelledby", `tab-${tab.id}`);
    ctx.updateQuery({ tab: tab.id });
    const panel = tab.panel(ctx, at, steps);
    disposePanel = panel.dispose;
    replace(panelEl, h("p", { class: "muted" }, tab.about), panel.el);
  };
  replace(ctx.root, ...head, h("div", { class: "tabs", role: "tablist", "aria-label": "Statistics across checkpoints" }, tabButtons), panelEl);
  show(TABS.find((t) => t.id === ctx.query.get("tab")) || TABS[0]);
}
