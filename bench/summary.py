"""`summary`: one large run summarised in bounded memory — the streaming summary against the whole-run one.

`python -m bench.summary [--tokens 100000000] [--pg URL] [--record]`: writes one run of TOKENS tokens of
synthetic scores (bench/series.py's generator and writer: every stored field, top-5, lognormal document
lengths, Zipf token ids) straight into a fresh SQLite file (and a fresh database on the PostgreSQL server
at URL), then measures, each in a fresh process with the database's file dropped from the OS page cache:
- `streaming`: app.services.summaries.compute_summary, what the summarize job runs (two passes over the
  run, a batch of documents at a time), committed;
- baseline `whole-run`: the implementation it replaced (bench/summary_naive.py: every token in memory,
  then sorted).
Each process reports its wall time and peak RSS (VmHWM, imports included); the two summaries are checked
against each other: counts, histograms and loss quantiles equal, other numbers to 1e-9 relative, and the
largest difference of a focal Lorenz point (bounded as app/analytics/logprob_order.py states) printed. A
baseline that dies (out of memory at 100M tokens on a small machine) is reported, not fatal.
One results line per database: tokens/s and peak MiB are the streaming summary's; the model string
carries both processes' times and peaks.
"""

from __future__ import annotations

import math
import time

from sqlalchemy import select

from app.db.engine import make_engine, make_sessionmaker
from app.models.run import Run
from app.services import summaries
from app.services.checkpoints import load_vocabulary
from bench import summary_naive
from bench.common import against_baseline_main, cpu_name, measure_in_child, peak_rss_mb, record
from bench.series import _evict, write_series

EXACT = ("n_tokens", "loss_histogram", "entropy_histogram", "p_histogram", "gltr", "loss_quantiles")


def measure(url: str, method: str) -> dict:
    """One summary of the database's only run, timed, in this (fresh) process."""
    engine = make_engine(url)
    started = time.perf_counter()
    with make_sessionmaker(engine)() as session:
        run = session.scalar(select(Run))
        if method == "streaming":
            stored = summaries.compute_summary(session=session, run_id=run.id)
            session.commit()
            result = {"n_tokens": stored.n_tokens, "mean_loss": stored.mean_loss, "ece": stored.ece,
                      "brier": stored.brier, "top1_accuracy": stored.top1_accuracy, "stats": stored.stats}
        else:
            arrays = summary_naive.read_run_arrays(session=session, run_id=run.id)
            vocabulary = load_vocabulary(session=session, fingerprint=run.checkpoint.tokenizer_fingerprint) or []
            result = summary_naive.summarize(arrays, dict(enumerate(vocabulary)))
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"seconds": seconds, "peak_mem_mb": peak_rss_mb(), "summary": _comparable(result)}


def _comparable(result: dict) -> dict:
    stats = result["stats"]
    return {"n_tokens": result["n_tokens"], **{key: stats[key] for key in EXACT[1:]},
            "numbers": [result[k] for k in ("mean_loss", "ece", "brier", "top1_accuracy")]
            + [f[k] for f in stats["focal"] for k in ("effective_tokens", "mean_focal_loss")]
            + [row["mean_loss"] for row in stats["vocabulary"]["hardest"]],
            "curves": [[*f["lorenz"], *f["budget_share"].values()] for f in stats["focal"]]}


def agreement(streaming: dict, whole_run: dict) -> tuple[bool, float]:
    """(counts, histograms and quantiles equal and numbers within 1e-9, largest |Δ| of a Lorenz point)."""
    exact = all(streaming[key] == whole_run[key] for key in EXACT)
    pairs = list(zip(streaming["numbers"], whole_run["numbers"]))
    close = all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in pairs)
    lorenz = max(abs(a - b) for ours, theirs in zip(streaming["curves"], whole_run["curves"])
                 for a, b in zip(ours, theirs))
    return exact and close and len(streaming["numbers"]) == len(whole_run["numbers"]), lorenz


def _child(url: str, method: str, memory_cap_gib: float | None = None) -> dict | str:
    """The measurement from a fresh process with the database's pages evicted first, or why there is none."""
    _evict(url)
    return measure_in_child("bench.summary", method, url, memory_cap_gib)


def bench_database(url: str, dialect: str, args) -> None:
    started = time.perf_counter()
    n = write_series(url, args.tokens, 1)
    print(f"{dialect}: wrote a run of {n:,} tokens in {time.perf_counter() - started:.1f} s", flush=True)
    streaming = _child(url, "streaming")
    if isinstance(streaming, str):
        raise SystemExit(f"the streaming summary failed: {streaming}")
    whole_run = _child(url, "whole-run", args.baseline_memory_gib)
    line = f"streaming {streaming['seconds']:.1f} s, {streaming['peak_mem_mb']:,.0f} MiB"
    if isinstance(whole_run, str):
        line += f"; whole-run failed ({whole_run})"
        baselines = {}
    else:
        agrees, lorenz = agreement(streaming["summary"], whole_run["summary"])
        line += (f"; whole-run {whole_run['seconds']:.1f} s, {whole_run['peak_mem_mb']:,.0f} MiB; "
                 f"agree: {agrees}, Lorenz max |Δ| {lorenz:.1e}")
        baselines = {"whole-run": n / whole_run["seconds"]}
    print(f"{dialect}: {line}", flush=True)
    if args.record:
        record(bench="summary", device=cpu_name(), n_tokens=n, tokens_per_s=n / streaming["seconds"],
               model=f"run summary, {dialect}, {n:,} tokens: {line}", baselines=baselines,
               peak_mem_mb=streaming["peak_mem_mb"])


def main(argv: list[str] | None = None) -> None:
    against_baseline_main(argv, doc=__doc__, name="summary", default_tokens=100_000_000, measure=measure,
                          bench_database=bench_database)


if __name__ == "__main__":
    main()
