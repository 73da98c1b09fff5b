"""Corpora: parse uploaded .txt / .jsonl files into documents, store and list them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.db.base import MAX_INTEGER
from app.models.corpus import Corpus, Document
from app.services.errors import Conflict, InvalidInput, NotFound, TooLarge, get_or_404

SUPPORTED_SUFFIXES = (".txt", ".jsonl")
READ_CHUNK = 1 << 20
# A line longer than this is no prose and no JSON line we want (a book as one JSON line is ~5 MB);
# the tokenizer and the page would choke on it. The API takes FOCALSCOPE_MAX_LINE_MB.
MAX_LINE_BYTES = 16 * 1024 * 1024


@dataclass
class DocumentIn:
    text: str
    source: str
    title: str = ""
    meta: dict = field(default_factory=dict)


def parse_file(filename: str, data: bytes, *, max_line_bytes: int = MAX_LINE_BYTES) -> list[DocumentIn]:
    """A .txt file is one document; a .jsonl file is one document per non-blank line, each an object
    with a string "text" (and optional "title" and "meta"). Binary data (NUL bytes), invalid UTF-8
    and overlong lines are refused naming the file and line."""
    name = PurePath(filename or "").name or "upload"
    suffix = PurePath(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InvalidInput(f"{name}: unsupported file type {suffix or '(none)'}; upload .txt or .jsonl files")
    if not data.strip():
        raise InvalidInput(f"{name}: the file is empty")
    _check_lines(name, data, max_line_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidInput(f"{name}, line {line}: not valid UTF-8 text (bad byte at offset {exc.start}); "
                           f"re-encode it as UTF-8") from None
    text = text.removeprefix("\ufeff")
    if suffix == ".txt":
        return [DocumentIn(text=text, source=name, title=PurePath(name).stem)]
    return _parse_jsonl(name, text)


def _check_lines(name: str, data: bytes, max_line_bytes: int) -> None:
    if (nul := data.find(b"\0")) >= 0:
        # PostgreSQL cannot store it in text, and no text file holds one.
        line = data.count(b"\n", 0, nul) + 1
        raise InvalidInput(f"{name}, line {line}: a NUL byte (binary data?); upload text files")
    for number, line in enumerate(data.split(b"\n"), start=1):
        if len(line) > max_line_bytes:
            raise InvalidInput(f"{name}, line {number}: longer than {max_line_bytes} bytes; split it into documents "
                               f"or lines")


def read_uploads(uploads: Iterable[tuple[str, BinaryIO]], *, settings: Settings) -> list[DocumentIn]:
    """The documents of uploaded (filename, stream) files, refusing them as soon as all files
    together exceed FOCALSCOPE_MAX_UPLOAD_MB, or when they hold more documents than a corpus may."""
    limit = settings.max_upload_bytes
    documents: list[DocumentIn] = []
    received = 0
    for filename, stream in uploads:
        data = bytearray()
        while chunk := stream.read(READ_CHUNK):
            received += len(chunk)
            if received > limit:
                raise TooLarge(f"upload exceeds the {settings.max_upload_mb:g} MB limit")
            data.extend(chunk)
        documents.extend(parse_file(filename, bytes(data), max_line_bytes=settings.max_line_bytes))
    if len(documents) > settings.max_documents_per_corpus:
        raise InvalidInput(f"{len(documents)} documents; at most {settings.max_documents_per_corpus} per corpus")
    return documents


def _parse_jsonl(name: str, text: str) -> list[DocumentIn]:
    documents = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{name}, line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise InvalidInput(f'{name}, line {number}: expected an object with a string "text" field')
        if "\\u0000" in line:
            raise InvalidInput(f"{name}, line {number}: a NUL character (\\u0000); text cannot hold one")
        meta = record.get("meta", {})
        if not isinstance(meta, dict):
            raise InvalidInput(f'{name}, line {number}: "meta" must be an object')
        title = record.get("title")
        documents.append(DocumentIn(
            text=record["text"], source=f"{name}:{number}",
            title=str(title) if title is not None else f"{PurePath(name).stem} #{number}", meta=meta,
        ))
    if not documents:
        raise InvalidInput(f"{name}: no JSON lines found")
    return documents


def create_corpus(*, session: Session, name: str, documents: list[DocumentIn], description: str = "") -> Corpus:
    name = name.strip()
    if not name:
        raise InvalidInput("a corpus needs a name")
    if not documents:
        raise InvalidInput("a corpus needs at least one document")
    if session.scalar(select(Corpus.id).where(Corpus.name == name)) is not None:
        raise Conflict(f"a corpus named {name!r} exists already")
    corpus = Corpus(name=name, description=description, n_documents=len(documents),
                    n_chars=sum(len(d.text) for d in documents))
    session.add(corpus)
    session.flush()
    session.add_all(
        Document(corpus_id=corpus.id, position=i, source=d.source[:500], title=d.title[:500], text=d.text,
                 n_chars=len(d.text), meta=d.meta)
        for i, d in enumerate(documents)
    )
    session.flush()
    return corpus


def get_corpus(*, session: Session, corpus_id: int) -> Corpus:
    return get_or_404(Corpus, corpus_id, session=session, thing="corpus")


def find_corpus(*, session: Session, ref: str) -> Corpus:
    """A corpus by id or by name (the CLI accepts either)."""
    corpus = session.get(Corpus, int(ref)) if ref.isdigit() and int(ref) <= MAX_INTEGER else None
    corpus = corpus or session.scalar(select(Corpus).where(Corpus.name == ref))
    if corpus is None:
        raise NotFound(f"no corpus {ref!r}")
    return corpus


def list_corpora(*, session: Session, offset: int, limit: int) -> tuple[list[Corpus], int]:
    total = session.scalar(select(func.count(Corpus.id))) or 0
    items = session.scalars(select(Corpus).order_by(Corpus.id.desc()).offset(offset).limit(limit)).all()
    return list(items), total


def list_documents(*, session: Session, corpus: Corpus, offset: int, limit: int) -> tuple[list[Document], int]:
    total = session.scalar(select(func.count(Document.id)).where(Document.corpus_id == corpus.id)) or 0
    items = session.scalars(
        select(Document).where(Document.corpus_id == corpus.id).order_by(Document.position).offset(offset).limit(limit)
    ).all()
    return list(items), total


def get_document(*, session: Session, document_id: int) -> Document:
    return get_or_404(Document, document_id, session=session, thing="document")
