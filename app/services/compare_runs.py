"""Two runs to compare token by token: both on one corpus, both done. Which alignment each document
gets is decided from its stored tokens (app/analytics/alignment.py), not assumed from the tokenizers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from app.analytics.alignment import Alignment, Tokenization, align
from app.models.run import Run, RunSummary
from app.services.errors import Conflict, InvalidInput
from app.services.runs import get_run, run_progress
from app.vocab import DONE

# What the comparison reads of each run's document.
COMPARE_COLUMNS = ("token_id", "char_start", "char_end", "logprob", "rank")


@dataclass(frozen=True)
class RunPair:
    a: Run
    b: Run

    @property
    def run_ids(self) -> list[int]:
        return [self.a.id] if self.a.id == self.b.id else [self.a.id, self.b.id]

    def key(self) -> tuple:
        """What the stored scores depend on: the runs (creation times too: SQLite reuses a deleted last id)."""
        return tuple((run.id, run.created_at.isoformat()) for run in (self.a, self.b))

    def describe(self, run: Run) -> dict:
        checkpoint = run.checkpoint
        return {"run_id": run.id, "checkpoint_id": checkpoint.id, "series": checkpoint.series.name,
                "step": checkpoint.step, "tokenizer_fingerprint": checkpoint.tokenizer_fingerprint}


def run_pair(*, session: Session, a: int, b: int) -> RunPair:
    """The runs `a` and `b`: 404 for an unknown one, 422 when their corpora differ, 409 until both are done."""
    run_a, run_b = get_run(session=session, run_id=a), get_run(session=session, run_id=b)
    if run_a.corpus_id != run_b.corpus_id:
        raise InvalidInput(
            f"run {a} scored corpus {run_a.corpus.name!r} and run {b} corpus {run_b.corpus.name!r}: a comparison "
            f"needs two runs on the same corpus", detail={"corpus_a": run_a.corpus_id, "corpus_b": run_b.corpus_id})
    progress = run_progress(session=session, run_ids=[a, b])
    unfinished = [(run_id, progress[run_id].status) for run_id in dict.fromkeys([a, b])
                  if progress[run_id].status != DONE]
    if unfinished:
        listed = ", ".join(f"run {run_id} is {status}" for run_id, status in unfinished)
        raise Conflict(f"{listed}; a comparison reads finished runs only: wait for it, or retry a failed one",
                       detail={"run_ids": [run_id for run_id, _ in unfinished]})
    return RunPair(run_a, run_b)


def document_alignment(pair: RunPair, document_id: int, rows: dict[int, dict[str, np.ndarray]]) -> Alignment:
    """The aligned units of one document from both runs' rows ({run id: {column: array}})."""
    missing = [run_id for run_id in pair.run_ids if run_id not in rows]
    if missing:
        raise InvalidInput(f"document {document_id} has no scores from run {missing[0]}, although the run is done; "
                           f"score it again", detail={"document_id": document_id, "run_ids": missing})
    a, b = rows[pair.a.id], rows[pair.b.id]
    return align(tokenization(a), tokenization(b), a["token_id"], b["token_id"])


def tokenization(row: dict[str, np.ndarray]) -> Tokenization:
    return Tokenization(char_start=row["char_start"].astype(np.int64), char_end=row["char_end"].astype(np.int64),
                        logprob=row["logprob"])


def calibration_of(*, session: Session, run: Run) -> dict:
    """The run summary's reliability diagram, ECE and Brier score (a done run has its summary)."""
    summary = session.get(RunSummary, run.id)
    if summary is None:
        raise Conflict(f"run {run.id} has no summary yet; it is computed when every shard is done")
    return {"run_id": run.id, "ece": summary.ece, "brier": summary.brier, "top1_accuracy": summary.top1_accuracy,
            "mean_loss": summary.mean_loss, "reliability": summary.stats.get("calibration")}
