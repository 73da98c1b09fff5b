// Small shared pieces of UI: badges, progress bars, tables, stat cards, forms, error boxes, pagers.

import { h, uid } from "./dom.js";
import { fmtInt } from "./format.js";

export function statusBadge(status) {
  return h("span", { class: ["badge", `badge-${status}`], "data-testid": "status", title: `status: ${status}` }, status);
}

/** A labelled progress bar; `total` 0 shows an empty bar. */
export function progressBar(done, total, { label = "", status = "" } = {}) {
  const fraction = total > 0 ? Math.min(1, done / total) : 0;
  const text = label || `${fmtInt(done)} / ${fmtInt(total)}`;
  return h("div", {
    class: ["progress", status && `progress-${status}`], role: "progressbar",
    "aria-valuemin": 0, "aria-valuemax": total || 0, "aria-valuenow": done || 0, "aria-label": text,
  },
  h("div", { class: "progress-fill", style: { width: `${(100 * fraction).toFixed(1)}%` } }),
  h("span", { class: "progress-label" }, text));
}

/** An error from the API (or anything thrown), shown with the server's message. */
export function errorBox(error, { title = "Something went wrong" } = {}) {
  const message = error && error.message ? error.message : String(error);
  const meta = [];
  if (error && error.status) meta.push(`HTTP ${error.status}`);
  if (error && error.code) meta.push(error.code);
  return h("div", { class: "error-box", role: "alert", "data-testid": "error" },
    h("strong", { class: "error-title" }, title),
    h("p", { class: "error-message" }, message),
    meta.length ? h("p", { class: "error-meta" }, meta.join(" · ")) : null);
}

export function notice(text, kind = "info") {
  return h("div", { class: ["notice", `notice-${kind}`], role: kind === "error" ? "alert" : "status" }, text);
}

export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, text);
}

/** A titled card. */
export function card(title, ...children) {
  const headingId = uid("card");
  return h("section", { class: "card", "aria-labelledby": headingId },
    title ? h("h2", { class: "card-title", id: headingId }, title) : null, ...children);
}

/** Key figures in a row: [{label, value, hint}] → a description list. */
export function statGrid(stats, { testid = "stats" } = {}) {
  return h("dl", { class: "stat-grid", "data-testid": testid },
    stats.map(({ label, value, hint }) => h("div", { class: "stat", title: hint || null },
      h("dt", {}, label), h("dd", {}, value))));
}

/**
 * A table. columns: [{label, cell: (row) => node|string, class, numeric, title}].
 * rows: array; empty: text for no rows; rowProps: (row) => extra <tr> props.
 */
export function table({ columns, rows, empty = "Nothing here yet.", caption, label, rowProps, testid }) {
  const thead = h("thead", {}, h("tr", {}, columns.map((c) => h("th", {
    scope: "col", class: [c.class, c.numeric && "num"], title: c.title || null,
  }, c.label))));
  const body = rows.length
    ? rows.map((row) => h("tr", rowProps ? rowProps(row) : {},
      columns.map((c) => h("td", { class: [c.class, c.numeric && "num"] }, c.cell(row)))))
    : h("tr", {}, h("td", { class: "empty", colspan: columns.length }, empty));
  return h("div", { class: "table-wrap" },
    h("table", { class: "table", "aria-label": label || caption || null, "data-testid": testid || null },
      caption ? h("caption", {}, caption) : null, thead, h("tbody", {}, body)));
}

/** Previous / next for paged lists. onChange(offset). */
export function pager({ total, offset, limit, onChange, noun = "items", one = noun.replace(/s$/, "") }) {
  if (total <= limit && offset === 0) return h("p", { class: "pager-info" }, `${fmtInt(total)} ${total === 1 ? one : noun}`);
  const first = total ? offset + 1 : 0;
  const last = Math.min(total, offset + limit);
  return h("nav", { class: "pager", "aria-label": `${noun} pages` },
    h("button", { type: "button", class: "btn btn-small", disabled: offset <= 0, on: { click: () => onChange(Math.max(0, offset - limit)) } }, "← Previous"),
    h("span", { class: "pager-info" }, `${fmtInt(first)}–${fmtInt(last)} of ${fmtInt(total)} ${noun}`),
    h("button", { type: "button", class: "btn btn-small", disabled: last >= total, on: { click: () => onChange(offset + limit) } }, "Next →"));
}

/** A labelled form control: the label's `for` points at the control. */
export function field(labelText, control, { hint } = {}) {
  if (!control.id) control.id = uid("field");
  const hintId = hint ? uid("hint") : null;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" },
    h("label", { for: control.id }, labelText),
    control,
    hint ? h("small", { class: "hint", id: hintId }, hint) : null);
}

/** A <select> from [{value, label}]. */
export function select(options, { value, name } = {}) {
  return h("select", { name }, options.map((o) => h("option", { value: o.value, selected: String(o.value) === String(value) }, o.label)));
}

/** A region that announces form results (success or the server's error message). */
export function formStatus() {
  const el = h("div", { class: "form-status", role: "status", "aria-live": "polite", "data-testid": "form-status" });
  return {
    el,
    clear: () => el.replaceChildren(),
    ok: (text) => el.replaceChildren(notice(text, "ok")),
    error: (err, title = "The server refused this") => el.replaceChildren(errorBox(err, { title })),
    busy: (text) => el.replaceChildren(notice(text, "info")),
  };
}

/** Relative time with the absolute local time as a tooltip. */
export function timeAgo(date, text) {
  return h("time", { datetime: date ? date.toISOString() : null, title: date ? date.toLocaleString() : null }, text);
}
