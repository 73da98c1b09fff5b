// Links to the previous and next scored documents of the run, and this document's place in it. The
// server finds them (a corpus may hold 100,000 documents: the page never lists them itself).

import { api } from "../../api.js";
import { errorBox } from "../../components.js";
import { h, replace } from "../../dom.js";
import { fmtInt } from "../../format.js";

/** The element at once; its links when the server answers, or the server's error in their place. */
export function neighboursNav(ctx, runId, docId) {
  const nav = h("div", { class: "doc-nav" });
  const href = (doc) => `#/runs/${runId}/documents/${doc.document_id}`;
  api.documentNeighbours(runId, docId, ctx.signal).then(({ previous, next, position, total }) => {
    if (!ctx.alive) return;
    replace(nav,
      previous ? h("a", { class: "btn btn-small", href: href(previous), rel: "prev" }, `← ${previous.title || "previous"}`) : null,
      h("span", { class: "muted small" }, `document ${fmtInt(position)} of ${fmtInt(total)}`),
      next ? h("a", { class: "btn btn-small", href: href(next), rel: "next" }, `${next.title || "next"} →`) : null);
  }).catch((error) => {
    if (ctx.alive && error.name !== "AbortError") replace(nav, errorBox(error, { title: "Cannot find the previous and next documents" }));
  });
  return nav;
}
