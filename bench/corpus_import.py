"""`corpus_import`: how fast a large corpus file becomes a corpus, and in how much memory.

`python -m bench.corpus_import [--documents 1000000] [--postgres]`: writes a synthetic corpus
(documents of 40–120 random words, ≈ 420 characters) as .parquet and as .jsonl.gz, in chunks, then
imports each the way `focalscope corpus add` does — `corpus_files.read_documents` streamed into
`corpora.create_corpus`, one transaction — into a fresh SQLite file (and PostgreSQL with
--postgres). Each import runs in its own process, so its peak RSS is its own. One line per format
and database; the rate is documents per second (in the `tokens_per_s` column).
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.services import corpora, corpus_files
from bench.common import cpu_name, peak_rss_mb, record
from bench.scratch_db import scratch_postgres

WORDS = np.array("the of and to in a is that for it as was with be by on not he this are or his from at which".split()
                 + [f"w{i}" for i in range(2000)])
CHUNK = 50_000  # documents generated (and one Parquet row group) at a time


def synthetic_texts(n: int, seed: int = 0):
    generator = np.random.default_rng(seed)
    for start in range(0, n, CHUNK):
        count = min(CHUNK, n - start)
        lengths = generator.integers(40, 121, count)
        words = WORDS[generator.integers(0, len(WORDS), int(lengths.sum()))]
        cuts = np.cumsum(lengths)[:-1]
        yield [" ".join(doc) for doc in np.split(words, cuts)]


def write_files(directory: Path, n: int) -> dict[str, Path]:
    parquet_path, gz_path = directory / "corpus.parquet", directory / "corpus.jsonl.gz"
    schema = pa.schema([("text", pa.string())])
    with pq.ParquetWriter(parquet_path, schema) as parquet, gzip.open(gz_path, "wt", encoding="utf-8", compresslevel=1) as gz:
        for texts in synthetic_texts(n):
            parquet.write_table(pa.table({"text": texts}, schema=schema))
            gz.writelines(json.dumps({"text": t}) + "\n" for t in texts)
    return {"parquet": parquet_path, "jsonl.gz": gz_path}


def import_file(url: str, path: str, queue) -> None:
    """In a child process: import one file; report (documents, characters, seconds, peak RSS MiB)."""
    migrate.upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    started = time.perf_counter()
    with sessions() as session, open(path, "rb") as stream:
        corpus = corpora.create_corpus(session=session, name=Path(path).name,
                                       documents=corpus_files.read_documents(Path(path).name, stream))
        session.commit()
    queue.put((corpus.n_documents, corpus.n_chars, time.perf_counter() - started, peak_rss_mb()))


def measure(url: str, path: Path, label: str) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=import_file, args=(url, str(path), results))
    child.start()
    documents, chars, seconds, peak = results.get()
    child.join()
    size_mb = path.stat().st_size / 2**20
    record(bench="corpus_import", device=cpu_name(),
           model=f"{label}: {documents:,} documents, {chars / documents:.0f} chars each, {size_mb:.0f} MiB file; rate = documents/s",
           n_tokens=documents, tokens_per_s=documents / seconds, baselines={}, peak_mem_mb=peak)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--postgres", action="store_true", help="also import into a scratch PostgreSQL database")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="corpus-import-") as tmp:
        files = write_files(Path(tmp), args.documents)
        for fmt, path in files.items():
            measure(f"sqlite:///{Path(tmp) / f'{fmt}.db'}", path, f"{fmt} → SQLite")
            if args.postgres:
                server = os.environ.get("FOCALSCOPE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
                with scratch_postgres(server, "bench_import") as url:
                    measure(url, path, f"{fmt} → PostgreSQL")


if __name__ == "__main__":
    main()
