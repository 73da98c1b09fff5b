// The dashboard shell: hash routing, navigation, the health banner, and each view's lifecycle.
//
// A view module exports `mount(ctx)`; ctx gives it a root element, the route's params and query, an
// AbortSignal, `every(ms, fn)` for polling and `vocab`, the server's fixed vocabularies (job statuses,
// kinds, window policies, dtypes, tokenizers) read once per page load. Leaving the page aborts the
// signal, stops the polls and runs the view's `onDispose` callbacks, so a slow response never paints
// over the next page.

import { api, apiToken, onUnauthorized } from "./api.js";
import { errorBox, loading } from "./components.js";
import { h, replace } from "./dom.js";
import * as compareView from "./views/compare.js";
import { tokenForm } from "./token_form.js";
import * as corporaView from "./views/corpora.js";
import * as documentView from "./views/document.js";
import * as experimentView from "./views/experiment.js";
import * as experimentsView from "./views/experiments.js";
import * as jobsView from "./views/jobs.js";
import * as modelsView from "./views/models.js";
import * as runView from "./views/run.js";
import * as runsView from "./views/runs.js";
import * as seriesView from "./views/series.js";
import * as seriesCorpusView from "./views/series_corpus.js";
import * as seriesListView from "./views/series_list.js";
import * as studyView from "./views/study.js";
import * as typesView from "./views/types.js";

const HEALTH_EVERY_MS = 5000;
// A dragged slider writes the address at most this often: browsers throttle history.replaceState
// (Chromium ignores calls beyond ~200 in 10 s), and the last value is written when the drag stops.
// The write waits for the next frame to be painted: replaceState costs milliseconds that a slider's
// repaint (the scrubber's, γ's) should not wait for.
const QUERY_WRITE_MS = 150;

const ROUTES = [
  { pattern: /^\/runs\/?$/, view: runsView, nav: "runs", keys: [] },
  { pattern: /^\/runs\/(\d+)\/?$/, view: runView, nav: "runs", keys: ["runId"] },
  { pattern: /^\/runs\/(\d+)\/documents\/(\d+)\/?$/, view: documentView, nav: "runs", keys: ["runId", "docId"] },
  { pattern: /^\/experiments\/?$/, view: experimentsView, nav: "experiments", keys: [] },
  { pattern: /^\/experiments\/(\d+)\/?$/, view: experimentView, nav: "experiments", keys: ["experimentId"] },
  // A study is named, not numbered: its key is text (the name, percent-encoded in the address).
  { pattern: /^\/studies\/([^/]+)\/?$/, view: studyView, nav: "experiments", keys: ["studyName"], text: true },
  { pattern: /^\/series\/?$/, view: seriesListView, nav: "series", keys: [] },
  { pattern: /^\/series\/(\d+)\/?$/, view: seriesView, nav: "series", keys: ["seriesId"] },
  { pattern: /^\/series\/(\d+)\/corpora\/(\d+)\/?$/, view: seriesCorpusView, nav: "series", keys: ["seriesId", "corpusId"] },
  { pattern: /^\/compare\/?$/, view: compareView, nav: "runs", keys: [] },
  { pattern: /^\/runs\/(\d+)\/types\/?$/, view: typesView, nav: "runs", keys: ["runId"] },
  { pattern: /^\/corpora\/?$/, view: corporaView, nav: "corpora", keys: [] },
  { pattern: /^\/models\/?$/, view: modelsView, nav: "models", keys: [] },
  { pattern: /^\/jobs\/?$/, view: jobsView, nav: "jobs", keys: [] },
];

const NAV = [
  { id: "runs", label: "Runs", href: "#/runs" },
  { id: "experiments", label: "Experiments", href: "#/experiments" },
  { id: "series", label: "Series", href: "#/series" },
  { id: "corpora", label: "Corpora", href: "#/corpora" },
  { id: "models", label: "Models", href: "#/models" },
  { id: "jobs", label: "Jobs", href: "#/jobs" },
];

/** "#/runs/3/documents/7?gamma=2" → {path: "/runs/3/documents/7", query: URLSearchParams}. */
export function parseHash(hash) {
  const raw = (hash || "").replace(/^#/, "") || "/runs";
  const [path, search = ""] = raw.split("?");
  return { path: path.startsWith("/") ? path : `/${path}`, query: new URLSearchParams(search) };
}

function matchRoute(path) {
  for (const route of ROUTES) {
    const m = route.pattern.exec(path);
    if (m) return { route, params: Object.fromEntries(route.keys.map((k, i) => [k, route.text ? decodeText(m[i + 1]) : Number(m[i + 1])])) };
  }
  return null;
}

/** A text key of the address as written; a malformed escape ("%E0") is kept as it stands. */
function decodeText(raw) {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** /vocabulary with its live statuses as a Set, for `vocab.live.has(status)`. */
function vocabularyOf(raw) {
  return { ...raw, live: new Set(raw.live_statuses) };
}

class Shell {
  constructor(root) {
    this.vocabulary = null; // a promise, kept once it resolves; a failed read is retried by the next page
    this.navLinks = new Map();
    this.healthText = h("span", { class: "health", "data-testid": "health" }, "");
    this.banner = h("div", { class: "banner-region", "aria-live": "polite" });
    this.tokenRegion = h("div", { class: "banner-region" });
    this.main = h("main", { id: "main", class: "main", tabindex: "-1" });
    const nav = h("nav", { class: "nav", "aria-label": "Main" },
      NAV.map((item) => {
        const link = h("a", { href: item.href, class: "nav-link" }, item.label);
        this.navLinks.set(item.id, link);
        return link;
      }));
    const header = h("header", { class: "topbar" },
      h("div", { class: "topbar-inner" },
        h("a", { href: "#/runs", class: "brand", "aria-label": "focalscope home" },
          h("span", { class: "brand-mark", "aria-hidden": "true" }), "focalscope"),
        nav, this.healthText));
    replace(root, h("a", { href: "#main", class: "skip-link" }, "Skip to content"), header, this.tokenRegion, this.banner, this.main);
    this.current = null;
  }

  start() {
    onUnauthorized((error) => this.askForToken(error));
    window.addEventListener("hashchange", () => this.route());
    this.route();
    this.checkHealth();
    setInterval(() => this.checkHealth(), HEALTH_EVERY_MS);
  }

  async checkHealth() {
    try {
      const health = await api.health();
      const busy = health.busy_workers;
      this.healthText.textContent = `${health.database} · ${busy} busy worker${busy === 1 ? "" : "s"} · ${health.queued_jobs} queued`;
      this.healthText.className = "health health-ok";
      if (health.queue_stalled) {
        replace(this.banner, h("div", { class: "banner banner-warn", role: "alert", "data-testid": "health-banner" },
          h("strong", {}, "No worker is running. "),
          `${health.queued_jobs === 1 ? "A queued job has" : `${health.queued_jobs} queued jobs have`} waited over 30 s and no worker has picked ${health.queued_jobs === 1 ? "it" : "them"} up. Start a worker with `,
          h("code", {}, "focalscope worker"), " or ", h("code", {}, "focalscope serve --workers 1"), "."));
      } else {
        this.banner.replaceChildren();
      }
    } catch (error) {
      if (error.status === 401) {
        this.healthText.textContent = "API token needed";
        this.healthText.className = "health health-bad";
        this.banner.replaceChildren();
        return;
      }
      this.healthText.textContent = "API unreachable";
      this.healthText.className = "health health-bad";
      replace(this.banner, h("div", { class: "banner banner-error", role: "alert", "data-testid": "health-banner" },
        h("strong", {}, "The API does not answer. "), error.message));
    }
  }

  /** Show the token form (once, however many requests were refused); a token given there is kept
   * for this tab and the page is loaded again with it. */
  askForToken(error) {
    if (this.tokenRegion.firstChild) return;
    const { form, focus } = tokenForm({
      hadToken: Boolean(apiToken.get()), refusal: error.message,
      onToken: (value) => {
        apiToken.set(value);
        this.tokenRegion.replaceChildren();
        this.vocabulary = null;
        this.route();
        this.checkHealth();
      },
    });
    replace(this.tokenRegion, h("div", { class: "banner banner-warn", role: "alert" }, form));
    focus();
  }

  /** The server's vocabularies, fetched by the first page that needs them and shared by every later one. */
  loadVocabulary() {
    if (!this.vocabulary) {
      this.vocabulary = api.vocabulary().then(vocabularyOf).catch((error) => {
        this.vocabulary = null;
        throw error;
      });
    }
    return this.vocabulary;
  }

  dispose() {
    const current = this.current;
    if (!current) return;
    current.controller.abort();
    current.timers.forEach((t) => clearInterval(t));
    for (const fn of current.disposers) {
      try { fn(); } catch (e) { console.error(e); }
    }
    this.current = null;
  }

  async route() {
    const { path, query } = parseHash(window.location.hash);
    if (!window.location.hash || window.location.hash === "#" || window.location.hash === "#/") {
      window.location.replace("#/runs");
      return;
    }
    this.dispose();
    const matched = matchRoute(path);
    for (const [id, link] of this.navLinks) {
      if (matched && matched.route.nav === id) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const root = h("div", { class: "view" }, loading());
    this.main.replaceChildren(root);
    const state = { controller: new AbortController(), timers: [], disposers: [] };
    this.current = state;
    if (!matched) {
      document.title = "Not found · focalscope";
      replace(root, h("h1", {}, "Page not found"),
        errorBox(new Error(`There is no page at #${path}.`), { title: "Unknown address" }),
        h("p", {}, h("a", { href: "#/runs" }, "Back to the runs")));
      return;
    }
    const ctx = viewContext({ root, path, query, params: matched.params, state });
    try {
      ctx.vocab = await this.loadVocabulary();
      if (!ctx.alive) return;
      await matched.route.view.mount(ctx);
    } catch (error) {
      if (!ctx.alive || (error && error.name === "AbortError")) return;
      console.error(error);
      replace(root, h("h1", {}, "Cannot show this page"), errorBox(error, { title: "The server said" }),
        h("p", {}, h("a", { href: "#/runs" }, "Back to the runs")));
    }
  }
}

/** What a view's `mount` gets: its root, the route's params and query, an AbortSignal, polling
 * and disposal hooks tied to the page's lifetime, and `updateQuery` for state kept in the address. */
function viewContext({ root, path, query, params, state }) {
  const ctx = {
    root, path, query, params, signal: state.controller.signal, vocab: null,
    get alive() { return !state.controller.signal.aborted; },
    every: (ms, fn) => { state.timers.push(setInterval(fn, ms)); },
    onDispose: (fn) => state.disposers.push(fn),
    setTitle: (title) => { document.title = `${title} · focalscope`; },
    /**
     * Merge `changes` into the address's query without a new navigation (a slider's value, a tab);
     * null, undefined or "" removes a key. `ctx.query` is the page's state as the address has it.
     */
    updateQuery: (changes) => {
      for (const [key, value] of Object.entries(changes)) {
        if (value === null || value === undefined || value === "") query.delete(key);
        else query.set(key, String(value));
      }
      writeQuery();
    },
  };
  const writeQuery = rateLimitedAfterPaint(QUERY_WRITE_MS, () => {
    if (!ctx.alive) return;
    const search = query.toString();
    history.replaceState(null, "", `#${path}${search ? `?${search}` : ""}`);
  }, state.disposers);
  return ctx;
}

/** `fn` after the next frame is painted, and no sooner than `ms` after its last call (calls in
 * between are one); the pending call is dropped by the `disposers`. */
function rateLimitedAfterPaint(ms, fn, disposers) {
  let last = -Infinity;
  let frame = null;
  let timer = null;
  disposers.push(() => { cancelAnimationFrame(frame); clearTimeout(timer); });
  const run = () => { timer = null; last = performance.now(); fn(); };
  return () => {
    if (frame !== null || timer !== null) return;
    // A task queued from a frame callback runs once that frame is painted.
    frame = requestAnimationFrame(() => {
      frame = null;
      timer = setTimeout(run, Math.max(0, last + ms - performance.now()));
    });
  };
}

new Shell(document.getElementById("app")).start();
