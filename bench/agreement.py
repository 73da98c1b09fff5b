"""`agreement`: the definitions' agreement over one large run in bounded memory — the sampled analytic
against the whole-run one it replaced.

`python -m bench.agreement [--tokens 10000000] [--pg URL] [--record]`: writes one run of TOKENS tokens of
synthetic scores (bench/series.py's generator and writer) straight into a fresh SQLite file (and a fresh
database on the PostgreSQL server at URL), then measures, each in a fresh process with the database's
file dropped from the OS page cache:
- `sampled`: app.services.hardness.agreement, what GET /runs/{id}/difficulty computes (means over every
  token, ρ and the hardest-10 % overlaps on a sample of SAMPLE_CAP tokens above it), no result cache;
- baseline `whole-run`: the implementation it replaced (bench/agreement_naive.py: every token in one
  float64 matrix, ranked in a second).
Each process reports its wall time and peak RSS (VmHWM, imports included). The answers are compared:
token counts equal, means to 1e-9 relative, and the largest |Δρ| off the diagonal (also in units of the
reported standard error) and |Δ overlap| printed. A baseline that dies (out of memory under its cap) is reported, not fatal.
One results line per database: tokens/s and peak MiB are the sampled analytic's; the model string
carries both processes' numbers.
"""

from __future__ import annotations

import math
import time

from sqlalchemy import select

from app.analytics.hardness_sample import SAMPLE_CAP
from app.db.engine import make_engine, make_sessionmaker
from app.models.run import Run
from app.services import hardness
from bench import agreement_naive
from bench.common import against_baseline_main, cpu_name, measure_in_child, peak_rss_mb, record
from bench.series import _evict, write_series

FRACTION = 0.1


def measure(url: str, method: str) -> dict:
    """The agreement over the database's only run, timed, in this (fresh) process."""
    engine = make_engine(url)
    started = time.perf_counter()
    with make_sessionmaker(engine)() as session:
        run = session.scalar(select(Run))
        if method == "sampled":
            answer = hardness.agreement(session=session, run=run, other=None, fraction=FRACTION)
        else:
            answer = agreement_naive.agreement(session=session, run=run, other=None, fraction=FRACTION)
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"seconds": seconds, "peak_mem_mb": peak_rss_mb(), "answer": answer}


def differences(sampled: dict, whole_run: dict) -> str:
    """How far the sampled answer is from the whole run's: means; ρ absolute, and in standard errors where
    the difference is more than rounding (|Δρ| > 1e-9: a ρ of 1 comes out as 1 − 10⁻¹² by either route,
    and its standard error is 0); overlaps."""
    means_close = sampled["n_tokens"] == whole_run["n_tokens"] and all(
        math.isclose(sampled["means"][name], whole_run["means"][name], rel_tol=1e-9, abs_tol=1e-12)
        for name in whole_run["means"] if whole_run["means"][name] is not None)
    rho, overlap, in_errors, at = 0.0, 0.0, 0.0, None
    errors = sampled.get("spearman_standard_error")
    for i, row in enumerate(whole_run["spearman"]):
        for j, exact in enumerate(row):
            if exact is None or i == j:
                continue
            delta = abs(sampled["spearman"][i][j] - exact)
            rho = max(rho, delta)
            if errors and delta > 1e-9 and delta / errors[i][j] > in_errors:
                in_errors, at = delta / errors[i][j], exact
            overlap = max(overlap, abs(sampled["hardest_overlap"][i][j] - whole_run["hardest_overlap"][i][j]))
    worst = f" ({in_errors:.1f} SE at most, at ρ = {at:.3f})" if at is not None else ""
    return f"means agree: {means_close}; max |Δρ| {rho:.1e}{worst}, max |Δ overlap| {overlap:.1e}"


def _child(url: str, method: str, memory_cap_gib: float | None = None) -> dict | str:
    """The measurement from a fresh process with the database's pages evicted first, or why there is none."""
    _evict(url)
    return measure_in_child("bench.agreement", method, url, memory_cap_gib)


def bench_database(url: str, dialect: str, args) -> None:
    started = time.perf_counter()
    n = write_series(url, args.tokens, 1)
    print(f"{dialect}: wrote a run of {n:,} tokens in {time.perf_counter() - started:.1f} s", flush=True)
    sampled = _child(url, "sampled")
    if isinstance(sampled, str):
        raise SystemExit(f"the sampled agreement failed: {sampled}")
    answer = sampled["answer"]
    line = (f"sampled ({answer['n_sampled']:,} of {answer['n_tokens']:,} tokens) {sampled['seconds']:.1f} s, "
            f"{sampled['peak_mem_mb']:,.0f} MiB")
    whole_run = _child(url, "whole-run", args.baseline_memory_gib)
    if isinstance(whole_run, str):
        line += f"; whole-run failed ({whole_run})"
        baselines = {}
    else:
        line += (f"; whole-run {whole_run['seconds']:.1f} s, {whole_run['peak_mem_mb']:,.0f} MiB; "
                 f"{differences(answer, whole_run['answer'])}")
        baselines = {"whole-run": n / whole_run["seconds"]}
    print(f"{dialect}: {line}", flush=True)
    if args.record:
        record(bench="agreement", device=cpu_name(), n_tokens=n, tokens_per_s=n / sampled["seconds"],
               model=f"definition agreement, {dialect}, {n:,} tokens, cap {SAMPLE_CAP:,}: {line}",
               baselines=baselines, peak_mem_mb=sampled["peak_mem_mb"])


def main(argv: list[str] | None = None) -> None:
    against_baseline_main(argv, doc=__doc__, name="agreement", default_tokens=10_000_000, measure=measure,
                          bench_database=bench_database)


if __name__ == "__main__":
    main()
