"""Corpora: create one from a stream of documents (files are read by app.services.corpus_files),
list them and their documents."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.db.base import MAX_INTEGER
from app.models.corpus import Corpus, Document
from app.services.corpus_files import DEFAULT_TEXT_FIELD, DocumentIn, read_bytes
from app.services.errors import Conflict, InvalidInput, NotFound, TooLarge, get_or_404

READ_CHUNK = 1 << 20
# Documents per INSERT, and characters: memory stays bounded by one batch however large the corpus
# (a batch of long documents is cut short by its characters).
INSERT_BATCH = 2000
INSERT_BATCH_CHARS = 16_000_000


def read_uploads(
    uploads: Iterable[tuple[str, BinaryIO]], *, settings: Settings, text_field: str = DEFAULT_TEXT_FIELD,
) -> Iterator[DocumentIn]:
    """The documents of uploaded (filename, stream) files, refusing them as soon as all files
    together exceed FOCALSCOPE_MAX_UPLOAD_MB, or when they hold more documents than a corpus may.
    Each file is read within the size limit, then parsed lazily."""
    limit = settings.max_upload_bytes
    received = documents = 0
    for filename, stream in uploads:
        data = bytearray()
        while chunk := stream.read(READ_CHUNK):
            received += len(chunk)
            if received > limit:
                raise TooLarge(f"upload exceeds the {settings.max_upload_mb:g} MB limit")
            data.extend(chunk)
        for document in read_bytes(filename, bytes(data), text_field=text_field, max_line_bytes=settings.max_line_bytes):
            documents += 1
            if documents > settings.max_documents_per_corpus:
                raise InvalidInput(f"more than {settings.max_documents_per_corpus} documents; "
                                   f"at most {settings.max_documents_per_corpus} per corpus")
            yield document


def create_corpus(
    *, session: Session, name: str, documents: Iterable[DocumentIn], description: str = "",
) -> Corpus:
    """A corpus of `documents` (any iterable: a generator streams, INSERT_BATCH rows at a time)."""
    name = name.strip()
    if not name:
        raise InvalidInput("a corpus needs a name")
    if session.scalar(select(Corpus.id).where(Corpus.name == name)) is not None:
        raise Conflict(f"a corpus named {name!r} exists already")
    corpus = Corpus(name=name, description=description, n_documents=0, n_chars=0)
    session.add(corpus)
    session.flush()
    n_documents = n_chars = batch_chars = 0
    batch: list[dict] = []
    for document in documents:
        batch.append({"corpus_id": corpus.id, "position": n_documents, "source": document.source[:500],
                      "title": document.title[:500], "text": document.text, "n_chars": len(document.text),
                      "meta": document.meta})
        n_documents += 1
        n_chars += len(document.text)
        batch_chars += len(document.text)
        if len(batch) >= INSERT_BATCH or batch_chars >= INSERT_BATCH_CHARS:
            session.execute(insert(Document), batch)
            batch, batch_chars = [], 0
    if batch:
        session.execute(insert(Document), batch)
    if not n_documents:
        raise InvalidInput("a corpus needs at least one document")
    session.execute(update(Corpus).where(Corpus.id == corpus.id).values(n_documents=n_documents, n_chars=n_chars))
    session.refresh(corpus)
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
