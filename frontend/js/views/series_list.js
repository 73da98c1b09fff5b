// #/series — every model series (trained here, registered from a folder, or checkpoint by checkpoint)
// with its number of checkpoints, newest first, each linked to its page.

import { api } from "../api.js";
import { card, errorBox, pager, table, timeAgo } from "../components.js";
import { h, replace } from "../dom.js";
import { fmtAgo, fmtInt, parseTime } from "../format.js";

const PAGE = 50;

export async function mount(ctx) {
  ctx.setTitle("Series");
  let offset = Math.max(0, Number(ctx.query.get("offset")) || 0);
  const listEl = h("div");
  const refresh = async () => {
    const page = await api.series({ offset, limit: PAGE }, ctx.signal);
    if (!ctx.alive) return;
    replace(listEl, table({
      label: "Model series", testid: "series-list", rows: page.items,
      empty: "No series yet: register a folder of checkpoints on the Models page, or train one on the Experiments page.",
      rowProps: (s) => ({ "data-testid": "series-list-row", dataset: { seriesId: s.id } }),
      columns: [
        {
          label: "Series", cell: (s) => h("div", {},
            h("a", { href: `#/series/${s.id}`, class: "strong" }, s.name),
            s.description ? h("div", { class: "muted small" }, s.description) : null),
        },
        { label: "Checkpoints", numeric: true, cell: (s) => h("span", { "data-testid": "series-checkpoints" }, fmtInt(s.n_checkpoints)) },
        { label: "Created", cell: (s) => timeAgo(parseTime(s.created_at), fmtAgo(s.created_at)) },
      ],
    }), pager({
      total: page.total, offset, limit: PAGE, noun: "series", one: "series",
      onChange: (o) => { offset = o; ctx.updateQuery({ offset: o || null }); refresh().catch(showError); },
    }));
  };
  const showError = (error) => { if (ctx.alive && error.name !== "AbortError") replace(listEl, errorBox(error)); };
  replace(ctx.root,
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Series"),
      h("p", { class: "lede" }, "A series is one model's checkpoints over training. Its page shows which checkpoints are scored on which corpus, and how token difficulty moves from one checkpoint to the next."))),
    card("All series", listEl));
  await refresh();
}
