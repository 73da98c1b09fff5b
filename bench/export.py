"""`export`: how fast a run leaves as Parquet or CSV (`focalscope export`), and in how much memory.

`python -m bench.export [--tokens 10000000] [--postgres]`: random per-token arrays of realistic
shapes (bench.ingest.random_documents: lognormal document lengths, top-5) written straight to the
store for documents whose text covers every token's span, then `export.export_chunks` into a file,
as the CLI does. One line per format and database; peak RSS is the process's (the store is written
shard by shard, so the arrays never sit in memory all at once).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.corpus import Corpus, Document
from app.models.run import Run
from app.services import export, scores
from app.services.scores import DocumentScores
from bench.common import cpu_name, peak_rss_mb, record
from bench.ingest import TOP_K, random_documents
from bench.scratch_db import scratch_postgres

SHARD_TOKENS = 262_144
CHARS_PER_TOKEN = 4  # random_documents' spans: token i covers characters [4i, 4i + 4)
VOCABULARY = 8192


def fill(url: str, n_tokens: int) -> int:
    """A run of n_tokens random tokens over documents whose texts match the spans; its id."""
    migrate.upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        series, corpus = ModelSeries(name="bench"), Corpus(name="bench")
        session.add_all([series, corpus])
        session.flush()
        checkpoint = Checkpoint(series_id=series.id, format="safetensors", path="/bench", weights_sha256="0" * 64,
                                tokenizer_fingerprint="0" * 64)
        session.add(checkpoint)
        session.flush()
        run = Run(checkpoint_id=checkpoint.id, corpus_id=corpus.id, options={"top_k": TOP_K}, options_key="{}")
        session.add(run)
        session.commit()
        run_id, corpus_id = run.id, corpus.id
    # Each token id has its own 4-character text, as a tokenizer's vocabulary gives: a document's
    # text is its tokens' texts end to end, so the spans cover it and texts repeat as in real runs.
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz ", dtype="S1")
    vocabulary = np.random.default_rng(1).choice(letters, (VOCABULARY, CHARS_PER_TOKEN)).view(f"S{CHARS_PER_TOKEN}")[:, 0]
    stored = position = seed = 0
    while stored < n_tokens:
        shard = random_documents(min(SHARD_TOKENS, n_tokens - stored), seed=seed)
        seed += 1
        with sessions() as session:
            rows = [{"corpus_id": corpus_id, "position": position + i, "source": "bench", "title": "",
                     "text": vocabulary[d.arrays["token_id"] % VOCABULARY].tobytes().decode(),
                     "n_chars": d.n_tokens * CHARS_PER_TOKEN, "meta": {}} for i, d in enumerate(shard)]
            ids = session.scalars(insert(Document).returning(Document.id, sort_by_parameter_order=True), rows).all()
            scores.store_scores(session=session, run_id=run_id, documents=[
                DocumentScores(document_id, d.top_k, d.arrays) for document_id, d in zip(ids, shard)])
            session.commit()
        position += len(shard)
        stored += sum(d.n_tokens for d in shard)
    engine.dispose()
    return run_id


def measure(url: str, label: str, n_tokens: int, directory: Path, formats: tuple[str, ...]) -> None:
    run_id = fill(url, n_tokens)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    for fmt in formats:
        path = directory / f"run.{fmt}"
        totals = export.ExportTotals()
        started, cpu_started = time.perf_counter(), time.process_time()
        with sessions() as session, path.open("wb") as out:
            run = session.get(Run, run_id)
            for chunk in export.export_chunks(session=session, run=run, fmt=fmt, gamma=2.0, totals=totals):
                out.write(chunk)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        size_mb = path.stat().st_size / 2**20
        # CPU seconds beside wall seconds: on a shared machine the wall time says more about the load.
        record(bench="export", device=cpu_name(),
               model=f"{fmt} from {label}: {totals.documents:,} documents, {elapsed:.1f} s wall, {cpu:.1f} s CPU, "
                     f"load {os.getloadavg()[0]:.1f}, {size_mb:,.0f} MiB file",
               n_tokens=totals.tokens, tokens_per_s=totals.tokens / elapsed, baselines={}, peak_mem_mb=peak_rss_mb())
        path.unlink()
    engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=10_000_000)
    parser.add_argument("--postgres", action="store_true", help="also export from a scratch PostgreSQL database")
    parser.add_argument("--formats", default=",".join(export.EXPORT_FORMATS), help="comma-separated (default: all)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        formats = tuple(args.formats.split(","))
        measure(f"sqlite:///{Path(tmp) / 'bench.db'}", "SQLite", args.tokens, Path(tmp), formats)
        if args.postgres:
            server = os.environ.get("FOCALSCOPE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
            with scratch_postgres(server, "bench_export") as url:
                measure(url, "PostgreSQL", args.tokens, Path(tmp), formats)


if __name__ == "__main__":
    main()
