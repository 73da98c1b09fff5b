// The Experiments page's list of studies (`focalscope study`: one experiment per seed, the same losses
// in each), each linked to its page across seeds (#/studies/NAME).

import * as charts from "../../charts.js";
import { statusBadge, table, timeAgo } from "../../components.js";
import { h } from "../../dom.js";
import { fmtAgo, parseTime } from "../../format.js";
import { lossKey } from "../../parts.js";

export const studyHref = (name) => `#/studies/${encodeURIComponent(name)}`;

export function studiesTable(studies) {
  return h("div", { class: "study-list" }, table({
    label: "Studies", testid: "studies-table", rows: studies,
    empty: "No studies yet: `focalscope study` trains every loss on several seeds and compares them here.",
    rowProps: (s) => ({ "data-testid": "study-row", dataset: { study: s.name } }),
    columns: [
      { label: "Study", cell: (s) => h("a", { href: studyHref(s.name), class: "run-link", "data-testid": "study-link" }, s.name) },
      { label: "Losses", cell: (s) => h("div", { class: "loss-keys" }, s.losses.map((loss, i) => lossKey(loss, charts.seriesColor(i)))) },
      { label: "Seeds", cell: (s) => s.seeds.join(", ") },
      { label: "Experiments", numeric: true, cell: (s) => String(s.experiments) },
      { label: "Status", cell: (s) => statusBadge(s.done ? "done" : "running") },
      { label: "Created", cell: (s) => timeAgo(parseTime(s.created_at), fmtAgo(s.created_at)) },
    ],
  }));
}
