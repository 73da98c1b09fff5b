"""A series' token scores read document by document, each document stacked across the runs' steps; and
one run's scores read a batch of documents at a time (run_batches: the run summary, a run's token types).

The statistics across checkpoints sum over documents, so a corpus is streamed: documents are read in
id order, a batch of them per query, and each one is checked for alignment (the runs' stored token ids
must agree) before it is handed on as a SeriesDocument. Memory is bounded by one batch, never by the
series.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.analytics.trajectories import NotAligned, SeriesDocument, check_aligned
from app.models.run import TokenScores
from app.services.errors import InvalidInput
from app.services.series_runs import AlignedRuns

# A batch holds at most this many token scores (tokens × runs), about 12 MiB of token ids, log p and
# ranks, or a single larger document: one query per batch rather than per document keeps corpora of
# short documents fast, and the bound keeps memory flat whatever the corpus's size.
BATCH_SCORES = 1 << 20
# Explicit id lists (IN (...)) are cut to this length, well under SQLite's bound on query parameters.
ID_CHUNK = 500
# What a statistic across checkpoints reads of each run's document.
STATISTIC_COLUMNS = ("token_id", "logprob", "rank")


def series_documents(*, session: Session, aligned: AlignedRuns) -> Iterator[tuple[int, SeriesDocument]]:
    """(document id, its scores at every step of `aligned`), in document id order."""
    for first, last in document_batches(session, aligned.run_ids):
        # The runs are all on one corpus: an id range selects exactly that corpus's documents in it.
        rows = read_scores(session=session, run_ids=aligned.run_ids, columns=STATISTIC_COLUMNS,
                           where=TokenScores.document_id.between(first, last))
        for document_id in sorted(rows):
            yield document_id, stack_document(aligned, document_id, rows[document_id])


def run_batches(*, session: Session, run_id: int, columns: Sequence[str]) -> Iterator[dict[int, dict[str, np.ndarray]]]:
    """One run's scores a batch at a time (at most BATCH_SCORES scores, or one document), each batch
    {document id: {column: array}} in document id order."""
    for first, last in document_batches(session, [run_id]):
        rows = read_scores(session=session, run_ids=[run_id], columns=columns,
                           where=TokenScores.document_id.between(first, last))
        yield {document_id: rows[document_id][run_id] for document_id in sorted(rows)}


def read_scores(*, session: Session, run_ids: Sequence[int], columns: Sequence[str], where=None,
                document_ids: Iterable[int] | None = None) -> dict[int, dict[int, dict[str, np.ndarray]]]:
    """{document id: {run id: {column: array}}} for the runs' rows of the documents chosen by
    `where` (a SQL condition) or by `document_ids`; only the named packed columns are read."""
    selected = [TokenScores.document_id, TokenScores.run_id, *(getattr(TokenScores, name) for name in columns)]
    conditions = [where] if where is not None else []
    if document_ids is not None:
        ids = sorted(set(document_ids))
        conditions = [TokenScores.document_id.in_(ids[i:i + ID_CHUNK]) for i in range(0, len(ids), ID_CHUNK)]
    found: dict[int, dict[int, dict[str, np.ndarray]]] = defaultdict(dict)
    for condition in conditions:
        query = select(*selected).where(TokenScores.run_id.in_(list(run_ids)), condition)
        for document_id, run_id, *arrays in session.execute(query):
            found[document_id][run_id] = dict(zip(columns, arrays))
    return dict(found)


def stack_document(aligned: AlignedRuns, document_id: int, rows: dict[int, dict[str, np.ndarray]]) -> SeriesDocument:
    """One document's rows of every run (STATISTIC_COLUMNS at least), checked for alignment and
    stacked by step; 422 naming the run when a row is missing or the token ids disagree."""
    missing = [r for r in aligned.runs if r.run_id not in rows]
    if missing:
        listed = ", ".join(f"run {r.run_id} (step {r.step})" for r in missing)
        raise InvalidInput(f"document {document_id} has no scores from {listed}, although the run is done; "
                           f"score it again", detail={"document_id": document_id, "run_ids": [r.run_id for r in missing]})
    token_ids = {run_id: rows[run_id]["token_id"] for run_id in aligned.run_ids}
    try:
        check_aligned(token_ids, document_id)
    except NotAligned as exc:
        raise InvalidInput(f"{exc}; runs of one series compare token by token only when they tokenized the "
                           f"document alike", detail={"run_id": exc.run_id, "reference_run_id": exc.reference_run_id,
                                                      "document_id": document_id, "position": exc.position}) from None
    return SeriesDocument(steps=aligned.steps,
                          logprob=np.stack([rows[run_id]["logprob"] for run_id in aligned.run_ids]),
                          rank=np.stack([rows[run_id]["rank"] for run_id in aligned.run_ids]),
                          token_id=token_ids[aligned.run_ids[0]])


def document_batches(session: Session, run_ids: Sequence[int]) -> Iterator[tuple[int, int]]:
    """(first, last) document ids of consecutive batches of at most BATCH_SCORES scores (or one document)."""
    sizes = session.execute(
        select(TokenScores.document_id, func.sum(TokenScores.n_tokens))
        .where(TokenScores.run_id.in_(list(run_ids)))
        .group_by(TokenScores.document_id)
        .order_by(TokenScores.document_id)
    ).all()
    first = previous = None
    scores = 0
    for document_id, size in sizes:
        if first is not None and scores + size > BATCH_SCORES:
            yield first, previous
            first, scores = None, 0
        if first is None:
            first = document_id
        scores += size
        previous = document_id
    if first is not None:
        yield first, previous
