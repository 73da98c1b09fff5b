"""A run's view of its corpus: the documents in corpus order with their per-document scores, and
where one document sits among them. Everything is computed in SQL; a corpus may hold 100,000
documents and none of these reads loads more rows than it returns."""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.models.corpus import Document
from app.models.run import Run, TokenScores
from app.schemas.run import RunDocument, RunDocumentNeighbours
from app.services.corpora import get_document
from app.services.errors import NotFound


def get_run_document(*, session: Session, run: Run, document_id: int) -> Document:
    """A document of the run's corpus: NotFound for an unknown id and for another corpus' document."""
    document = get_document(session=session, document_id=document_id)
    if document.corpus_id != run.corpus_id:
        raise NotFound(f"document {document_id} is not in run {run.id}'s corpus")
    return document


def run_documents(*, session: Session, run: Run, offset: int, limit: int) -> tuple[list[RunDocument], int]:
    """The run's corpus documents in corpus order, with per-document scores where they are stored."""
    rows = session.execute(_rows(run, scored_only=False).order_by(Document.position).offset(offset).limit(limit))
    return [_item(row) for row in rows], _count(session, run)


def document_neighbours(*, session: Session, run: Run, document: Document) -> RunDocumentNeighbours:
    """The nearest scored documents before and after `document` in run_documents' order, and its
    1-based position in that order."""
    scored = _rows(run, scored_only=True)
    previous = session.execute(
        scored.where(Document.position < document.position).order_by(Document.position.desc()).limit(1)
    ).first()
    following = session.execute(
        scored.where(Document.position > document.position).order_by(Document.position).limit(1)
    ).first()
    before = session.scalar(
        select(func.count(Document.id)).where(Document.corpus_id == run.corpus_id, Document.position < document.position)
    ) or 0
    return RunDocumentNeighbours(
        previous=_item(previous) if previous else None, next=_item(following) if following else None,
        position=before + 1, total=_count(session, run),
    )


def _count(session: Session, run: Run) -> int:
    return session.scalar(select(func.count(Document.id)).where(Document.corpus_id == run.corpus_id)) or 0


def _rows(run: Run, *, scored_only: bool) -> Select:
    """The run's corpus documents joined with the run's per-document scores (all documents, or only
    the scored ones)."""
    query = select(
        Document.id, Document.position, Document.title, Document.source, Document.n_chars,
        TokenScores.n_tokens, TokenScores.sum_logprob, TokenScores.max_loss,
    )
    on_run = (TokenScores.document_id == Document.id) & (TokenScores.run_id == run.id)
    query = query.join(TokenScores, on_run) if scored_only else query.outerjoin(TokenScores, on_run)
    return query.where(Document.corpus_id == run.corpus_id)


def _item(row) -> RunDocument:
    return RunDocument(
        document_id=row.id, position=row.position, title=row.title, source=row.source, n_chars=row.n_chars,
        scored=row.n_tokens is not None, n_tokens=row.n_tokens,
        mean_loss=(-row.sum_logprob / row.n_tokens) if row.n_tokens else None,
        max_loss=row.max_loss if row.n_tokens else None,
    )
