// #/corpora — corpora with their documents, and an upload form (.txt: one document per file;
// .jsonl / .jsonl.gz: one {"text": ...} per line; .parquet: one row per document; the text field
// is selectable).

import { api } from "../api.js";
import { card, errorBox, field, formStatus, loading, pager, table, timeAgo } from "../components.js";
import { h, replace } from "../dom.js";
import { fmtAgo, fmtCompact, fmtInt, parseTime } from "../format.js";

const PAGE = 100;

export async function mount(ctx) {
  ctx.setTitle("Corpora");
  let offset = 0;
  let selected = null;
  const listEl = h("div");
  const docsEl = h("div");

  const refresh = async () => {
    const page = await api.corpora({ offset, limit: PAGE }, ctx.signal);
    if (!ctx.alive) return;
    replace(listEl, table({
      label: "Corpora", testid: "corpora-table", rows: page.items, empty: "No corpora yet: upload one above, or use `focalscope corpus add`.",
      rowProps: (c) => ({ "data-testid": "corpus-row", class: selected === c.id ? "is-selected" : null }),
      columns: [
        { label: "Name", cell: (c) => h("button", { type: "button", class: "link-button", "aria-pressed": String(selected === c.id), on: { click: () => showDocuments(c) } }, c.name) },
        { label: "Description", cell: (c) => h("span", { class: "muted" }, c.description || "—") },
        { label: "Documents", numeric: true, cell: (c) => fmtInt(c.n_documents) },
        { label: "Characters", numeric: true, cell: (c) => fmtCompact(c.n_chars) },
        { label: "Created", cell: (c) => timeAgo(parseTime(c.created_at), fmtAgo(c.created_at)) },
      ],
    }), pager({ total: page.total, offset, limit: PAGE, noun: "corpora", one: "corpus", onChange: (o) => { offset = o; refresh().catch(showError); } }));
  };
  const showError = (error) => { if (ctx.alive && error.name !== "AbortError") replace(listEl, errorBox(error)); };

  const showDocuments = async (corpus, docOffset = 0) => {
    selected = corpus.id;
    refresh().catch(showError);
    replace(docsEl, card(`Documents of ${corpus.name}`, loading()));
    try {
      const page = await api.corpusDocuments(corpus.id, { offset: docOffset, limit: PAGE }, ctx.signal);
      if (!ctx.alive) return;
      replace(docsEl, card(`Documents of ${corpus.name}`, table({
        label: `Documents of ${corpus.name}`, testid: "corpus-documents", rows: page.items,
        columns: [
          { label: "#", numeric: true, cell: (d) => h("span", { class: "muted" }, String(d.position + 1)) },
          { label: "Title", cell: (d) => d.title || `document ${d.id}` },
          { label: "Source", cell: (d) => h("span", { class: "muted mono small" }, d.source) },
          { label: "Characters", numeric: true, cell: (d) => fmtInt(d.n_chars) },
        ],
      }), pager({ total: page.total, offset: docOffset, limit: PAGE, noun: "documents", onChange: (o) => showDocuments(corpus, o) })));
    } catch (error) {
      if (ctx.alive && error.name !== "AbortError") replace(docsEl, errorBox(error));
    }
  };

  replace(ctx.root,
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Corpora"),
      h("p", { class: "lede" }, "Text to score. A .txt file is one document; a .jsonl or .jsonl.gz file holds one {\"text\": …} object per line (optional \"title\" and \"meta\"); a .parquet file one document per row. The text field can be another one."))),
    uploadForm(() => refresh().catch(showError)),
    card("All corpora", h("p", { class: "muted small" }, "Choose a corpus to list its documents."), listEl),
    docsEl);
  await refresh();
}

function uploadForm(onCreated) {
  const name = h("input", { type: "text", name: "name", required: true, maxlength: 200, placeholder: "e.g. macbeth-act1" });
  const description = h("input", { type: "text", name: "description", maxlength: 2000, placeholder: "optional" });
  const files = h("input", { type: "file", name: "files", multiple: true, accept: ".txt,.jsonl,.gz,.parquet", required: true });
  const textField = h("input", { type: "text", name: "text_field", required: true, maxlength: 200 });
  textField.defaultValue = "text"; // what form.reset() restores after an upload
  const status = formStatus();
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Upload");
  const form = h("form", { class: "form-grid", "aria-label": "Upload a corpus" },
    field("Name", name), field("Description", description),
    field("Files", files, { hint: ".txt, .jsonl, .jsonl.gz or .parquet; UTF-8" }),
    field("Text field", textField, { hint: "the .jsonl field or .parquet column holding the text" }),
    h("div", { class: "form-actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = new FormData();
    body.append("name", name.value.trim());
    body.append("description", description.value);
    body.append("text_field", textField.value.trim() || "text");
    for (const file of files.files) body.append("files", file, file.name);
    submit.disabled = true;
    status.busy("Uploading…");
    try {
      const { data } = await api.uploadCorpus(body);
      status.ok(`Created corpus “${data.name}”: ${fmtInt(data.n_documents)} documents, ${fmtInt(data.n_chars)} characters.`);
      form.reset();
      onCreated();
    } catch (error) {
      status.error(error);
    } finally {
      submit.disabled = false;
    }
  });
  return h("details", { class: "card card-collapsible" }, h("summary", {}, h("span", { class: "card-title" }, "Upload a corpus")), form, status.el);
}
