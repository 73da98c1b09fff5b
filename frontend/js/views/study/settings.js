// What the study ran (the report's settings: the command that reruns it, seeds, experiments, training
// options, versions) and the first seed's final models continuing the same prompts. Text from the
// data goes in as text nodes (h() children).

import { card, notice, table } from "../../components.js";
import { h } from "../../dom.js";
import { lossKey } from "../../parts.js";

export function settingsCard(study) {
  return card("How it was run",
    h("pre", { class: "mono small command", "data-testid": "study-command" }, study.command || "—"),
    h("div", { class: "table-compact" }, table({
      label: "Study settings", testid: "study-settings", rows: study.settings.filter((s) => s.name !== "command"),
      columns: [
        { label: "setting", cell: (s) => s.name },
        { label: "value", cell: (s) => h("span", { class: "mono small" }, s.value) },
      ],
    })));
}

export function samplesCard(view) {
  const { samples } = view.study;
  if (!samples.length) return card("Samples", notice("The final models' continuations appear when the first seed's runs finish."));
  return card("Samples",
    h("p", { class: "muted small" }, "First seed: each final model continues the same held-out prompts with the same sampling seed (top-p 0.9)."),
    samples.map((sample) => h("div", { class: "sample-group", "data-testid": "study-sample-group" },
      h("p", { class: "mono small" }, h("strong", {}, "Prompt: "), sample.prompt),
      sample.continuations.map((c) => h("div", { class: "sample", "data-testid": "study-sample" },
        lossKey(c.loss, view.colors.get(c.loss) || "#6b7280"), h("span", { class: "mono small" }, " …", c.text))))));
}
