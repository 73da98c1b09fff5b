// Building DOM from data without ever parsing HTML: every string becomes a text node or an attribute
// value. Untrusted text (token text, document text, titles, error messages) is safe through here.

/**
 * h("a", {href: "#/runs", class: "link", dataset: {id: 3}, on: {click}}, "text", child, [more])
 * Props: class, text, dataset, style (object), on (event → handler), any other key → attribute
 * (true → empty attribute, false/null/undefined → omitted).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    else if (key === "style") Object.assign(el.style, value);
    else if (key === "on") for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    else if (key === "value" && "value" in el) el.value = value;
    else if (key === "checked" || key === "selected" || key === "disabled") el[key] = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

/** Append children: strings and numbers as text nodes, nodes as they are, arrays flattened. */
export function append(parent, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace all children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let nextId = 0;
/** A document-unique id for label/for and aria-describedby pairs. */
export const uid = (prefix = "fs") => `${prefix}-${(nextId += 1)}`;
