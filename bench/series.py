"""`series`: statistics across the checkpoints of a large stored series — transitions, cartography, learned-at.

`python -m bench.series [--tokens 1000000] [--checkpoints 10] [--pg URL] [--record]`: writes CHECKPOINTS
runs × TOKENS tokens of synthetic scores (every stored field, top-5, lognormal document lengths, Zipf
token ids, p drifting upward across steps) straight into a fresh SQLite file (and a fresh database on the
PostgreSQL server at URL), then measures in a fresh process per database, through the service functions
the API calls (each time from the series lookup and the run checks on, as a request does):
- cold: a fresh engine and an empty result cache; on SQLite the file is also dropped from the OS page cache;
- recompute: again with the database's pages cached but no result cache (the streaming pass itself);
- warm: the same question again, answered from the result cache (median of 5);
- baseline `naive`: per document an ORM query, then a Python loop over tokens (bench/series_naive.py),
  whose numbers are checked against the service's.
Peak RSS is the measuring process's after the service calls (before the baselines). In a results line
n_tokens is the series' stored scores (checkpoints × tokens). `--tokens 20000` is a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

import app.models  # noqa: F401  (registers every table)
from app.analytics.cartography import DEFAULT_CONFIDENCE_THRESHOLD, DEFAULT_VARIABILITY_THRESHOLD
from app.analytics.learned_at import DEFAULT_EASY_P, NEVER
from app.analytics.transitions import DEFAULT_LOSS_THRESHOLD
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.corpus import Corpus, Document
from app.models.job import Job
from app.models.run import Run
from app.schemas.run import RunOptions
from app.services import corpora, scores
from app.services.series_cache import ResultCache
from app.services.series_cartography import series_cartography
from app.services.series_runs import aligned_runs
from app.services.series_scores import learned_at_histogram, series_transitions
from app.vocab import DONE, KIND_SCORE, KIND_SUMMARIZE
from bench import series_naive
from bench.common import cpu_name, peak_rss_mb, record
from bench.scratch_db import scratch_postgres

NAME = "bench-series"
ROOT = Path(__file__).resolve().parent.parent
VOCAB = 50_257  # GPT-2's
TOP_K = 5
STEP_EVERY = 1000
WRITE_DOCUMENTS = 64  # documents per committed write


def synthetic_documents(n_tokens: int, generator: np.random.Generator) -> list[np.ndarray]:
    """Token ids per document: lognormal lengths (median ≈ 700 tokens) and Zipf-distributed ids."""
    documents, total = [], 0
    while total < n_tokens:
        n = min(int(np.clip(generator.lognormal(6.5, 0.6), 16, 4096)), n_tokens - total)
        documents.append(((generator.zipf(1.2, n) - 1) % VOCAB).astype(np.int32))
        total += n
    return documents


def step_scores(token_id: np.ndarray, document_id: int, n_steps: int, generator: np.random.Generator) -> list:
    """One DocumentScores per step: each occurrence's logit of p starts somewhere, drifts by its own
    gain over the steps, with noise; rank 0 when the logit is above −0.5, else a geometric rank."""
    n = token_id.size
    progress = np.linspace(0.0, 1.0, n_steps)[:, None]
    start, gain = generator.normal(-1.0, 2.0, n), generator.normal(2.0, 1.5, n)
    logit = start + gain * progress + generator.normal(0, 0.7, (n_steps, n))
    logprob = -np.logaddexp(0.0, -logit)
    rank = np.where(logit > -0.5, 0, generator.geometric(0.2, (n_steps, n)))
    ends = np.cumsum(3 + np.floor(np.log10(np.maximum(token_id, 1))).astype(np.int32))  # " w" + the id's digits
    starts = np.r_[0, ends[:-1]]
    documents = []
    for k in range(n_steps):
        top = -np.sort(generator.exponential(2.0, (n, TOP_K)), axis=1)
        documents.append(scores.DocumentScores(document_id=document_id, top_k=TOP_K, arrays={
            "token_id": token_id, "char_start": starts, "char_end": ends, "logprob": logprob[k],
            "entropy": generator.random(n) * 5, "rank": rank[k], "top_ids": generator.integers(0, VOCAB, (n, TOP_K)),
            "top_logprobs": top, "sum_p2": np.exp(2 * logprob[k]), "context_len": np.arange(1, n + 1)}))
    return documents


def write_series(url: str, n_tokens: int, n_steps: int, seed: int = 0) -> int:
    """The corpus, a series of n_steps checkpoints, one done run each, and their scores; returns tokens."""
    migrate.upgrade(url)
    generator = np.random.default_rng(seed)
    documents = synthetic_documents(n_tokens, generator)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    try:
        with sessions() as session:
            # Streamed in and read back by id only: a 100M-token corpus's texts never sit in memory at once.
            corpus = corpora.create_corpus(session=session, name=NAME, documents=(
                corpora.DocumentIn(text="".join(f" w{t}" for t in ids.tolist()), source=f"{i}.txt")
                for i, ids in enumerate(documents)))
            run_ids = _done_runs(session, corpus.id, n_steps)
            document_ids = list(session.scalars(select(Document.id).where(Document.corpus_id == corpus.id)
                                                .order_by(Document.position)))
            session.commit()
        for first in range(0, len(documents), WRITE_DOCUMENTS):
            by_step = [[] for _ in range(n_steps)]
            chunk = slice(first, first + WRITE_DOCUMENTS)
            for document_id, ids in zip(document_ids[chunk], documents[chunk]):
                for k, scored in enumerate(step_scores(ids, document_id, n_steps, generator)):
                    by_step[k].append(scored)
            with sessions() as session:
                for run_id, scored in zip(run_ids, by_step):
                    scores.store_scores(session=session, run_id=run_id, documents=scored)
                session.commit()
    finally:
        engine.dispose()
    return sum(d.size for d in documents)


def _done_runs(session, corpus_id: int, n_steps: int) -> list[int]:
    series = ModelSeries(name=NAME)
    options = RunOptions()
    runs = []
    for k in range(n_steps):
        checkpoint = Checkpoint(series=series, step=(k + 1) * STEP_EVERY, format="safetensors", path=f"/bench/{k}",
                                weights_sha256=f"{k:064d}", tokenizer_fingerprint="0" * 64)
        run = Run(checkpoint=checkpoint, corpus_id=corpus_id, options=options.model_dump(), options_key=options.key())
        session.add(run)
        session.flush()
        session.add_all([Job(kind=KIND_SCORE, status=DONE, run_id=run.id, payload={}),
                         Job(kind=KIND_SUMMARIZE, status=DONE, run_id=run.id, payload={})])
        runs.append(run.id)
    return runs


def _transitions(session, aligned, cache):
    return series_transitions(session=session, aligned=aligned, step_a=int(aligned.steps[0]),
                              step_b=int(aligned.steps[-1]), tau=DEFAULT_LOSS_THRESHOLD, cache=cache)


def _cartography(session, aligned, cache):
    return series_cartography(session=session, aligned=aligned, max_points=5000, min_count=5, region=None,
                              confidence_threshold=DEFAULT_CONFIDENCE_THRESHOLD, types_offset=0, types_limit=100,
                              variability_threshold=DEFAULT_VARIABILITY_THRESHOLD, cache=cache)


def _learned_at(session, aligned, cache):
    return learned_at_histogram(session=session, aligned=aligned, tau_easy=DEFAULT_EASY_P, cache=cache)


STATISTICS = {"transitions": _transitions, "cartography": _cartography, "learned-at": _learned_at}


def measure(url: str) -> dict:
    """Every statistic cold, recomputed and warm, then the naive baselines (checked against them)."""
    timings, answers = {}, {}
    for name, statistic in STATISTICS.items():
        _evict(url)
        engine = make_engine(url)
        sessions, cache = make_sessionmaker(engine), ResultCache()
        cold, answers[name] = _timed(lambda: _request(sessions, statistic, cache))
        recompute, _ = _timed(lambda: _request(sessions, statistic, None))
        warm = statistics.median(_timed(lambda: _request(sessions, statistic, cache))[0] for _ in range(5))
        timings[name] = {"cold": cold, "recompute": recompute, "warm": warm}
        engine.dispose()
    peak = peak_rss_mb()
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        corpus_id = session.scalar(select(Corpus.id).where(Corpus.name == NAME))
        n_tokens = session.scalar(text("SELECT sum(n_tokens) FROM token_scores")) // len(answers["learned-at"]["steps"])
        for name, check in BASELINES.items():
            timings[name]["naive"], agrees = _timed(lambda: check(session, corpus_id, answers[name]))
            timings[name]["agrees"] = agrees
    engine.dispose()
    return {"n_tokens": int(n_tokens), "n_checkpoints": len(answers["learned-at"]["steps"]), "peak_mem_mb": peak,
            "timings": timings}


def _request(sessions, statistic, cache):
    with sessions() as session:
        series = session.scalar(select(ModelSeries).where(ModelSeries.name == NAME))
        corpus = session.scalar(select(Corpus).where(Corpus.name == NAME))
        return statistic(session, aligned_runs(session=session, series=series, corpus=corpus), cache)


def _timed(call):
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def _evict(url: str) -> None:
    """Drop a SQLite database's pages from the OS page cache (only that file's: the machine is shared)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    for path in (Path(parsed.database), Path(f"{parsed.database}-wal")):
        if path.exists():
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.fsync(descriptor)
                os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(descriptor)


def _run_ids(session, corpus_id: int) -> list[int]:
    query = select(Run.id).join(Checkpoint).where(Run.corpus_id == corpus_id).order_by(Checkpoint.step)
    return list(session.scalars(query))


def _check_transitions(session, corpus_id: int, answer: dict) -> bool:
    naive = series_naive.transitions(session, corpus_id, answer["run_a"], answer["run_b"], answer["tau"])
    return naive == answer["counts"]


def _check_learned_at(session, corpus_id: int, answer: dict) -> bool:
    naive = series_naive.learned_at(session, corpus_id, _run_ids(session, corpus_id), answer["steps"], answer["tau_easy"])
    counts = [naive["overall"][step] for step in answer["steps"]]
    tokens = sum(naive["overall"].values())
    return answer["overall"] == {"counts": counts, "never": naive["overall"][NEVER], "tokens": tokens}


def _check_cartography(session, corpus_id: int, answer: dict) -> bool:
    naive = series_naive.cartography(session, corpus_id, _run_ids(session, corpus_id))
    regions = {r["region"]: r["occurrences"] for r in answer["regions"]}
    top = sorted(naive["per_type"].items(), key=lambda item: (-item[1][0], item[0]))[:len(answer["types"]["items"])]
    return regions == dict(naive["regions"]) and [t for t, _ in top] == [t["token_id"] for t in answer["types"]["items"]]


BASELINES = {"transitions": _check_transitions, "cartography": _check_cartography, "learned-at": _check_learned_at}


def bench_database(url: str, dialect: str, args) -> None:
    started = time.perf_counter()
    n_tokens = write_series(url, args.tokens, args.checkpoints)
    written = time.perf_counter() - started
    print(f"{dialect}: wrote {args.checkpoints} runs × {n_tokens:,} tokens in {written:.1f} s", flush=True)
    child = subprocess.run([sys.executable, "-m", "bench.series", "--measure", url], cwd=ROOT, capture_output=True,
                           text=True, check=False)
    if child.returncode:
        raise SystemExit(f"measuring process failed:\n{child.stdout[-3000:]}\n{child.stderr[-3000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    scored = result["n_tokens"] * result["n_checkpoints"]
    for name, t in result["timings"].items():
        print(f"{dialect} {name:12s} cold {t['cold']:7.3f} s  recompute {t['recompute']:7.3f} s  "
              f"warm {t['warm'] * 1000:8.2f} ms  naive {t['naive']:7.2f} s  agrees with naive: {t['agrees']}", flush=True)
        for mode in ("cold", "recompute", "warm") if args.record else ():
            record(bench="series", device=cpu_name(), n_tokens=scored, tokens_per_s=scored / t[mode],
                   model=f"{name} {mode}, {dialect}, {result['n_checkpoints']} × {result['n_tokens']:,} tokens",
                   baselines={"naive": scored / t["naive"]}, peak_mem_mb=result["peak_mem_mb"])
    print(f"{dialect}: peak RSS of the measuring process {result['peak_mem_mb']:.0f} MiB", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=1_000_000, help="tokens in the corpus (per checkpoint)")
    parser.add_argument("--checkpoints", type=int, default=10)
    parser.add_argument("--pg", help="PostgreSQL server URL: also measure in a fresh database there")
    parser.add_argument("--record", action="store_true", help="append the lines to bench/results.jsonl")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the measuring child process: a database URL
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        bench_database(f"sqlite:///{Path(tmp) / 'series.db'}", "sqlite", args)
    if args.pg:
        with scratch_postgres(args.pg, "fs_bench_series") as url:
            bench_database(url, "postgres", args)


if __name__ == "__main__":
    main()
