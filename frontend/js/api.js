// The only module that talks to the server. Every call goes through `request` (or `upload`, for a
// checkpoint upload's progress), which turns the API's error body {"error": {"code", "message",
// "detail"}} into a thrown ApiError carrying the server's own message, so views can show it verbatim
// instead of a blank screen.

const BASE = "/api/v1";
// A server that is not open wants `Authorization: Bearer <token>`. The token lives in this tab's
// sessionStorage: gone when the tab closes, never sent to another site, not shared with other tabs.
const TOKEN_KEY = "focalscope.token";

export const apiToken = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => (value ? sessionStorage.setItem(TOKEN_KEY, value) : sessionStorage.removeItem(TOKEN_KEY)),
};

let unauthorizedHandler = () => {};
/** Call `handler(error)` whenever the server answers 401 (no token, or one it does not accept). */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

export class ApiError extends Error {
  constructor(message, { status = 0, code = "network_error", detail = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** The ApiError for an answer that is not ok, from its body as text; a 401 also goes to the handler. */
function errorOf(status, statusText, url, text) {
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (a proxy's HTML page, an empty body): fall back to the status line.
  }
  const err = body && body.error;
  const error = err && typeof err.message === "string"
    ? new ApiError(err.message, { status, code: err.code || "error", detail: err.detail ?? null })
    : new ApiError(`${status} ${statusText || "error"} from ${url}`, { status, code: "http_error" });
  if (status === 401) unauthorizedHandler(error);
  return error;
}

/** Headers of every request: JSON answers, and the tab's token when it has one. */
function baseHeaders() {
  const headers = { Accept: "application/json" };
  const token = apiToken.get();
  if (token) headers.Authorization = `Bearer ${token}`;
  return headers;
}

/** Send a request; resolves to {status, data}. Throws ApiError (also for network failures). */
export async function request(method, path, { params, json, form, signal } = {}) {
  const init = { method, signal, headers: baseHeaders() };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form; // FormData: the browser sets the multipart boundary itself
  }
  let response;
  try {
    response = await fetch(`${BASE}${path}${query(params)}`, init);
  } catch (cause) {
    if (cause && cause.name === "AbortError") throw cause;
    throw new ApiError(`cannot reach the server (${cause && cause.message ? cause.message : "network error"})`);
  }
  if (!response.ok) {
    const text = await response.text().catch(() => "");
    throw errorOf(response.status, response.statusText, response.url, text);
  }
  const data = response.status === 204 ? null : await response.json();
  return { status: response.status, data };
}

/**
 * POST a FormData with upload progress, which fetch does not report: XMLHttpRequest, with the same
 * headers as `request` (the browser adds Origin and Sec-Fetch-Site, which the server's cross-site
 * guard reads). `onProgress(sent, total)` as the body goes out; `onSent()` once all of it has.
 * Resolves to {status, data}; throws ApiError, or an AbortError when `signal` aborts.
 */
export function upload(path, form, { onProgress = () => {}, onSent = () => {}, signal } = {}) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) {
      reject(new DOMException("the upload was cancelled", "AbortError"));
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${BASE}${path}`);
    for (const [name, value] of Object.entries(baseHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (event) => { if (event.lengthComputable) onProgress(event.loaded, event.total); });
    xhr.upload.addEventListener("load", () => onSent());
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve({ status: xhr.status, data: JSON.parse(xhr.responseText) });
        } catch {
          reject(new ApiError(`${xhr.status}: an answer that is not JSON from ${xhr.responseURL}`, { status: xhr.status }));
        }
      } else {
        reject(errorOf(xhr.status, xhr.statusText, xhr.responseURL, xhr.responseText));
      }
    });
    // A server that refuses an upload before reading it (no token, a declared size over its limit)
    // answers at once and closes the connection; the browser may report only the closed connection.
    xhr.addEventListener("error", () => reject(new ApiError("the connection closed before the server answered (a "
      + "server that refuses an upload before reading it, for want of a token or over its size limit, closes it early)")));
    xhr.addEventListener("abort", () => reject(new DOMException("the upload was cancelled", "AbortError")));
    if (signal) signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(form);
  });
}

export const get = async (path, params, signal) => (await request("GET", path, { params, signal })).data;
export const post = async (path, json, signal) => (await request("POST", path, { json, signal })).data;

/** A series on a corpus, {seriesId, corpusId, options}, as the path its statistics live under. */
const onCorpus = (at) => `/series/${at.seriesId}/corpora/${at.corpusId}`;

// Endpoints, named after the domain: views never build URLs themselves.
export const api = {
  health: (signal) => get("/health", null, signal),
  vocabulary: (signal) => get("/vocabulary", null, signal),
  runs: (params, signal) => get("/runs", params, signal),
  run: (id, signal) => get(`/runs/${id}`, null, signal),
  runSummary: (id, signal) => get(`/runs/${id}/summary`, null, signal),
  runDocuments: (id, params, signal) => get(`/runs/${id}/documents`, params, signal),
  documentTokens: (runId, docId, gamma, signal) => get(`/runs/${runId}/documents/${docId}/tokens`, { gamma }, signal),
  documentNeighbours: (runId, docId, signal) => get(`/runs/${runId}/documents/${docId}/neighbours`, null, signal),
  createRun: (body) => request("POST", "/runs", { json: body }),
  cancelRun: (id) => post(`/runs/${id}/cancel`),
  retryRun: (id) => post(`/runs/${id}/retry`),
  corpora: (params, signal) => get("/corpora", params, signal),
  corpusDocuments: (id, params, signal) => get(`/corpora/${id}/documents`, params, signal),
  document: (id, signal) => get(`/documents/${id}`, null, signal),
  uploadCorpus: (formData) => request("POST", "/corpora", { form: formData }),
  checkpoints: (params, signal) => get("/checkpoints", params, signal),
  series: (params, signal) => get("/series", params, signal),
  registerCheckpoint: (body) => request("POST", "/checkpoints", { json: body }),
  // A .gguf file or a checkpoint archive, with series and step (see views/models/upload_checkpoint.js).
  uploadCheckpoint: (formData, options) => upload("/checkpoints/upload", formData, options),
  jobs: (params, signal) => get("/jobs", params, signal),
  trainingPresets: (signal) => get("/training/presets", null, signal),
  trainingLosses: (signal) => get("/training/losses", null, signal),
  saveSteps: (steps, saveEvery, signal) => get("/training/save-steps", { steps, save_every: saveEvery }, signal),
  createTrainingJob: (body) => request("POST", "/training/jobs", { json: body }),
  experiments: (params, signal) => get("/experiments", params, signal),
  experiment: (id, signal) => get(`/experiments/${id}`, null, signal),
  createExperiment: (body) => request("POST", "/experiments", { json: body }),
  experimentComparison: (id, params, signal) => get(`/experiments/${id}/comparison`, params, signal),
  studies: (params, signal) => get("/studies", params, signal),
  study: (name, signal) => get(`/studies/${encodeURIComponent(name)}`, null, signal),
  seriesCurve: (seriesId, params, signal) => get(`/series/${seriesId}/curve`, params, signal),
  corpus: (id, signal) => get(`/corpora/${id}`, null, signal),
  seriesDetail: (id, signal) => get(`/series/${id}`, null, signal),
  scoreSeries: (id, corpusId, options) => post(`/series/${id}/corpora/${corpusId}/score`, options ? { options } : {}),
  registerSeriesFolder: (body) => request("POST", "/series/register", { json: body }),
  // Across the checkpoints of a series on a corpus. `options` is the runs' scoring options as JSON
  // text, needed only when the series was scored on the corpus with several sets of them.
  seriesCheckpoints: (at, signal) => get(`${onCorpus(at)}/checkpoints`, { options: at.options }, signal),
  documentTrajectory: (at, docId, signal) => get(`${onCorpus(at)}/documents/${docId}/trajectory`, { options: at.options }, signal),
  tokenTrajectory: (at, docId, position, signal) => get(`${onCorpus(at)}/documents/${docId}/tokens/${position}`, { options: at.options }, signal),
  transitions: (at, params, signal) => get(`${onCorpus(at)}/transitions`, { ...params, options: at.options }, signal),
  transitionOccurrences: (at, params, signal) => get(`${onCorpus(at)}/transitions/occurrences`, { ...params, options: at.options }, signal),
  learnedAt: (at, params, signal) => get(`${onCorpus(at)}/learned-at`, { ...params, options: at.options }, signal),
  // Model A against model B on one corpus, and one document's units (tokens or segments) with Δ.
  compare: (a, b, params, signal) => get("/compare", { a, b, ...params }, signal),
  compareDocument: (a, b, docId, signal) => get(`/compare/documents/${docId}`, { a, b }, signal),
  difficulty: (runId, params, signal) => get(`/runs/${runId}/difficulty`, params, signal),
  runTypes: (runId, params, signal) => get(`/runs/${runId}/types`, params, signal),
  typeOccurrences: (runId, tokenId, params, signal) => get(`/runs/${runId}/types/${tokenId}/occurrences`, params, signal),
  cartography: (at, params, signal) => get(`${onCorpus(at)}/cartography`, { ...params, options: at.options }, signal),
};

/**
 * A loader whose answers are used only while they are the latest: `latest(promise)` resolves to the
 * answer, or to null when a newer load started meanwhile (or the page was left).
 */
export function latestOnly(ctx) {
  let generation = 0;
  return async (promise) => {
    const mine = (generation += 1);
    const answer = await promise;
    return ctx.alive && mine === generation ? answer : null;
  };
}
