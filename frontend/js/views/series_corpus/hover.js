// The cartography scatter's hover: a DOM box (token text goes in through textContent, never into
// Plotly) with the point's token, where it is, its numbers and, once loaded, its context: the text
// around it, from the occurrence's own small record (fetched once per point, after the pointer rests).

import { api } from "../../api.js";
import { h, replace } from "../../dom.js";
import { fmtInt, fmtNum, fmtPct } from "../../format.js";
import { visibleText } from "../../tokens.js";

const GAP_PX = 14;
// The pointer rests this long on a point before its context is fetched.
const CONTEXT_DELAY_MS = 250;

/** {el, show(points, index, mouseEvent), hide()}. */
export function pointHover(ctx, at) {
  const el = h("div", { class: "cartography-hover", role: "tooltip", "data-testid": "cartography-hover", hidden: true });
  const occurrences = new Map(); // "doc:position" → promise of its token record (with the context)
  let timer = null;
  let shownKey = null;
  const occurrence = (docId, position, key) => {
    if (!occurrences.has(key)) {
      const found = api.tokenTrajectory(at, docId, position, ctx.signal);
      found.catch(() => occurrences.delete(key)); // a failed load is tried again on the next hover
      occurrences.set(key, found);
    }
    return occurrences.get(key);
  };
  const hide = () => {
    clearTimeout(timer);
    shownKey = null;
    el.hidden = true;
  };
  const show = (points, i, event) => {
    const docId = points.document_id[i];
    const position = points.position[i];
    const context = h("p", { class: "context muted", "data-testid": "hover-context" }, "…");
    replace(el,
      h("div", { class: "tt-head" },
        h("code", { class: "tok-chip tok-chip-large", "data-testid": "hover-token" }, visibleText(points.text[i])),
        h("span", { class: "muted small", "data-testid": "hover-where" }, `doc ${docId} · token ${fmtInt(position)}`)),
      h("div", { class: "small" },
        `confidence ${fmtNum(points.confidence[i], 3)} · variability ${fmtNum(points.variability[i], 3)} · `
        + `correct ${fmtPct(points.correctness[i])} · forgotten ${fmtInt(points.forgetting[i])}×`),
      context);
    el.hidden = false;
    place(el, event);
    const key = `${docId}:${position}`;
    shownKey = key;
    clearTimeout(timer);
    timer = setTimeout(() => {
      occurrence(docId, position, key).then((found) => {
        if (shownKey !== key || !ctx.alive) return;
        replace(context, `…${found.context_before}`, h("mark", {}, found.text), `${found.context_after}…`);
      }).catch((error) => {
        if (shownKey === key && ctx.alive && error.name !== "AbortError") context.textContent = `(no context: ${error.message})`;
      });
    }, CONTEXT_DELAY_MS);
  };
  ctx.onDispose(() => clearTimeout(timer));
  return { el, show, hide };
}

/** Next to the pointer, kept inside the viewport. */
function place(el, event) {
  if (!event || !Number.isFinite(event.clientX)) return;
  const box = el.getBoundingClientRect();
  const vw = document.documentElement.clientWidth;
  const vh = document.documentElement.clientHeight;
  const left = event.clientX + GAP_PX + box.width > vw ? event.clientX - GAP_PX - box.width : event.clientX + GAP_PX;
  const top = Math.min(event.clientY + GAP_PX, vh - box.height - GAP_PX);
  el.style.left = `${Math.max(GAP_PX, Math.round(left))}px`;
  el.style.top = `${Math.max(GAP_PX, Math.round(top))}px`;
}
