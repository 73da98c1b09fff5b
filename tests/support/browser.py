"""Helpers for the browser tests: a real `focalscope serve` on a free port, seeded over the REST API,
and a headless Chromium from Playwright.

The server runs in its own session (process group) so that stopping it also stops the worker
processes it spawned; its output goes to a log file that is printed when it fails to start.

Run by hand for a look at the dashboard with seeded data (Ctrl-C stops it):

    .venv/bin/python -m tests.support.browser /tmp/focalscope-dev
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from app.assets import shakespeare_texts
from tests.support.csp import watch_csp
from app.training_specs import save_steps

# A fresh SQLite database is migrated on start; on a loaded 2-core machine that takes seconds.
SERVER_START_TIMEOUT_S = 45
# A tiny model on three short documents scores in a few seconds once the worker has imported torch.
RUN_DONE_TIMEOUT_S = 60
STOP_TIMEOUT_S = 25
# The system Chromium: Playwright's own browser download is not available offline.
CHROMIUM = os.environ.get("FOCALSCOPE_TEST_CHROMIUM", "/usr/bin/chromium")
# The server runs `python -m focalscope` from the checkout these tests belong to (a working directory
# elsewhere would import whichever focalscope is installed, and serve that one's frontend).
REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]

# Untrusted text on purpose: markup that must be shown as characters, never parsed (in the text and
# in a title, which the dashboard puts in headings, breadcrumbs and tables).
MARKUP_LINE = "Beware <b>bold</b> & <script>alert('x')</script> tags.\n"
MARKUP_TITLE = "<b>markup</b> & <img src=x onerror=alert(1)>"
CORPUS_FILES = {
    "witches.txt": (
        "When shall we three meet again\nIn thunder, lightning, or in rain?\n\n\n"
        "When the hurlyburly's done,\n    When the battle's lost and won.\n\n"
        "Fair is foul, and foul is fair:\nHover through the fog and filthy air.\n"
    ),
    "hamlet.txt": (
        "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
        "The slings and arrows of outrageous fortune. Café résumé — naïve 🎭 fin.\n"
    ),
    "markup.jsonl": json.dumps({"title": MARKUP_TITLE, "text": "So foul and fair a day I have not seen.\n" + MARKUP_LINE}) + "\n",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A `python -m focalscope serve` subprocess with one CPU worker."""

    data_dir: Path
    model_roots: list[Path]
    port: int = field(default_factory=free_port)
    workers: int = 1
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"server-{self.port}.log"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"

    def start(self) -> "Server":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("FOCALSCOPE_") and k != "DATABASE_URL"}
        env["FOCALSCOPE_MODEL_ROOTS"] = json.dumps([str(p) for p in self.model_roots])
        env["PYTHONUNBUFFERED"] = "1"
        # An explicit database URL: a developer's .env must not point the test server at their database.
        database_url = f"sqlite:///{self.data_dir / 'focalscope.db'}"
        command = [
            sys.executable, "-m", "focalscope", "--data-dir", str(self.data_dir), "--database-url", database_url, "serve",
            "--port", str(self.port), "--workers", str(self.workers), "--device", "cpu",
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
                start_new_session=True,
            )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                status = self.process.returncode
                self.stop()  # its workers may have started
                raise RuntimeError(f"server exited with status {status}; its log:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not healthy after {SERVER_START_TIMEOUT_S} s; its log:\n{self.log()}")

    def stop(self) -> None:
        """SIGINT (uvicorn and the worker pool shut down cleanly), then SIGKILL the whole group."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        # The group id is the server's own pid (start_new_session): this reaches its workers and
        # nothing else.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        self.process = None


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`, from /proc (Linux)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it exited while we looked
        # Fields after the parenthesised command name: state, ppid, pgrp, ...
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def wait_group_gone(pgid: int, timeout: float = 10.0) -> list[int]:
    """Wait until no live process is left in group `pgid`; returns those still there."""
    deadline = time.monotonic() + timeout
    while (left := group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@dataclass
class Seeded:
    corpus: dict
    checkpoint: dict
    run: dict
    documents: list[dict]


def _ok(response: httpx.Response) -> dict:
    if response.status_code >= 400:
        raise AssertionError(f"{response.request.method} {response.request.url} → {response.status_code}: {response.text}")
    return response.json()


def seed(base_url: str, model_dir: Path, *, corpus_name: str = "macbeth-bits") -> Seeded:
    """Upload the corpus, register the model, score it, and wait until the run is done."""
    with httpx.Client(base_url=f"{base_url}/api/v1", timeout=30) as client:
        files = [("files", (name, text.encode("utf-8"), "text/plain")) for name, text in CORPUS_FILES.items()]
        corpus = _ok(client.post("/corpora", data={"name": corpus_name, "description": "browser test"}, files=files))
        checkpoint = _ok(client.post("/checkpoints", json={"path": str(model_dir), "series": "tiny-llama", "step": 100}))
        run = _ok(client.post("/runs", json={
            "checkpoint_id": checkpoint["id"], "corpus_id": corpus["id"], "options": {"max_length": 64, "top_k": 5},
        }))
        run = wait_run_done(client, run["id"])
        documents = _ok(client.get(f"/runs/{run['id']}/documents", params={"limit": 500}))["items"]
        return Seeded(corpus=corpus, checkpoint=checkpoint, run=run, documents=documents)


@dataclass
class SeededSeries:
    series_id: int
    corpus: dict
    checkpoints: list[dict]
    runs: list[dict]  # one per checkpoint, ascending by step
    documents: list[dict]


def seed_series(base_url: str, folder: Path, steps: list[int], *, series: str = "tiny-series",
                options: dict | None = None) -> SeededSeries:
    """Register `folder`/checkpoint-{step} for each step as one series, score every checkpoint on the
    CORPUS_FILES corpus and wait until each run is done."""
    options = options or {"max_length": 64, "top_k": 5}
    with httpx.Client(base_url=f"{base_url}/api/v1", timeout=30) as client:
        corpus = upload_corpus(client, "series-bits", CORPUS_FILES)
        checkpoints = [_ok(client.post("/checkpoints", json={"path": str(folder / f"checkpoint-{step}"), "series": series, "step": step}))
                       for step in steps]
        runs = [_ok(client.post("/runs", json={"checkpoint_id": c["id"], "corpus_id": corpus["id"], "options": options}))
                for c in checkpoints]
        runs = [wait_run_done(client, run["id"]) for run in runs]
        documents = _ok(client.get(f"/runs/{runs[0]['id']}/documents", params={"limit": 500}))["items"]
        return SeededSeries(series_id=checkpoints[0]["series_id"], corpus=corpus, checkpoints=checkpoints, runs=runs,
                            documents=documents)


def wait_run_done(client: httpx.Client, run_id: int, timeout: float = RUN_DONE_TIMEOUT_S) -> dict:
    deadline = time.monotonic() + timeout
    run = _ok(client.get(f"/runs/{run_id}"))
    while time.monotonic() < deadline:
        status = run["progress"]["status"]
        if status == "done" and run["summary"] is not None:
            return run
        if status in ("failed", "cancelled"):
            raise AssertionError(f"run {run_id} ended {status}: {run['progress']['errors']}")
        time.sleep(0.3)
        run = _ok(client.get(f"/runs/{run_id}"))
    raise AssertionError(f"run {run_id} not done after {timeout} s: {run['progress']}")


# --- training experiments ------------------------------------------------------------------------

# A tiny experiment (2 losses × 6 steps of 8 × 64 tokens, 3 checkpoints each) trains and scores in ~20 s
# on an idle 2-core machine; other test runs on the same machine can make it several times slower.
EXPERIMENT_DONE_TIMEOUT_S = 150
TRAIN_TEXT_CHARS = 20_000
TRAIN_DOCUMENT_CHARS = 5_000
EVAL_TEXT_CHARS = 4_000


def tempest_texts() -> tuple[dict[str, str], dict[str, str]]:
    """Training documents (~20 kB of The Tempest, act 1) and one held-out document (a later scene),
    as {file name: text}, from the shksprdata package."""
    text = (shakespeare_texts() / "tempest_gut.txt").read_text(encoding="utf-8")
    start = text.index("ACT 1")
    train = text[start:start + TRAIN_TEXT_CHARS]
    held_out_start = text.index("ACT 4")
    train_files = {
        f"tempest-{i // TRAIN_DOCUMENT_CHARS + 1}.txt": train[i:i + TRAIN_DOCUMENT_CHARS]
        for i in range(0, len(train), TRAIN_DOCUMENT_CHARS)
    }
    return train_files, {"tempest-act4.txt": text[held_out_start:held_out_start + EVAL_TEXT_CHARS]}


def upload_corpus(client: httpx.Client, name: str, files: dict[str, str]) -> dict:
    parts = [("files", (file_name, text.encode("utf-8"), "text/plain")) for file_name, text in files.items()]
    return _ok(client.post("/corpora", data={"name": name, "description": "browser test"}, files=parts))


def seed_training_corpora(base_url: str) -> tuple[dict, dict]:
    """Upload the training and the held-out corpus; returns both as the API shows them."""
    train_files, eval_files = tempest_texts()
    with httpx.Client(base_url=f"{base_url}/api/v1", timeout=30) as client:
        return upload_corpus(client, "tempest-train", train_files), upload_corpus(client, "tempest-eval", eval_files)


def wait_experiment_scored(base_url: str, experiment_id: int, timeout: float = EXPERIMENT_DONE_TIMEOUT_S) -> dict:
    """Poll the comparison until every series' job is done and each of its checkpoints (0, every
    save_every, the last) is scored; returns that comparison. Fails at once if a job fails."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=f"{base_url}/api/v1", timeout=30) as client:
        while True:
            comparison = _ok(client.get(f"/experiments/{experiment_id}/comparison"))
            config = comparison["experiment"]["config"]
            expected = len(save_steps(config["steps"], config["save_every"]))
            for series in comparison["series"]:
                job = series["job"] or {}
                if job.get("status") in ("failed", "cancelled"):
                    raise AssertionError(f"training of {series['name']} ended {job['status']}: {job.get('error')}")
            if comparison["series"] and all(
                (s["job"] or {}).get("status") == "done" and len(s["checkpoints"]) == expected
                and all(c["scored"] for c in s["checkpoints"])
                for s in comparison["series"]
            ):
                return comparison
            if time.monotonic() > deadline:
                states = [(s["name"], (s["job"] or {}).get("status"), [(c["step"], c["scored"]) for c in s["checkpoints"]])
                          for s in comparison["series"]]
                raise AssertionError(f"experiment {experiment_id} not trained and scored after {timeout} s: {states}")
            time.sleep(0.5)


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


# Generous for a loaded 2-core machine; a passing run waits far less. For actions and for `expect`
# alike (Playwright's own 5 s for expect was seen to run out while a page compiled Plotly beside
# three other browsers).
UI_TIMEOUT_MS = 15_000
expect.set_options(timeout=UI_TIMEOUT_MS)


@contextmanager
def serving(data_dir: Path, model_roots: list[Path], workers: int = 1) -> Iterator[Server]:
    """`focalscope serve` for the block; afterwards no process of its group may be left."""
    server = Server(data_dir=data_dir, model_roots=model_roots, workers=workers).start()
    pid = server.process.pid
    try:
        yield server
    finally:
        server.stop()
        left = wait_group_gone(pid)
        assert not left, f"processes {left} of the server's group outlived it"


@contextmanager
def chromium() -> Iterator:
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@contextmanager
def watched_page(browser, server: Server) -> Iterator:
    """A fresh page on the server that fails the test on any uncaught script error, dialog or violation
    of the Content-Security-Policy."""
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    problems: list[str] = []
    watch_csp(context, problems)
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    yield page
    context.close()
    assert problems == [], problems


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for a module's tests (each page gets a fresh context)."""
    with chromium() as instance:
        yield instance


@pytest.fixture
def page(browser, server):
    """A fresh page on the module's `server` fixture; fails the test on any uncaught script error or dialog."""
    with watched_page(browser, server) as instance:
        yield instance


def api_get(server: Server, path: str, **params) -> dict:
    """GET /api/v1{path} on the test server; the JSON body of a 200."""
    response = httpx.get(f"{server.url}/api/v1{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def fixed(page, value: float, digits: int) -> str:
    """`value.toFixed(digits)` as the page computes it (JavaScript rounds ties unlike Python's format)."""
    return page.evaluate("([v, d]) => v.toFixed(d)", [value, digits])


def _main() -> int:  # pragma: no cover - a developer's tool
    from tests.support.models import build_tiny_model

    root = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/focalscope-dev").resolve()
    model_dir = root / "models" / "tiny-llama"
    if not (model_dir / "config.json").exists():
        build_tiny_model(model_dir, "llama")
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 8765
    server = Server(data_dir=root / "data", model_roots=[root / "models"], port=port).start()
    print(f"serving {server.url} (log: {server.log_path})", flush=True)
    try:
        with httpx.Client(base_url=f"{server.url}/api/v1") as client:
            if not client.get("/runs").json()["items"]:
                seeded = seed(server.url, model_dir)
                print(f"seeded run {seeded.run['id']}", flush=True)
        while server.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
