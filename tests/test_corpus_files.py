"""Corpora from .parquet and .jsonl.gz files besides .txt / .jsonl, with the text field chosen, through
the API and the CLI; clear 422s for a missing field and unreadable files; streamed into the
database a batch at a time (constant memory; bench/corpus_import.py measures a million documents)."""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from app.models.corpus import Document
from app.services import corpora, corpus_files
from app.services.errors import InvalidInput
from tests.support.api import API, error_of, upload


def parquet_bytes(table: pa.Table, row_group_size: int | None = None) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_size)
    return sink.getvalue()


def gzip_lines(records: list[dict]) -> bytes:
    return gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode())


PARQUET = parquet_bytes(pa.table({
    "id": [10, 11, 12], "title": ["first", None, "third"],
    "body": ["Fair is foul.", "Café — naïve 🎭", "And foul is fair."],
}))
JSONL_GZ = gzip_lines([{"content": "When shall we three meet again?", "title": "I.1"}, {"content": "In thunder."}])


def test_parquet_and_jsonl_gz_uploads_with_the_text_field_chosen(api):
    response = upload(api, files=[("files", ("plays.parquet", PARQUET, "application/octet-stream"))])
    assert "no \"text\" column (found: id, title, body)" in error_of(response, 422, "invalid_input")
    assert api.get(f"{API}/corpora").json()["total"] == 0

    created = api.post(f"{API}/corpora", data={"name": "plays", "text_field": "body"},
                       files=[("files", ("plays.parquet", PARQUET, "application/octet-stream"))])
    assert created.status_code == 201, created.text
    assert (created.json()["n_documents"], created.json()["n_chars"]) == (3, 13 + 14 + 17)
    documents = api.get(f"{API}/corpora/{created.json()['id']}/documents").json()["items"]
    assert [(d["position"], d["title"], d["source"], d["n_chars"]) for d in documents] == [
        (0, "first", "plays.parquet:1", 13), (1, "plays #2", "plays.parquet:2", 14), (2, "third", "plays.parquet:3", 17)]
    assert api.get(f"{API}/documents/{documents[1]['id']}").json()["text"] == "Café — naïve 🎭"

    gz = api.post(f"{API}/corpora", data={"name": "witches", "text_field": "content"},
                  files=[("files", ("witches.jsonl.gz", JSONL_GZ, "application/gzip"))])
    assert gz.status_code == 201, gz.text
    items = api.get(f"{API}/corpora/{gz.json()['id']}/documents").json()["items"]
    assert [(d["title"], d["source"], d["n_chars"]) for d in items] == [
        ("I.1", "witches.jsonl.gz:1", 31), ("witches #2", "witches.jsonl.gz:2", 11)]


@pytest.mark.parametrize("filename,content,fragment", [
    ("nulls.parquet", parquet_bytes(pa.table({"text": ["ok", None]})), 'row 2: "text" is null'),
    ("numbers.parquet", parquet_bytes(pa.table({"text": [1, 2]})), 'column "text" holds int64, not text'),
    ("empty.parquet", parquet_bytes(pa.table({"text": pa.array([], pa.string())})), "has no rows"),
    ("garbage.parquet", b"PAR1 not really", "not a readable Parquet file"),
    ("cut.jsonl.gz", gzip_lines([{"text": "x" * 500}])[:30], "not a readable gzip file"),
    ("plain.jsonl.gz", b'{"text": "not compressed"}\n', "not a readable gzip file"),
    ("body.jsonl.gz", gzip_lines([{"text": "ok"}, {"body": "no text"}]), 'line 2: expected an object with a string "text" field (found: body)'),
    ("latin1.jsonl.gz", gzip.compress('{"text": "café"}\n'.encode("latin-1")), "line 1: not valid UTF-8"),
], ids=lambda value: value if isinstance(value, str) and value.endswith((".parquet", ".gz")) else "")
def test_unreadable_corpus_files_are_clear_errors(filename, content, fragment):
    """(The API turns InvalidInput into a 422: the missing column above.)"""
    with pytest.raises(InvalidInput) as raised:
        list(corpus_files.read_documents(filename, io.BytesIO(content)))
    assert fragment in raised.value.message and raised.value.message.startswith(filename)


def test_cli_adds_parquet_and_jsonl_gz_files_with_a_text_field(cli, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.parquet").write_bytes(parquet_bytes(pa.table({"body": ["one", "two", "three"]})))
    (folder / "b.jsonl.gz").write_bytes(gzip_lines([{"body": "four"}]))
    (folder / "c.txt").write_text("five")
    out = cli("corpus", "add", str(folder), "--text-field", "body").stdout
    assert out.strip() == "corpus 1 'mixed': 5 documents, 19 characters"
    missing = cli("corpus", "add", str(folder / "a.parquet"), "--name", "other", expect=2).stderr
    assert 'a.parquet: no "text" column (found: body)' in missing


class ReadCounter(io.BytesIO):
    """An in-memory file that counts the bytes handed out."""

    bytes_read = 0

    def read(self, size=-1):
        data = super().read(size)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer):
        count = super().readinto(buffer)
        self.bytes_read += count
        return count


@pytest.mark.parametrize("name", ["big.parquet", "big.jsonl.gz"])
def test_files_are_read_lazily_a_batch_at_a_time(name, monkeypatch):
    """The first document of a 5,000-document file comes after reading a small part of it."""
    # Varied text: a run of one repeated string would compress to almost nothing.
    letters = np.frombuffer(np.random.default_rng(0).integers(97, 123, 5_000 * 200, dtype=np.uint8), "S200")
    texts = [f"{i:06d} {word.decode()}" for i, word in enumerate(letters)]
    data = (parquet_bytes(pa.table({"text": texts}), row_group_size=250) if name.endswith(".parquet")
            else gzip_lines([{"text": t} for t in texts]))
    monkeypatch.setattr(corpus_files, "PARQUET_BATCH_ROWS", 100)  # a batch within the first row group
    stream = ReadCounter(data)
    documents = corpus_files.read_documents(name, stream)
    assert next(documents).text == texts[0]
    assert stream.bytes_read < len(data) / 5, (stream.bytes_read, len(data))
    assert sum(1 for _ in documents) == len(texts) - 1


# What this test checks does not depend on the database (uploads insert on both above).
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_corpus_is_inserted_batch_by_batch_while_its_documents_are_read(sessions, monkeypatch):
    """create_corpus consumes a generator as it inserts: when document k is produced, every document
    up to the last full batch before it is in the database already."""
    monkeypatch.setattr(corpora, "INSERT_BATCH", 40)
    seen_in_database = []

    def documents(session):
        for k in range(3 * corpora.INSERT_BATCH + 5):
            if k % corpora.INSERT_BATCH == 1:
                seen_in_database.append((k, session.scalar(select(func.count(Document.id)))))
            yield corpora.DocumentIn(text=f"document {k}", source=f"{k}")

    with sessions() as session:
        corpus = corpora.create_corpus(session=session, name="stream", documents=documents(session))
        session.commit()
    batch = corpora.INSERT_BATCH
    assert seen_in_database == [(1, 0), (batch + 1, batch), (2 * batch + 1, 2 * batch), (3 * batch + 1, 3 * batch)]
    assert corpus.n_documents == 3 * batch + 5
