"""A run's tokens as one table, one row per token, for DuckDB, pandas, polars or Spark: Parquet
(typed columns, a row group per batch of whole documents) or CSV, written batch by batch while the
run's rows are read, so memory stays bounded however large the run.

Columns: document_id, position (token index within the document), char_start, char_end (character
offsets into the document text), token_text, every stored field (the top-k ones as top1_id …
topk_id and top1_logprob … topk_logprob), and the derived loss, p, focal_weight and focal_loss for
the γ asked (docs/formulas.md).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.analytics import focal
from app.models.corpus import Document
from app.models.run import Run, TokenScores
from app.schemas.run import DEFAULT_TOP_K
from app.vocab import TOKEN_FIELD_DTYPES, TOKEN_FIELDS, TOP_K_FIELDS

EXPORT_FORMATS = ("parquet", "csv")
CSV_BATCH_ROWS = 8192
MEDIA_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv; charset=utf-8"}
# Tokens per Parquet row group (and per CSV write): whole documents are gathered until a batch holds
# at least this many, so a row group is large enough to scan well and small enough to hold in memory.
BATCH_TOKENS = 131_072
# TokenScores rows fetched per round trip (PostgreSQL streams them through a server-side cursor).
READ_BATCH_ROWS = 64
SCALAR_FIELDS = tuple(name for name in TOKEN_FIELDS if name not in TOP_K_FIELDS and name not in ("char_start", "char_end"))


@dataclass
class ExportTotals:
    documents: int = 0
    tokens: int = 0


def token_text_array(text: str, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """Each token's display text, as app.services.scores.token_texts gives it (a token shows its span
    minus what earlier tokens showed already), built without a Python loop over tokens: the shown
    spans never overlap and come in order, so their UTF-8 bytes are the document's bytes with the
    uncovered ones left out, and the string offsets are their cumulative lengths."""
    n = len(starts)
    ends = np.minimum(ends.astype(np.int64), len(text))
    shown_until = np.concatenate(([0], np.maximum.accumulate(ends)[:-1])) if n else np.zeros(0, np.int64)
    starts = np.minimum(np.maximum(starts.astype(np.int64), shown_until), ends)
    code_points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    widths = 1 + (code_points >= 0x80) + (code_points >= 0x800) + (code_points >= 0x10000)
    byte_at = np.concatenate(([0], np.cumsum(widths, dtype=np.int64)))  # character index -> byte offset
    first, last = byte_at[starts], byte_at[ends]
    size = int(byte_at[-1]) + 1
    covered = np.bincount(first, minlength=size) - np.bincount(last, minlength=size)  # +1 where a span opens, −1 where it ends
    data = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)[np.cumsum(covered)[:-1] > 0]
    offsets = np.concatenate(([0], np.cumsum(last - first))).astype(np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data.tobytes()))


def schema(top_k: int) -> pa.Schema:
    fields = [("document_id", pa.int64()), ("position", pa.int32()), ("char_start", pa.int32()),
              ("char_end", pa.int32()), ("token_text", pa.string())]
    fields += [(name, pa.from_numpy_dtype(np.dtype(TOKEN_FIELD_DTYPES[name]))) for name in SCALAR_FIELDS]
    fields += [(f"top{i}_id", pa.from_numpy_dtype(np.dtype(TOKEN_FIELD_DTYPES["top_ids"]))) for i in range(1, top_k + 1)]
    fields += [(f"top{i}_logprob", pa.from_numpy_dtype(np.dtype(TOKEN_FIELD_DTYPES["top_logprobs"])))
               for i in range(1, top_k + 1)]
    fields += [(name, pa.float32()) for name in ("loss", "p", "focal_weight", "focal_loss")]
    return pa.schema(fields)


def batch_table(rows: list, gamma: float, table_schema: pa.Schema, top_k: int) -> pa.Table:
    """The rows of a batch of documents as one table, built column by column over all of them (a
    per-document table would cost more in Arrow calls than the numbers themselves)."""
    if not rows:
        return table_schema.empty_table()
    counts = np.array([row.n_tokens for row in rows], dtype=np.int64)
    first_token = np.repeat(np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    lengths = np.array([len(row.text) for row in rows], dtype=np.int64)
    # One text for the batch: each document's spans, clipped to its text, shifted to where it starts.
    char_base = np.repeat(np.concatenate(([0], np.cumsum(lengths)[:-1])), counts)
    char_limit = np.repeat(lengths, counts)
    stored = {name: np.concatenate([getattr(row, name) for row in rows]) for name in (*SCALAR_FIELDS, "char_start", "char_end")}
    starts = np.minimum(stored["char_start"], char_limit) + char_base
    ends = np.minimum(stored["char_end"], char_limit) + char_base
    logprob = stored["logprob"].astype(np.float64)
    columns = {
        "document_id": np.repeat(np.array([row.document_id for row in rows], dtype=np.int64), counts),
        "position": (np.arange(len(logprob)) - first_token).astype(np.int32),
        "token_text": token_text_array("".join(row.text for row in rows), starts, ends),
        **stored,
        **{name: values.astype(np.float32) for name, values in (
            ("loss", -logprob), ("p", focal.prob(logprob)), ("focal_weight", focal.focal_weight(logprob, gamma)),
            ("focal_loss", focal.focal_loss(logprob, gamma)))},
    }
    top_ids = np.concatenate([_top_k_columns(row.top_ids, row, top_k, 0) for row in rows])
    top_logprobs = np.concatenate([_top_k_columns(row.top_logprobs, row, top_k, np.nan) for row in rows])
    for i in range(top_k):
        columns[f"top{i + 1}_id"], columns[f"top{i + 1}_logprob"] = top_ids[:, i], top_logprobs[:, i]
    arrays = [value if isinstance(value := columns[f.name], pa.Array) else _arrow(value, f.type) for f in table_schema]
    return pa.Table.from_arrays(arrays, schema=table_schema)


def _top_k_columns(values: np.ndarray, row, top_k: int, pad) -> np.ndarray:
    """A document's top-k field as n × top_k: cut, or padded with `pad`, to the run's top_k."""
    matrix = values.reshape(row.n_tokens, row.top_k)[:, :top_k]
    if row.top_k >= top_k:
        return matrix
    return np.hstack([matrix, np.full((row.n_tokens, top_k - row.top_k), pad, dtype=matrix.dtype)])


def _arrow(values: np.ndarray, kind: pa.DataType) -> pa.Array:
    """A numpy column as an Arrow array over the same bytes (pa.array would import pandas to check
    its input, seconds on the first call, and copy)."""
    values = np.ascontiguousarray(values, dtype=kind.to_pandas_dtype())
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def run_tables(*, session: Session, run: Run, gamma: float, totals: ExportTotals) -> Iterator[pa.Table]:
    """The run's tokens in corpus order, as tables of whole documents of about BATCH_TOKENS tokens."""
    top_k = int(run.options.get("top_k", DEFAULT_TOP_K))
    table_schema = schema(top_k)
    columns = [getattr(TokenScores, name) for name in ("document_id", "n_tokens", "top_k", *TOKEN_FIELDS)]
    rows = session.execute(
        select(*columns, Document.text).join(Document, Document.id == TokenScores.document_id)
        .where(TokenScores.run_id == run.id).order_by(Document.position)
        .execution_options(yield_per=READ_BATCH_ROWS)
    )
    pending, held, written = [], 0, False
    for row in rows:
        totals.documents += 1
        totals.tokens += row.n_tokens
        if row.n_tokens:
            pending.append(row)
            held += row.n_tokens
        if held >= BATCH_TOKENS:
            yield batch_table(pending, gamma, table_schema, top_k)
            pending, held, written = [], 0, True
    if pending or not written:
        yield batch_table(pending, gamma, table_schema, top_k)


class ChunkSink(io.RawIOBase):
    """A write-only stream whose bytes are taken out as they come (`drain`): what a streamed HTTP
    response reads the export from."""

    def __init__(self):
        super().__init__()
        self.chunks: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def drain(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def export_chunks(*, session: Session, run: Run, fmt: str, gamma: float,
                  totals: ExportTotals | None = None) -> Iterator[bytes]:
    """The run's export file, as the bytes written after each batch of documents (a streamed
    response sends them; the CLI appends them to a file). `totals` counts what was exported."""
    totals = totals if totals is not None else ExportTotals()
    tables = run_tables(session=session, run=run, gamma=gamma, totals=totals)
    first = next(tables)
    sink = ChunkSink()
    if fmt == "parquet":
        metadata = {"focalscope.run_id": str(run.id), "focalscope.gamma": repr(gamma)}
        # Dictionary encoding pays for token texts (a vocabulary's worth of values) and costs several
        # times the write time on float columns, which have no repeats to find. Snappy: the fastest
        # codec here (bench/export.py); zstd saves ~20 % of the file for ~2x the write time.
        writer = pq.ParquetWriter(sink, first.schema.with_metadata(metadata), compression="snappy",
                                  use_dictionary=["token_text"])
    else:
        # 8,192 rows per formatting batch: ~8 % faster than the default 1,024 (measured on 1M rows of
        # export-like columns); larger batches fall out of cache and are slower again.
        writer = pacsv.CSVWriter(sink, first.schema, write_options=pacsv.WriteOptions(batch_size=CSV_BATCH_ROWS))
    with writer:
        for table in _chain(first, tables):
            if fmt == "parquet":
                writer.write_table(table, row_group_size=max(table.num_rows, 1))
            else:
                writer.write_table(table)
            yield sink.drain()
    yield sink.drain()  # the Parquet footer


def _chain(first: pa.Table, rest: Iterator[pa.Table]) -> Iterator[pa.Table]:
    yield first
    yield from rest
