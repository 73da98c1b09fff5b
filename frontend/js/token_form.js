// The form that asks for an API token when the server answers 401. A form, not prompt(): it can say
// why the last token was refused, and a password field keeps the token off the screen.
import { h } from "./dom.js";

/** A form that calls `onToken(text)` on submit; `refusal` is the server's message about the last try. */
export function tokenForm({ hadToken, refusal, onToken }) {
  const input = h("input", {
    type: "password", id: "api-token", name: "token", required: true, autocomplete: "off", spellcheck: "false",
    class: "mono", placeholder: "fs_…",
  });
  const form = h("form", { class: "token-form", "data-testid": "token-form", "aria-label": "API token" },
    h("p", {}, h("strong", {}, hadToken ? "The server did not accept the token. " : "This server needs an API token. "),
      refusal, " Ask its administrator for one (", h("code", {}, "focalscope token create"),
      "); it is kept in this browser tab only."),
    h("div", { class: "token-row" },
      h("label", { for: "api-token" }, "API token"), input,
      h("button", { type: "submit", class: "btn btn-primary" }, "Use token")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (value) onToken(value);
  });
  return { form, focus: () => input.focus() };
}
