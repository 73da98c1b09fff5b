"""`scrubber`: how fast the document view's checkpoint scrubber and γ slider repaint, in headless Chromium.

`python -m bench.scrubber [--tokens 5000] [--checkpoints 10] [--rounds 3] [--line-tokens N] [--record]`:
writes one document of TOKENS tokens scored at CHECKPOINTS steps of a series (synthetic arrays,
bench/series.py's generator) into a fresh SQLite file, as one paragraph (the worst case: no line
break for the document view to split its text at) or, with --line-tokens N, as lines of N tokens
(the document view cuts its text into blocks at line breaks), serves it with `focalscope serve` (no
workers) and opens the document view of the middle checkpoint's run, coloured by p. Then, ROUNDS
times over every step, it moves the scrubber and the γ slider and reads the page's own measures
(frontend/js/views/document/paint_timing.js: from the input event to the frame after the repaint),
with the share of them within issue 10's 100 ms. The baseline is what a scrubber without the
prefetched trajectory would wait for before it could start to recolour: fetching and parsing one
step's `/tokens` response (measured in the same page, per step). peak_mem_mb: the page's JS heap at the end.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright
from sqlalchemy import select

import app.models  # noqa: F401  (registers every table)
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.models.corpus import Document
from app.services import corpora, scores
from bench.common import cpu_name, record
from bench.series import NAME, VOCAB, _done_runs, step_scores
from tests.support.browser import launch_chromium, serving

# Issue 10's goal for one scrubber step, input to painted colours.
GOAL_MS = 100

FETCH_STEP = """async ([runId, docId]) => {
  const started = performance.now();
  const response = await fetch(`/api/v1/runs/${runId}/documents/${docId}/tokens`);
  await response.json();
  return performance.now() - started;
}"""


def write_document(url: str, n_tokens: int, n_steps: int, line_tokens: int = 0) -> tuple[list[int], int]:
    """One document of n_tokens Zipf ids, scored at n_steps checkpoints, a line break after every
    line_tokens tokens (0: none); (run ids by step, document id)."""
    migrate.upgrade(url)
    generator = np.random.default_rng(0)
    ids = ((generator.zipf(1.2, n_tokens) - 1) % VOCAB).astype(np.int32)
    # Token k is " w{id}", after a line break when a line starts there (the break is not in a token).
    pieces = [("\n" if line_tokens and k and k % line_tokens == 0 else "", f" w{t}") for k, t in enumerate(ids.tolist())]
    text = "".join(brk + token for brk, token in pieces)
    # Offsets from the pieces themselves (step_scores' own assume one digit fewer per id).
    char_end = np.cumsum([len(brk) + len(token) for brk, token in pieces], dtype=np.int32)
    char_start = char_end - np.array([len(token) for _, token in pieces], dtype=np.int32)
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            corpus = corpora.create_corpus(session=session, name=NAME, documents=[
                corpora.DocumentIn(text=text, source="one.txt")])
            run_ids = _done_runs(session, corpus.id, n_steps)
            document_id = session.scalar(select(Document.id).where(Document.corpus_id == corpus.id))
            for run_id, scored in zip(run_ids, step_scores(ids, document_id, n_steps, generator)):
                scored.arrays.update(char_start=char_start, char_end=char_end)
                scores.store_scores(session=session, run_id=run_id, documents=[scored])
            session.commit()
    finally:
        engine.dispose()
    return run_ids, document_id


def measure(page, base: str, run_ids: list[int], document_id: int, rounds: int) -> dict:
    """Milliseconds per scrubber step, per γ recolour and per fetched step (the baseline); the page's JS heap."""
    middle = run_ids[len(run_ids) // 2]
    page.goto(f"{base}/#/runs/{middle}/documents/{document_id}?color=p")
    page.get_by_test_id("scrubber-range").wait_for()
    scrubber = page.get_by_test_id("scrubber-range")
    for _ in range(rounds):
        for index in range(len(run_ids)):
            scrubber.fill(str(index))
    page.locator('select[name="color"]').select_option("focal_weight")  # the colours γ moves
    for _ in range(rounds):
        for value in ("0.5", "1", "2", "3", "5"):
            page.locator("#gamma-slider").fill(value)
    expected = rounds * len(run_ids)
    page.wait_for_function(f"() => performance.getEntriesByName('scrubber-step').length >= {expected}")
    page.wait_for_function(f"() => performance.getEntriesByName('gamma-recolour').length >= {rounds * 5}")
    durations = page.evaluate("(name) => performance.getEntriesByName(name).map(e => e.duration)", "scrubber-step")
    recolours = page.evaluate("(name) => performance.getEntriesByName(name).map(e => e.duration)", "gamma-recolour")
    fetches = [page.evaluate(FETCH_STEP, [run_id, document_id]) for _ in range(rounds) for run_id in run_ids]
    heap_mb = page.evaluate("performance.memory.usedJSHeapSize / 2 ** 20")
    return {"scrubber-step": durations, "gamma-recolour": recolours, "fetch-step": fetches, "heap_mb": heap_mb}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=5000, help="tokens in the document")
    parser.add_argument("--checkpoints", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="passes over every step")
    parser.add_argument("--line-tokens", type=int, default=0, help="tokens per line (0: one paragraph)")
    parser.add_argument("--record", action="store_true", help="append the lines to bench/results.jsonl")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        run_ids, document_id = write_document(f"sqlite:///{data_dir / 'focalscope.db'}", args.tokens, args.checkpoints,
                                              args.line_tokens)
        with serving(data_dir, [Path(tmp)], workers=0) as server, sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                timings = measure(browser.new_page(viewport={"width": 1400, "height": 900}), server.url, run_ids,
                                  document_id, args.rounds)
            finally:
                browser.close()
    baseline = statistics.median(timings["fetch-step"])
    shape = f"lines of {args.line_tokens} tokens" if args.line_tokens else "one paragraph"
    for name in ("scrubber-step", "gamma-recolour"):
        values = timings[name]
        median, worst = statistics.median(values), max(values)
        within = sum(value <= GOAL_MS for value in values) / len(values)
        print(f"{name}: median {median:.1f} ms, worst {worst:.1f} ms, {within:.0%} within {GOAL_MS} ms over {len(values)} "
              f"({args.tokens:,} tokens, {shape}); fetching one step's tokens: median {baseline:.1f} ms")
        if args.record:
            record(bench="scrubber", device=f"{cpu_name()}, headless Chromium", n_tokens=args.tokens,
                   tokens_per_s=args.tokens / (median / 1000),
                   model=f"{name} input to painted, median {median:.0f} ms, worst {worst:.0f} ms, "
                         f"{within:.0%} within {GOAL_MS} ms ({len(values)} moves, {args.checkpoints} checkpoints, {shape})",
                   baselines={"fetch_step": args.tokens / (baseline / 1000)}, peak_mem_mb=timings["heap_mb"])


if __name__ == "__main__":
    main()
