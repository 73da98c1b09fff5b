// The study's two tables: per loss the report's summary row (mean ± sd over seeds, Δ CE vs ce with
// its 95% t-interval, collapse flags) and the differences from ce per metric. Cells are the server's
// text (the same as `focalscope report`); a difference within the seed noise is muted, one beyond it
// stands out.

import { table } from "../../components.js";
import { h } from "../../dom.js";
import { lossKey } from "../../parts.js";

const NOISE_TITLE = "the 95% interval contains 0: within the noise between seeds";
const RESOLVED_TITLE = "the 95% interval excludes 0: beyond the noise between seeds";

/** The class and tooltip of a difference ("beyond" / "within" the seed noise, or null): muted within. */
function noiseMark(noise) {
  if (noise === "beyond") return { class: "beyond-noise", title: RESOLVED_TITLE, dataset: { noise } };
  if (noise === "within") return { class: "within-noise", title: NOISE_TITLE, dataset: { noise } };
  return {};
}

/** The loss as a toggle that selects it (?loss=) in the tables and charts. */
function lossButton(view, loss) {
  return h("button", {
    type: "button", class: "link-button", "aria-pressed": String(view.selected === loss),
    on: { click: () => view.select(loss) },
  }, lossKey(loss, view.colors.get(loss)));
}

function rowProps(view, loss, testid) {
  return { "data-testid": testid, dataset: { loss }, class: view.selected === loss ? "is-selected" : null };
}

export function resultsTable(view) {
  const { study } = view;
  const header = study.table_header;
  const columns = header.map((label, i) => ({
    label, numeric: i > 0 && i < header.length - 1,
    cell: (row) => {
      if (i === 0) return lossButton(view, row.loss);
      // Δ CE vs ce: its verdict is the differences table's first (DELTA_COLUMNS starts with held-out CE).
      if (i === 2) return h("span", { ...noiseMark(row.deltas && row.deltas[0].noise), "data-testid": "study-delta-ce" }, row.cells[i]);
      if (i === header.length - 1) {
        return h("span", { class: row.collapse.length ? "delta-bad" : "muted", "data-testid": "study-collapse" }, row.cells[i]);
      }
      return h("span", { "data-testid": "study-cell" }, row.cells[i]);
    },
  }));
  return h("div", {},
    h("p", { class: "muted small" }, "Final checkpoint of each run, mean ± sample sd over the seeds. Δ CE: paired by seed, ",
      "95% t-interval; muted when it contains 0 (within the seed noise). Collapse: held-out CE > 0.1 nats above its best, ",
      "training CE > 1.3× or gradient norm > 10× the median of the (up to) 20 logged steps before."),
    h("div", { class: "table-compact" }, table({
      label: "Study results per loss", testid: "study-table", rows: study.rows, columns,
      rowProps: (row) => rowProps(view, row.loss, "study-row"),
    })));
}

export function differencesTable(view) {
  const rows = view.study.rows.filter((r) => r.deltas);
  const columns = [
    { label: "loss", cell: (row) => lossButton(view, row.loss) },
    ...view.study.delta_header.map((label, i) => ({
      label, numeric: true,
      cell: (row) => h("span", {
        ...noiseMark(row.deltas[i].noise),
        "data-testid": "difference-cell",
      }, row.deltas[i].text),
    })),
  ];
  return h("div", {},
    h("p", { class: "muted small" }, "Each metric's difference from ce, paired by seed: mean ± 95% t half-width; ",
      "* (and bold) beyond the seed noise, muted within it. Many tests at 5% give a few * by chance."),
    h("div", { class: "table-compact" }, table({
      label: "Differences from ce", testid: "study-differences", rows, columns,
      empty: "Only ce in this study: nothing to compare.", rowProps: (row) => rowProps(view, row.loss, "difference-row"),
    })));
}
