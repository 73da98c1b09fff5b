// The final model of each loss continuing the same held-out prompts (same sampling seed, top-p 0.9),
// side by side, and the collapse flags of each run. Token text goes in with textContent (h() children).

import { card, notice, table } from "../../components.js";
import { h } from "../../dom.js";
import { fmtInt } from "../../format.js";
import { lossKey } from "../../parts.js";

const FLAGS = [
  ["heldout_rise", "held-out loss rose > 0.1 nats above its best"],
  ["loss_spike", "training CE > 1.3× the median of the (up to) 20 logged steps before"],
  ["grad_spike", "gradient norm > 10× the median of the (up to) 20 logged steps before"],
];

export function collapseCard(view) {
  return card("Collapse",
    h("div", { class: "table-compact" }, table({
      label: "Collapse flags per loss", testid: "collapse-table", rows: view.series,
      columns: [
        { label: "Loss", class: "col-loss", cell: (s) => lossKey(s.label, s.color) },
        ...FLAGS.map(([key, title]) => ({
          label: key.replace("_", " "), title, numeric: true,
          cell: (s) => (s.collapse && s.collapse[key] !== null && s.collapse[key] !== undefined
            ? h("span", { class: "delta-bad", "data-testid": `collapse-${key}` }, `step ${fmtInt(s.collapse[key])}`) : "—"),
        })),
      ],
    })),
    h("p", { class: "muted small" }, "The first step at which each run showed the sign, or — when it never did."));
}

export function samplesCard(view) {
  const withSamples = view.series.filter((s) => s.samples && s.samples.length);
  if (!withSamples.length) return card("Samples", notice("The final models' continuations appear when the runs finish (with an eval corpus).", "info"));
  const prompts = withSamples[0].samples.map((x) => x.prompt);
  return card("Samples",
    h("p", { class: "muted small" }, "Each final model continues the same held-out prompts with the same seed (nucleus sampling, p = 0.9)."),
    ...prompts.map((prompt, i) => h("div", { class: "sample-group", "data-testid": "sample-group" },
      h("p", { class: "mono small" }, h("strong", {}, "Prompt: "), prompt),
      withSamples.map((s) => h("div", { class: "sample", "data-testid": "sample" },
        lossKey(s.label, s.color), h("span", { class: "mono small" }, " …", (s.samples[i] || {}).continuation || ""))))));
}
