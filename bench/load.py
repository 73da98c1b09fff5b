"""`load`: many dashboard readers against one `focalscope serve`, with locust.

`python -m bench.load [--tokens 10000000] [--users 50] [--seconds 60] [--pg URL] [--record]`: a run of
TOKENS tokens (bench/export.py's synthetic arrays and texts) written straight into a fresh SQLite file
(and a fresh PostgreSQL database with --pg), its summary computed, then `focalscope serve --workers 0`
on a free loopback port and locust (headless, bench/locustfiles/dashboard_readers.py) with USERS users
(joining over 5 s; statistics from then on) for SECONDS seconds, twice: paced (each user pauses
0.5–1.5 s between requests, as a person reading the dashboard does) and closed-loop (no pauses: the
server's capacity). The documents read are the 16 whose token count is nearest 2,048. Reported per
mode: requests/s, p50/p99 of the document-tokens request, errors, the server's peak RSS. Baseline, same
server and data: one client reading the same documents in a loop (its requests/s and p50). In a results
line tokens_per_s is tokens served per second (document requests/s × 2,048) and n_tokens the run's stored tokens.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from app.db.engine import make_engine, make_sessionmaker
from app.models.run import TokenScores
from app.services import summaries
from bench.common import cpu_name, record
from bench.export import fill
from bench.scratch_db import scratch_postgres

# Not a module of bench/: importing locust monkey-patches the whole process (gevent), so only the
# locust process it starts may import it.
LOCUSTFILE = Path(__file__).resolve().parent / "locustfiles" / "dashboard_readers.py"
TARGET_TOKENS = 2048
N_DOCUMENTS = 16
PACE_S = 1.0
BASELINE_REQUESTS = 100
RAMP_S = 5


def prepare(url: str, n_tokens: int) -> tuple[int, list[int]]:
    """The filled run's id and the documents nearest TARGET_TOKENS tokens; its summary stored."""
    started = time.perf_counter()
    run_id = fill(url, n_tokens)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        summaries.compute_summary(session=session, run_id=run_id)
        session.commit()
        nearest = session.scalars(select(TokenScores.document_id).where(TokenScores.run_id == run_id)
                                  .order_by(func.abs(TokenScores.n_tokens - TARGET_TOKENS)).limit(N_DOCUMENTS)).all()
    engine.dispose()
    print(f"  wrote and summarised {n_tokens:,} tokens in {time.perf_counter() - started:.0f} s", flush=True)
    return run_id, list(nearest)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(url: str, data_dir: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "focalscope", "--data-dir", str(data_dir), "--database-url", url, "serve",
         "--workers", "0", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not become ready within 60 s")


def one_client(base: str, run_id: int, documents: list[int]) -> tuple[float, float]:
    """(requests/s, p50 ms) of one client reading the documents' tokens in a loop."""
    timings = []
    with httpx.Client(base_url=base, headers={"Accept-Encoding": "gzip"}) as client:
        for i in range(BASELINE_REQUESTS):
            started = time.perf_counter()
            client.get(f"/api/v1/runs/{run_id}/documents/{documents[i % len(documents)]}/tokens").raise_for_status()
            timings.append(time.perf_counter() - started)
    return len(timings) / sum(timings), statistics.median(timings) * 1000


def swarm(base: str, run_id: int, documents: list[int], users: int, seconds: int, pace: float, out: Path) -> dict:
    """Locust's aggregate for the document-tokens request and the error count over all requests."""
    env = {**os.environ, "LOAD_RUN_ID": str(run_id), "LOAD_DOCUMENT_IDS": ",".join(map(str, documents)),
           "LOAD_PACE_S": str(pace)}
    prefix = out / f"locust-{pace}"
    # Users join over RAMP_S seconds and the statistics restart once all have: 50 users that all start at
    # the same instant queue 50 requests at once, a burst no dashboard's readers produce.
    subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--users", str(users),
                    "--spawn-rate", str(users / RAMP_S), "--reset-stats", "--run-time", f"{seconds + RAMP_S}s",
                    "--host", base, "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"], env=env, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(f"{prefix}_stats.csv") as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    tokens, total = rows["document tokens"], rows["Aggregated"]
    return {"rps": float(tokens["Requests/s"]), "p50": float(tokens["50%"]), "p99": float(tokens["99%"]),
            "requests": int(total["Request Count"]), "errors": int(total["Failure Count"]),
            "summary_p99": float(rows["run summary"]["99%"])}


def server_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(url: str, label: str, args: argparse.Namespace, directory: Path) -> None:
    run_id, documents = prepare(url, args.tokens)
    port = free_port()
    server = serve(url, directory / f"data-{label}", port)
    base = f"http://127.0.0.1:{port}"
    try:
        baseline_rps, baseline_p50 = one_client(base, run_id, documents)
        print(f"{label} one client: {baseline_rps:.1f} req/s, p50 {baseline_p50:.1f} ms", flush=True)
        for mode, pace in (("paced", PACE_S), ("closed-loop", 0.0)):
            result = swarm(base, run_id, documents, args.users, args.seconds, pace, directory)
            rss = server_peak_rss_mb(server.pid)
            print(f"{label} {args.users} users {mode}: {result['rps']:.1f} req/s, p50 {result['p50']:.0f} ms, "
                  f"p99 {result['p99']:.0f} ms (summary p99 {result['summary_p99']:.0f} ms), "
                  f"{result['errors']} errors of {result['requests']}, server RSS {rss:.0f} MiB", flush=True)
            if args.record:
                record(bench="load", device=cpu_name(), n_tokens=args.tokens,
                       model=f"{args.users} users {mode}, {label}, document tokens ({TARGET_TOKENS:,}-token documents): "
                             f"p50 {result['p50']:.0f} ms, p99 {result['p99']:.0f} ms, {result['errors']} errors",
                       tokens_per_s=result["rps"] * TARGET_TOKENS, baselines={"one_client": baseline_rps * TARGET_TOKENS},
                       peak_mem_mb=rss)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--pg", help="also on a scratch database of this PostgreSQL server")
    parser.add_argument("--record", action="store_true", help="append the results to bench/results.jsonl")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("locust") is None:
        raise SystemExit("bench.load needs locust: pip install -e '.[bench]'")
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        measure(f"sqlite:///{directory / 'load.db'}", "sqlite", args, directory)
        if args.pg:
            with scratch_postgres(args.pg, "load") as url:
                measure(url, "postgres", args, directory)


if __name__ == "__main__":
    main()
