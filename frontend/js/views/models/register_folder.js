// Register a folder of checkpoints as one series: every checkpoint subfolder of a server path
// (checkpoint-N, step-N, global_stepN, …; the step from trainer_state.json where present). The answer
// says what was registered, what was there already, and which subfolders were skipped and why.

import { api } from "../../api.js";
import { field, formStatus, notice } from "../../components.js";
import { h, replace } from "../../dom.js";
import { fmtInt } from "../../format.js";

/** The collapsible form; `onRegistered()` refreshes the page's lists. */
export function registerFolderForm(onRegistered) {
  const path = h("input", { type: "text", name: "path", required: true, placeholder: "/models/my-run", class: "mono" });
  const series = h("input", { type: "text", name: "series", maxlength: 200, placeholder: "default: the folder's name" });
  const status = formStatus();
  status.el.dataset.testid = "register-folder-status"; // the checkpoint form's status is "form-status"
  const outcome = h("div", { "data-testid": "register-folder-outcome" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Register folder");
  const form = h("form", { class: "form-grid", "aria-label": "Register a folder of checkpoints" },
    field("Folder on the server", path, { hint: "its checkpoint-N (step-N, global_stepN) subfolders become one series" }),
    field("Series name", series), h("div", { class: "form-actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    outcome.replaceChildren();
    status.busy("Registering (hashing the weights of every checkpoint)…");
    try {
      const body = { path: path.value.trim() };
      if (series.value.trim()) body.series = series.value.trim();
      const { data } = await api.registerSeriesFolder(body);
      status.clear();
      replace(outcome, registered(data));
      onRegistered();
    } catch (error) {
      status.error(error);
    } finally {
      submit.disabled = false;
    }
  });
  return h("details", { class: "card card-collapsible" },
    h("summary", {}, h("span", { class: "card-title" }, "Register a folder of checkpoints")), form, status.el, outcome);
}

function registered(data) {
  const n = data.registered.length;
  const again = data.existing.length;
  return h("div", {},
    notice(h("span", {},
      `Registered ${fmtInt(n)} ${n === 1 ? "checkpoint" : "checkpoints"} in series `, h("a", { href: `#/series/${data.series_id}` }, data.series),
      again ? ` (${fmtInt(again)} registered already)` : "", "."), n || again ? "ok" : "error"),
    data.skipped.length ? h("div", { class: "small" },
      `Skipped ${fmtInt(data.skipped.length)}:`,
      h("ul", { class: "skipped-list", "data-testid": "skipped-list" },
        data.skipped.map((s) => h("li", {}, h("span", { class: "mono" }, s.path), `: ${s.reason}`)))) : null);
}
