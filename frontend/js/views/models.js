// #/models — model series and their checkpoints, and forms to upload a checkpoint from this computer,
// or to register a checkpoint, or a folder of checkpoints as one series, from a path on the server
// (under FOCALSCOPE_MODEL_ROOTS).

import { api } from "../api.js";
import { card, errorBox, field, formStatus, pager, table, timeAgo } from "../components.js";
import { h, replace } from "../dom.js";
import { fmtAgo, fmtCompact, fmtInt, modelName, parseTime } from "../format.js";
import { registerFolderForm } from "./models/register_folder.js";
import { uploadCheckpointForm } from "./models/upload_checkpoint.js";

const PAGE = 100;

export async function mount(ctx) {
  ctx.setTitle("Models");
  let offset = 0;
  let seriesFilter = null;
  const seriesEl = h("div");
  const checkpointsEl = h("div");

  const refresh = async () => {
    const [series, checkpoints] = await Promise.all([
      api.series({ limit: 500 }, ctx.signal),
      api.checkpoints({ offset, limit: PAGE, series_id: seriesFilter ?? undefined }, ctx.signal),
    ]);
    if (!ctx.alive) return;
    replace(seriesEl, table({
      label: "Model series", testid: "series-table", rows: series.items, empty: "No models yet: register a checkpoint above, or use `focalscope model add`.",
      columns: [
        {
          label: "Series", cell: (s) => h("div", {},
            h("button", {
              type: "button", class: "link-button", "aria-pressed": String(seriesFilter === s.id), title: "show only this series' checkpoints",
              on: { click: () => { seriesFilter = seriesFilter === s.id ? null : s.id; offset = 0; refresh().catch(showError); } },
            }, s.name), " ",
            h("a", { href: `#/series/${s.id}`, class: "small", "aria-label": `${s.name}: series page` }, "page →"),
            s.description ? h("div", { class: "muted small" }, s.description) : null),
        },
        { label: "Checkpoints", numeric: true, cell: (s) => fmtInt(s.n_checkpoints) },
      ],
    }));
    const filterName = seriesFilter !== null ? (series.items.find((s) => s.id === seriesFilter) || {}).name : null;
    replace(checkpointsEl,
      filterName ? h("p", { class: "muted small" }, `Only series ${filterName}. `, h("button", { type: "button", class: "link-button", on: { click: () => { seriesFilter = null; refresh().catch(showError); } } }, "Show all")) : null,
      table({
        label: "Checkpoints", testid: "checkpoints-table", rows: checkpoints.items, empty: "No checkpoints.",
        columns: [
          { label: "Checkpoint", cell: (c) => h("span", { class: "strong" }, modelName(c)) },
          { label: "Id", numeric: true, cell: (c) => h("span", { class: "muted" }, String(c.id)) },
          { label: "Architecture", cell: (c) => c.architecture },
          { label: "Format", cell: (c) => c.format },
          { label: "Tokens seen", numeric: true, cell: (c) => (c.tokens_seen === null ? "—" : fmtCompact(c.tokens_seen)) },
          { label: "Weights", cell: (c) => h("code", { class: "small", title: `sha256 ${c.weights_sha256}` }, c.weights_sha256.slice(0, 12)) },
          { label: "Path", cell: (c) => h("span", { class: "mono small path" }, c.path) },
          { label: "Registered", cell: (c) => timeAgo(parseTime(c.created_at), fmtAgo(c.created_at)) },
        ],
      }),
      pager({ total: checkpoints.total, offset, limit: PAGE, noun: "checkpoints", onChange: (o) => { offset = o; refresh().catch(showError); } }));
  };
  const showError = (error) => { if (ctx.alive && error.name !== "AbortError") replace(checkpointsEl, errorBox(error)); };
  const health = await api.health(ctx.signal); // the upload limit
  if (!ctx.alive) return;

  replace(ctx.root,
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Models"),
      h("p", { class: "lede" }, "A series is one model's checkpoints over training (step 0, 1000, …). Checkpoints are safetensors directories or GGUF files, uploaded or on the server."))),
    uploadCheckpointForm({
      limitMb: health.max_checkpoint_upload_mb, suffixes: ctx.vocab.checkpoint_file_suffixes,
      onUploaded: () => refresh().catch(showError), signal: ctx.signal,
    }),
    registerForm(() => refresh().catch(showError)),
    registerFolderForm(() => refresh().catch(showError)),
    h("div", { class: "grid-models" }, card("Series", seriesEl), card("Checkpoints", checkpointsEl)));
  await refresh();
}

function registerForm(onCreated) {
  const path = h("input", { type: "text", name: "path", required: true, placeholder: "/models/my-run/checkpoint-1000", class: "mono" });
  const series = h("input", { type: "text", name: "series", maxlength: 200, placeholder: "default: the directory or file name" });
  const step = h("input", { type: "number", name: "step", min: 0, value: 0, required: true });
  const status = formStatus();
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Register");
  const form = h("form", { class: "form-grid", "aria-label": "Register a checkpoint" },
    field("Server path", path, { hint: "a safetensors directory or a .gguf file under the server's model roots" }),
    field("Series", series), field("Step", step), h("div", { class: "form-actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    status.busy("Registering (hashing the weights)…");
    try {
      const body = { path: path.value.trim(), step: Number(step.value) };
      if (series.value.trim()) body.series = series.value.trim();
      const { status: code, data } = await api.registerCheckpoint(body);
      status.ok(code === 201
        ? `Registered ${modelName(data)} (${data.architecture}, ${data.format}).`
        : `${modelName(data)} was registered already with these weights.`);
      onCreated();
    } catch (error) {
      status.error(error);
    } finally {
      submit.disabled = false;
    }
  });
  return h("details", { class: "card card-collapsible" }, h("summary", {}, h("span", { class: "card-title" }, "Register a checkpoint")), form, status.el);
}
