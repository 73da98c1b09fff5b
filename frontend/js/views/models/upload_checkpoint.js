// Upload a checkpoint from this computer: a .gguf file, a .zip / .tar / .tar.gz of a safetensors
// directory, or a checkpoint folder, whose config.json, *.safetensors and tokenizer files go as one
// .tar (tar.js says why). A progress bar follows the bytes sent, then the server's registration; a
// refusal is shown under the form with the server's message. Cancel aborts the upload.

import { api } from "../../api.js";
import { field, formStatus, notice } from "../../components.js";
import { h, replace } from "../../dom.js";
import { fmtBytes, fmtInt, modelName } from "../../format.js";
import { tarBlob } from "../../tar.js";

const SINGLE_FILES = ".gguf,.zip,.tar,.tar.gz,.tgz";
const LEFT_OUT_SHOWN = 8;

/**
 * The collapsible card. limitMb: the server's FOCALSCOPE_MAX_CHECKPOINT_UPLOAD_MB (/health);
 * suffixes: the file endings a checkpoint may hold (/vocabulary); onUploaded(): refreshes the page's
 * lists; signal: the page's, which aborts an upload still going when the page is left.
 */
export function uploadCheckpointForm({ limitMb, suffixes, onUploaded, signal }) {
  const limit = Math.floor(limitMb * 1024 * 1024);
  const ui = controls();
  let controller = null;
  ui.cancel.addEventListener("click", () => controller && controller.abort());
  signal.addEventListener("abort", () => controller && controller.abort());
  ui.form.addEventListener("submit", async (event) => {
    event.preventDefault();
    ui.leftOut.replaceChildren();
    let choice;
    try {
      choice = chosenUpload(ui.fileInput.files, ui.folderInput.files, suffixes);
      if (choice.blob.size > limit) {
        throw new Error(`${choice.name} is ${fmtBytes(choice.blob.size)}; this server takes checkpoints of up to ${fmtBytes(limit)}.`);
      }
    } catch (error) {
      ui.status.error(error, "Cannot upload this");
      return;
    }
    if (choice.leftOut.length) replace(ui.leftOut, leftOutNote(choice.leftOut));
    controller = new AbortController();
    ui.submit.disabled = true;
    ui.cancel.disabled = false;
    try {
      if (await send(ui, choice, controller.signal)) onUploaded();
    } finally {
      controller = null;
      ui.submit.disabled = false;
      ui.cancel.disabled = true;
    }
  });
  return h("details", { class: "card card-collapsible" },
    h("summary", {}, h("span", { class: "card-title" }, "Upload a checkpoint")),
    h("p", { class: "muted small", "data-testid": "upload-limit" },
      `Up to ${fmtBytes(limit)} per checkpoint, as sent and unpacked (the server's FOCALSCOPE_MAX_CHECKPOINT_UPLOAD_MB). `
      + "Pickle weights (.bin, .pt) are refused: convert them to safetensors first."),
    ui.form, ui.bar.el, ui.status.el, ui.leftOut);
}

function controls() {
  const fileInput = h("input", { type: "file", name: "file", accept: SINGLE_FILES });
  const folderInput = h("input", { type: "file", name: "folder", webkitdirectory: true, multiple: true });
  // One or the other: choosing a file clears the folder and the other way round.
  fileInput.addEventListener("change", () => { if (fileInput.files.length) folderInput.value = ""; });
  folderInput.addEventListener("change", () => { if (folderInput.files.length) fileInput.value = ""; });
  const series = h("input", { type: "text", name: "series", maxlength: 200, placeholder: "default: file or folder name" });
  const step = h("input", { type: "number", name: "step", min: 0, value: 0, required: true });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Upload");
  const cancel = h("button", { type: "button", class: "btn", disabled: true }, "Cancel");
  const form = h("form", { class: "form-grid", "aria-label": "Upload a checkpoint" },
    field("Checkpoint file", fileInput, { hint: "a .gguf file, or a .zip / .tar / .tar.gz of a safetensors directory" }),
    field("or a checkpoint folder", folderInput, { hint: "its config.json, *.safetensors and tokenizer files; other files (optimizer state, training arguments) stay here" }),
    field("Series", series), field("Step", step), h("div", { class: "form-actions" }, submit, " ", cancel));
  const status = formStatus();
  status.el.dataset.testid = "upload-status"; // the register form's status is "form-status"
  const leftOut = h("div", { "data-testid": "upload-left-out" });
  return { form, fileInput, folderInput, series, step, submit, cancel, bar: progressBar(), status, leftOut };
}

/** Upload the choice with the form's series and step, following it on the bar and in the status;
 * whether the server registered it. */
async function send(ui, choice, signal) {
  const body = new FormData();
  body.append("file", choice.blob, choice.name);
  const seriesName = ui.series.value.trim() || choice.series;
  if (seriesName) body.append("series", seriesName);
  body.append("step", ui.step.value);
  ui.bar.sending(0, choice.blob.size);
  ui.status.busy(`Uploading ${choice.name}…`);
  try {
    const answer = await api.uploadCheckpoint(body, {
      signal, onProgress: ui.bar.sending,
      onSent: () => { ui.bar.registering(); ui.status.busy("Registering (hashing the weights)…"); },
    });
    ui.bar.finished("done");
    ui.status.ok(outcome(answer));
    return true;
  } catch (error) {
    const cancelled = error.name === "AbortError";
    ui.bar.finished(cancelled ? "cancelled" : "failed");
    if (cancelled) ui.status.busy("Upload cancelled; nothing was registered.");
    else ui.status.error(error);
    return false;
  }
}

/** What to send: {blob, name, series, leftOut} for the chosen file or folder. */
function chosenUpload(fileList, folderList, suffixes) {
  if (fileList.length) return { blob: fileList[0], name: fileList[0].name, series: "", leftOut: [] };
  if (folderList.length) return folderArchive([...folderList], suffixes);
  throw new Error("Choose a checkpoint file or a checkpoint folder first.");
}

/** A chosen folder's checkpoint files, directly in it, as one .tar named after the folder; the files
 * left out (other endings, subfolders) by their path in the folder. */
function folderArchive(files, suffixes) {
  const folder = (files[0].webkitRelativePath || "").split("/")[0] || "checkpoint";
  const kept = [];
  const leftOut = [];
  for (const file of files) {
    const parts = (file.webkitRelativePath || file.name).split("/");
    const direct = parts.length <= 2;
    if (direct && suffixes.some((suffix) => file.name.toLowerCase().endsWith(suffix))) kept.push({ name: file.name, file });
    else leftOut.push(parts.slice(1).join("/") || file.name);
  }
  if (!kept.length) {
    throw new Error(`${folder} holds no checkpoint files (${suffixes.join(", ")}) directly: choose the folder that holds config.json.`);
  }
  return { blob: tarBlob(kept), name: `${folder}.tar`, series: folder, leftOut: leftOut.sort() };
}

function leftOutNote(paths) {
  const shown = paths.slice(0, LEFT_OUT_SHOWN).join(", ");
  const more = paths.length > LEFT_OUT_SHOWN ? ` and ${fmtInt(paths.length - LEFT_OUT_SHOWN)} more` : "";
  return notice(`Left out ${fmtInt(paths.length)} ${paths.length === 1 ? "file" : "files"} that ${paths.length === 1 ? "is" : "are"} `
    + `no part of a checkpoint or in a subfolder: ${shown}${more}.`, "info");
}

function outcome({ status: code, data }) {
  const reused = data.reused ? " The same file was uploaded before: its stored copy serves." : "";
  return code === 201
    ? `Uploaded and registered ${modelName(data)} (${data.architecture}, ${data.format}, ${fmtBytes(data.upload_bytes)}).${reused}`
    : `${modelName(data)} was registered already with these weights.${reused}`;
}

/** A <progress> with "sent of total (percent)", and its state in data-state for styles and tests. */
function progressBar() {
  const bar = h("progress", { max: 1, value: 0, "aria-label": "Upload progress" });
  const text = h("span", { class: "small muted", "data-testid": "upload-progress-text" });
  const el = h("div", { class: "upload-progress", "data-testid": "upload-progress", "data-state": "idle" }, bar, " ", text);
  const set = (state, label) => { el.dataset.state = state; text.textContent = label; };
  return {
    el,
    sending: (sent, total) => {
      bar.max = Math.max(total, 1);
      bar.value = sent;
      set("sending", `${fmtBytes(sent)} of ${fmtBytes(total)} (${Math.floor((100 * sent) / Math.max(total, 1))}%)`);
    },
    registering: () => {
      bar.value = bar.max;
      set("registering", `${fmtBytes(bar.max)} sent (100%)`);
    },
    finished: (state) => { el.dataset.state = state; },
  };
}
