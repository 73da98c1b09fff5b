"""Compute and store a run's summary (the `summarize` job), streaming its token arrays in two passes.

Each pass reads the run a batch of documents at a time (series_stream.run_batches: at most BATCH_SCORES
scores per query), so memory is bounded by one batch and the summary's fixed-size tables, whatever the
run's size; the second pass reads only log p and Σp² (app/analytics/summary.py says what each pass does).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.analytics.summary import SUMMARY_VERSION, RunArrays, SummaryTally
from app.models.run import Run, RunSummary, TokenScores
from app.services.checkpoints import load_vocabulary
from app.services.series_stream import run_batches

FIRST_PASS_COLUMNS = ("token_id", "logprob", "entropy", "rank", "top_logprobs", "sum_p2")
SECOND_PASS_COLUMNS = ("logprob", "sum_p2")


def compute_summary(*, session: Session, run_id: int) -> RunSummary:
    """Compute the run's summary and store it in the caller's transaction (replacing any older one)."""
    return store_summary(session=session, summary=build_summary(session=session, run_id=run_id))


def build_summary(*, session: Session, run_id: int) -> RunSummary:
    """The run's summary, computed by reading only: a new, unsaved row. The summarize job reads in one
    transaction and writes in another, so that the long read holds no SQLite write lock and the write
    can wait for the lock (a transaction that has read cannot wait: it fails "database is locked" when
    another writer, such as the job's own heartbeat, committed meanwhile)."""
    run = session.get(Run, run_id)
    tally = SummaryTally()
    for arrays in _first_pass(session, run_id):
        tally.add(arrays)
    for batch in run_batches(session=session, run_id=run_id, columns=SECOND_PASS_COLUMNS):
        tally.refine(*(_concatenated(batch, name) for name in SECOND_PASS_COLUMNS))
    vocabulary = load_vocabulary(session=session, fingerprint=run.checkpoint.tokenizer_fingerprint) or []
    result = tally.result(dict(enumerate(vocabulary)))
    n_documents = session.scalar(select(func.count()).select_from(TokenScores).where(TokenScores.run_id == run_id))
    return RunSummary(
        run_id=run_id, n_tokens=result["n_tokens"], n_documents=n_documents, mean_loss=result["mean_loss"],
        perplexity=result["perplexity"], ece=result["ece"], brier=result["brier"],
        top1_accuracy=result["top1_accuracy"], stats=result["stats"], version=SUMMARY_VERSION,
    )


def store_summary(*, session: Session, summary: RunSummary) -> RunSummary:
    session.execute(delete(RunSummary).where(RunSummary.run_id == summary.run_id))
    session.add(summary)
    session.flush()
    return summary


def _first_pass(session: Session, run_id: int) -> Iterator[RunArrays]:
    """A RunArrays per batch: the batch's documents' tokens end to end, in document id order."""
    for batch in run_batches(session=session, run_id=run_id, columns=FIRST_PASS_COLUMNS):
        for row in batch.values():  # the top-1 log p is the first of each token's stored top-k
            n = row["logprob"].size
            row["top1_logprob"] = row["top_logprobs"].reshape(n, -1)[:, 0] if n else row["logprob"]
        yield RunArrays(**{name: _concatenated(batch, name) for name in RunArrays.__dataclass_fields__})


def _concatenated(batch: dict[int, dict[str, np.ndarray]], column: str) -> np.ndarray:
    return np.concatenate([row[column] for row in batch.values()])
