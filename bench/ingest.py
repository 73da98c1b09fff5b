"""`ingest`: how fast a shard's packed per-token arrays reach the database, end to end.

`python -m bench.ingest [--tokens N]`: random arrays of realistic shapes (lognormal document
lengths, top-5), written shard by shard exactly as a worker does — `scores.store_scores` (validate,
pack, INSERT) plus commit — into a fresh SQLite file and a fresh PostgreSQL database
($FOCALSCOPE_TEST_PG, default the local test server). Baseline `orm_add`: the same rows through
`session.add` of ORM objects (the obvious way to write them).
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import text

import app.models  # noqa: F401  (registers every table)
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.corpus import Corpus, Document
from app.models.run import Run, TokenScores
from app.services import scores
from app.services.scores import DocumentScores
from bench.common import cpu_name, peak_rss_mb, record
from bench.scratch_db import scratch_postgres

TOP_K = 5
# A worker's shard (settings.shard_chars = 24k characters) holds ≈ 6k tokens; a GPU worker commits
# pooled shards of this size one transaction each.
SHARD_TOKENS = 32_768


def random_documents(n_tokens: int, seed: int = 0) -> list[DocumentScores]:
    generator = np.random.default_rng(seed)
    documents, total = [], 0
    while total < n_tokens:
        n = int(np.clip(generator.lognormal(6.0, 1.0), 16, 2048))
        logprob = -generator.exponential(3.0, n).astype(np.float32)
        arrays = {
            "token_id": generator.integers(0, 49152, n, dtype=np.int32),
            "char_start": np.arange(n, dtype=np.int32) * 4, "char_end": np.arange(1, n + 1, dtype=np.int32) * 4,
            "logprob": logprob, "entropy": generator.random(n, dtype=np.float32) * 5,
            "rank": generator.integers(0, 1000, n, dtype=np.int32),
            "top_ids": generator.integers(0, 49152, (n, TOP_K), dtype=np.int32),
            "top_logprobs": -np.sort(generator.exponential(2.0, (n, TOP_K)).astype(np.float32), axis=1),
            "sum_p2": generator.random(n, dtype=np.float32), "context_len": np.arange(1, n + 1, dtype=np.int32),
        }
        documents.append(DocumentScores(document_id=len(documents), top_k=TOP_K, arrays=arrays))
        total += n
    return documents


def prepare(url: str, n_documents: int) -> tuple:
    """Tables (the migrated schema, as deployed), one run and n_documents documents (ids 1..n)."""
    migrate.upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        series = ModelSeries(name="bench")
        corpus = Corpus(name=f"bench-{secrets.token_hex(3)}")
        session.add_all([series, corpus])
        session.flush()
        checkpoint = Checkpoint(series_id=series.id, format="safetensors", path="/bench", weights_sha256="0" * 64,
                                tokenizer_fingerprint="0" * 64)
        session.add(checkpoint)
        session.flush()
        run = Run(checkpoint_id=checkpoint.id, corpus_id=corpus.id, options={}, options_key="{}")
        session.add(run)
        session.add_all(Document(corpus_id=corpus.id, position=i, text="x", n_chars=1) for i in range(n_documents))
        session.commit()
        ids = [d for (d,) in session.execute(text("SELECT id FROM documents ORDER BY position"))]
        return engine, sessions, run.id, ids


def shards(documents: list[DocumentScores]):
    batch, size = [], 0
    for doc in documents:
        batch.append(doc)
        size += doc.n_tokens
        if size >= SHARD_TOKENS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def store_all(sessions, run_id: int, documents: list[DocumentScores]) -> float:
    started = time.perf_counter()
    for shard in shards(documents):
        with sessions() as session:
            scores.store_scores(session=session, run_id=run_id, documents=shard)
            session.commit()
    return time.perf_counter() - started


def orm_add_all(sessions, run_id: int, documents: list[DocumentScores]) -> float:
    started = time.perf_counter()
    for shard in shards(documents):
        with sessions() as session:
            for row in scores.score_rows(run_id, shard):
                session.add(TokenScores(**row))
            session.commit()
    return time.perf_counter() - started


def measure(url: str, label: str, n_tokens: int) -> None:
    documents = random_documents(n_tokens)
    engine, sessions, run_id, ids = prepare(url, 2 * len(documents))
    tokens = sum(d.n_tokens for d in documents)
    try:
        # Warm-up on the second half of the documents, then the measurement on the first half.
        warm = [DocumentScores(ids[len(documents) + i], d.top_k, d.arrays) for i, d in enumerate(documents[:200])]
        store_all(sessions, run_id, warm)
        measured = [DocumentScores(ids[i], d.top_k, d.arrays) for i, d in enumerate(documents)]
        elapsed = store_all(sessions, run_id, measured)
        with sessions() as session:
            session.execute(text("DELETE FROM token_scores"))
            session.commit()
        baseline = orm_add_all(sessions, run_id, measured)
        with sessions() as session:
            stored = session.execute(text("SELECT count(*), sum(n_tokens) FROM token_scores")).one()
        assert tuple(stored) == (len(documents), tokens), stored
    finally:
        engine.dispose()
    record(bench="ingest", device=cpu_name(), model=label, n_tokens=tokens, tokens_per_s=tokens / elapsed,
           baselines={"orm_add": tokens / baseline}, peak_mem_mb=peak_rss_mb())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=4_000_000)
    parser.add_argument("--pg", default=os.environ.get("FOCALSCOPE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        measure(f"sqlite:///{Path(tmp) / 'ingest.db'}", "sqlite", args.tokens)
    if not args.skip_pg:
        with scratch_postgres(args.pg, "fs_ingest") as url:
            measure(url, "postgres", args.tokens)


if __name__ == "__main__":
    main()
