"""`compare`: model A against model B over two stored 1M-token runs, and the agreement of the definitions
of a hard token over one.

`python -m bench.compare [--tokens 1000000] [--pg URL] [--record]`: writes bench/series.py's synthetic
corpus scored by two checkpoints of one series (same tokenizer) and by a third run whose tokenizer cuts
every word " wNNN" into " " + "wNNN" (twice the tokens, aligned by segments), straight into a fresh
SQLite file (and a fresh PostgreSQL database), then measures in a fresh process per database, through
the service functions the API calls (from the run checks on, as a request does):
- cold: a fresh engine and an empty result cache (SQLite's file dropped from the OS page cache);
- warm: the same question again, from the result cache (median of 5);
- baseline `naive`: per document an ORM query and Python loops (bench/compare_naive.py), checked
  against the service's answer.
n_tokens in a results line is the tokens read (both runs' for a comparison).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

from app.db.engine import make_engine, make_sessionmaker
from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.corpus import Corpus
from app.models.job import Job
from app.models.run import Run, TokenScores
from app.schemas.run import RunOptions
from app.services import compare, hardness, scores, summaries
from app.services.compare_runs import run_pair
from app.services.runs import get_run
from app.services.series_cache import ResultCache
from app.vocab import DONE, KIND_SCORE, KIND_SUMMARIZE
from bench import compare_naive
from bench.common import cpu_name, peak_rss_mb, record
from bench.scratch_db import scratch_postgres
from bench.series import NAME, _evict, write_series

ROOT = Path(__file__).resolve().parent.parent


def write_runs(url: str, n_tokens: int) -> int:
    """bench.series' corpus and two checkpoints, plus a run of another tokenizer; returns tokens per run."""
    n = write_series(url, n_tokens, 2)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    generator = np.random.default_rng(1)
    with sessions() as session:
        corpus_id = session.scalar(select(Corpus.id).where(Corpus.name == NAME))
        run = _other_tokenizer_run(session, corpus_id)
        first_run = session.scalar(select(Run.id).where(Run.corpus_id == corpus_id).order_by(Run.id))
        rows = session.execute(select(TokenScores.document_id, TokenScores.token_id, TokenScores.char_start,
                                      TokenScores.char_end).where(TokenScores.run_id == first_run)).all()
        split = [_split_words(document_id, token_id, start, end, generator) for document_id, token_id, start, end in rows]
        for i in range(0, len(split), 64):
            scores.store_scores(session=session, run_id=run, documents=split[i:i + 64])
        session.commit()
        for run_id in session.scalars(select(Run.id).where(Run.corpus_id == corpus_id)):
            summaries.compute_summary(session=session, run_id=run_id)  # what the summarize job would write
        session.commit()
    engine.dispose()
    return n


def _other_tokenizer_run(session, corpus_id: int) -> int:
    checkpoint = Checkpoint(series=ModelSeries(name=f"{NAME}-split"), step=0, format="safetensors", path="/bench/split",
                            weights_sha256="1" * 64, tokenizer_fingerprint="1" * 64)
    run = Run(checkpoint=checkpoint, corpus_id=corpus_id, options=RunOptions().model_dump(), options_key=RunOptions().key())
    session.add(run)
    session.flush()
    session.add_all([Job(kind=KIND_SCORE, status=DONE, run_id=run.id, payload={}),
                     Job(kind=KIND_SUMMARIZE, status=DONE, run_id=run.id, payload={})])
    return run.id


def _split_words(document_id, token_id, start, end, generator) -> scores.DocumentScores:
    """Every token " wNNN" as " " then "wNNN", with its own synthetic scores."""
    n = 2 * token_id.size
    starts = np.empty(n, np.int32)
    ends = np.empty(n, np.int32)
    starts[0::2], ends[0::2], starts[1::2], ends[1::2] = start, start + 1, start + 1, end
    ids = np.empty(n, np.int32)
    ids[0::2], ids[1::2] = 0, token_id + 1
    logprob = -generator.exponential(1.5, n).astype(np.float32)
    top = -np.sort(generator.exponential(2.0, (n, 5)), axis=1)
    return scores.DocumentScores(document_id=document_id, top_k=5, arrays={
        "token_id": ids, "char_start": starts, "char_end": ends, "logprob": logprob, "entropy": generator.random(n) * 5,
        "rank": generator.geometric(0.3, n) - 1, "top_ids": generator.integers(0, 50_000, (n, 5)), "top_logprobs": top,
        "sum_p2": np.exp(2 * logprob), "context_len": np.arange(1, n + 1)})


def measure(url: str) -> dict:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        run_ids = list(session.scalars(select(Run.id).order_by(Run.id)))
        corpus_id = session.scalar(select(Corpus.id).where(Corpus.name == NAME))
    engine.dispose()
    same, other = (run_ids[0], run_ids[1]), (run_ids[0], run_ids[2])
    questions = {
        "compare, same tokenizer": lambda s, cache: compare.compare_summary(session=s, pair=run_pair(session=s, a=same[0], b=same[1]), cache=cache),
        "compare, other tokenizer": lambda s, cache: compare.compare_summary(session=s, pair=run_pair(session=s, a=other[0], b=other[1]), cache=cache),
        "definition agreement": lambda s, cache: hardness.agreement(session=s, run=get_run(session=s, run_id=same[0]), other=None, fraction=0.1, cache=cache),
    }
    timings, answers = {}, {}
    for name, question in questions.items():
        _evict(url)
        engine = make_engine(url)
        sessions, cache = make_sessionmaker(engine), ResultCache()

        def ask(cache=cache):
            with sessions() as session:
                return question(session, cache)

        cold, answers[name] = _timed(ask)
        warm = statistics.median(_timed(ask)[0] for _ in range(5))
        timings[name] = {"cold": cold, "warm": warm}
        engine.dispose()
    peak = peak_rss_mb()
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        for name, pair in (("compare, same tokenizer", same), ("compare, other tokenizer", other)):
            timings[name]["naive"], naive = _timed(lambda: compare_naive.compare(session, corpus_id, *pair))
            answer = answers[name]
            timings[name]["agrees"] = naive["units"] == answer["units"] and abs(naive["total_delta"] - answer["total_delta"]) < 1e-6 * max(1.0, abs(naive["total_delta"]))
            timings[name]["tokens"] = answer["tokens_a"] + answer["tokens_b"]
        timings["definition agreement"]["naive"], rho = _timed(lambda: compare_naive.agreement(session, corpus_id, same[0]))
        answer = answers["definition agreement"]
        timings["definition agreement"]["agrees"] = abs(rho - answer["spearman"][0][answer["definitions"].index("entropy")]) < 1e-9
        timings["definition agreement"]["tokens"] = answer["n_tokens"]
    engine.dispose()
    return {"peak_mem_mb": peak, "timings": timings}


def _timed(call):
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def bench_database(url: str, dialect: str, args) -> None:
    started = time.perf_counter()
    n = write_runs(url, args.tokens)
    print(f"{dialect}: wrote 3 runs of {n:,} tokens (one cut twice as fine) in {time.perf_counter() - started:.1f} s", flush=True)
    child = subprocess.run([sys.executable, "-m", "bench.compare", "--measure", url], cwd=ROOT, capture_output=True,
                           text=True, check=False)
    if child.returncode:
        raise SystemExit(f"measuring process failed:\n{child.stdout[-3000:]}\n{child.stderr[-3000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    for name, t in result["timings"].items():
        print(f"{dialect} {name:26s} cold {t['cold']:7.3f} s  warm {t['warm'] * 1000:8.2f} ms  naive {t['naive']:7.2f} s  "
              f"agrees with naive: {t['agrees']}", flush=True)
        for mode in ("cold", "warm") if args.record else ():
            record(bench="compare", device=cpu_name(), n_tokens=t["tokens"], tokens_per_s=t["tokens"] / t[mode],
                   model=f"{name} {mode}, {dialect}, {n:,} tokens per run", baselines={"naive": t["tokens"] / t["naive"]},
                   peak_mem_mb=result["peak_mem_mb"])
    print(f"{dialect}: peak RSS of the measuring process {result['peak_mem_mb']:.0f} MiB", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=1_000_000, help="tokens per run (the finer run has twice as many)")
    parser.add_argument("--pg", help="PostgreSQL server URL: also measure in a fresh database there")
    parser.add_argument("--record", action="store_true", help="append the lines to bench/results.jsonl")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the measuring child process: a database URL
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        bench_database(f"sqlite:///{Path(tmp) / 'compare.db'}", "sqlite", args)
    if args.pg:
        with scratch_postgres(args.pg, "fs_bench_compare") as url:
            bench_database(url, "postgres", args)


if __name__ == "__main__":
    main()
