"""Corpus files as researchers keep them, read as streams of documents: `.txt` (one document),
`.jsonl` and `.jsonl.gz` (one JSON object per line), `.parquet` (one row per document, read in
record batches). The text comes from a chosen field (`text` unless told otherwise); a `title`
field, where present, names the document. Nothing holds more than one batch of documents, so a
million-document file imports in constant memory."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import BinaryIO

from app.services.errors import InvalidInput

SUPPORTED_SUFFIXES = (".txt", ".jsonl", ".jsonl.gz", ".parquet")
DEFAULT_TEXT_FIELD = "text"
# A line longer than this is no prose and no JSON line we want (a book as one JSON line is ~5 MB);
# the tokenizer and the page would choke on it. The API takes FOCALSCOPE_MAX_LINE_MB.
MAX_LINE_BYTES = 16 * 1024 * 1024
# Parquet rows per record batch: a few MB of text for typical documents.
PARQUET_BATCH_ROWS = 1024


@dataclass
class DocumentIn:
    text: str
    source: str
    title: str = ""
    meta: dict = field(default_factory=dict)


def corpus_suffix(name: str) -> str | None:
    """The supported suffix `name` ends with (`.jsonl.gz` before `.gz`), or None."""
    lowered = name.lower()
    return next((suffix for suffix in SUPPORTED_SUFFIXES if lowered.endswith(suffix)), None)


def read_documents(name: str, stream: BinaryIO, *, text_field: str = DEFAULT_TEXT_FIELD,
                   max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[DocumentIn]:
    """The documents of one file, lazily. `stream` is binary; Parquet needs it seekable (a file on
    disk or a spooled upload). Raises InvalidInput naming the file and the line or row at fault:
    binary data (NUL bytes, which PostgreSQL text cannot hold), invalid UTF-8, lines over max_line_bytes."""
    name = PurePath(name or "").name or "upload"
    suffix = corpus_suffix(name)
    if suffix is None:
        raise InvalidInput(f"{name}: unsupported file type; use {', '.join(SUPPORTED_SUFFIXES)} files")
    if suffix == ".txt":
        return _text_file(name, stream, max_line_bytes)
    if suffix == ".parquet":
        return _parquet_rows(name, stream, text_field)
    if suffix == ".jsonl.gz":
        stream = gzip.GzipFile(fileobj=stream, mode="rb")
    return _json_lines(name, stream, text_field, max_line_bytes)


def _decode_error(name: str, exc: UnicodeDecodeError, where: str = "") -> InvalidInput:
    return InvalidInput(f"{name}{where}: not valid UTF-8 text (bad byte at offset {exc.start}); re-encode it as UTF-8")


def _text_file(name: str, stream: BinaryIO, max_line_bytes: int) -> Iterator[DocumentIn]:
    data = stream.read()
    if not data.strip():
        raise InvalidInput(f"{name}: the file is empty")
    if (nul := data.find(b"\0")) >= 0:
        raise _nul_byte(name, data.count(b"\n", 0, nul) + 1)
    for number, line in enumerate(data.split(b"\n"), start=1):
        if len(line) > max_line_bytes:
            raise _long_line(name, number, max_line_bytes)
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _decode_error(name, exc, f", line {line}") from None
    yield DocumentIn(text=text, source=name, title=PurePath(name).stem)


def _nul_byte(name: str, line: int) -> InvalidInput:
    return InvalidInput(f"{name}, line {line}: a NUL byte (binary data?); upload text files")


def _long_line(name: str, line: int, max_line_bytes: int) -> InvalidInput:
    return InvalidInput(f"{name}, line {line}: longer than {max_line_bytes} bytes; split it into documents or lines")


def _json_lines(name: str, stream: BinaryIO, text_field: str, max_line_bytes: int) -> Iterator[DocumentIn]:
    stem = name.removesuffix(".gz").rsplit(".", 1)[0]
    found = False
    number = 0
    try:
        # readline with a limit: an overlong line is refused after max_line_bytes + 1 bytes, not read whole.
        for number, raw in enumerate(iter(lambda: stream.readline(max_line_bytes + 1), b""), start=1):
            if len(raw.rstrip(b"\r\n")) > max_line_bytes:
                raise _long_line(name, number, max_line_bytes)
            if b"\0" in raw:
                raise _nul_byte(name, number)
            line = raw.decode("utf-8")
            if number == 1:
                line = line.removeprefix("\ufeff")
            if not line.strip():
                continue
            found = True
            yield _json_document(name, number, line, text_field, stem)
    except UnicodeDecodeError as exc:
        raise _decode_error(name, exc, f", line {number}") from None
    except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt .gz
        raise InvalidInput(f"{name}: not a readable gzip file ({exc})") from None
    if not found:
        raise InvalidInput(f"{name}: the file is empty (no JSON lines)")


def _json_document(name: str, number: int, line: str, text_field: str, stem: str) -> DocumentIn:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{name}, line {number}: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict) or text_field not in record:
        keys = ", ".join(sorted(record)) if isinstance(record, dict) else type(record).__name__
        raise InvalidInput(f'{name}, line {number}: expected an object with a string "{text_field}" field '
                           f"(found: {keys or 'no fields'}); name the field that holds the text (--text-field, text_field)")
    if not isinstance(record[text_field], str):
        raise InvalidInput(f'{name}, line {number}: expected an object with a string "{text_field}" field, '
                           f"not {type(record[text_field]).__name__}")
    if "\0" in record[text_field]:
        raise InvalidInput(f"{name}, line {number}: a NUL character (\\u0000); text cannot hold one")
    meta = record.get("meta", {})
    if not isinstance(meta, dict):
        raise InvalidInput(f'{name}, line {number}: "meta" must be an object')
    title = record.get("title")
    return DocumentIn(text=record[text_field], source=f"{name}:{number}",
                      title=str(title) if title is not None else f"{stem} #{number}", meta=meta)


def _parquet_rows(name: str, stream: BinaryIO, text_field: str) -> Iterator[DocumentIn]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # pre_buffer=False: read a row group's pages as they are decoded, not every row group up front.
        parquet = pq.ParquetFile(stream, pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(f"{name}: not a readable Parquet file ({exc})") from None
    schema = parquet.schema_arrow
    if text_field not in schema.names:
        raise InvalidInput(f'{name}: no "{text_field}" column (found: {", ".join(schema.names)}); '
                           "name the column that holds the text (--text-field, text_field)")
    if not (pa.types.is_string(schema.field(text_field).type) or pa.types.is_large_string(schema.field(text_field).type)):
        raise InvalidInput(f'{name}: column "{text_field}" holds {schema.field(text_field).type}, not text')
    columns = [text_field] + (["title"] if "title" in schema.names and text_field != "title" else [])
    if parquet.metadata.num_rows == 0:
        raise InvalidInput(f"{name}: the file has no rows")
    row = 0
    stem = name.rsplit(".", 1)[0]
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
        texts = batch.column(0).to_pylist()
        titles = batch.column(1).to_pylist() if len(columns) > 1 else [None] * len(texts)
        for text, title in zip(texts, titles):
            row += 1
            if text is None:
                raise InvalidInput(f'{name}, row {row}: "{text_field}" is null')
            if "\0" in text:
                raise InvalidInput(f"{name}, row {row}: a NUL character; text cannot hold one")
            yield DocumentIn(text=text, source=f"{name}:{row}",
                             title=str(title) if title is not None else f"{stem} #{row}")


def read_bytes(name: str, data: bytes, *, text_field: str = DEFAULT_TEXT_FIELD,
               max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[DocumentIn]:
    """read_documents over bytes in memory (an upload already read within its size limit)."""
    return read_documents(name, io.BytesIO(data), text_field=text_field, max_line_bytes=max_line_bytes)
