"""The runs that make up a series on a corpus, and whether the statistics across checkpoints may use them.

A series' checkpoints scored on one corpus give one run per checkpoint and set of scoring options.
They are *aligned* when they share the options and the tokenizer fingerprint: then token i of a
document should be the same token in every run, which the statistics still verify from the stored
token ids, document by document (series_stream). Statistics also need every run done (a running run's
documents are still being written) and at least two checkpoints.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.analytics.trajectories import MIN_STEPS
from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.corpus import Corpus
from app.models.run import Run
from app.schemas.run import RunOptions
from app.services.errors import Conflict, DomainError, InvalidInput
from app.services.runs import run_progress
from app.vocab import DONE


@dataclass(frozen=True)
class SeriesRun:
    step: int
    checkpoint_id: int
    run_id: int
    status: str
    options_key: str
    tokenizer_fingerprint: str
    created_at: datetime


@dataclass(frozen=True)
class AlignedRuns:
    """Done runs of a series on a corpus, one per checkpoint, ascending by step, same options and tokenizer."""

    series_id: int
    corpus_id: int
    runs: tuple[SeriesRun, ...]

    @property
    def steps(self) -> np.ndarray:
        return np.array([r.step for r in self.runs], dtype=np.int64)

    @property
    def run_ids(self) -> list[int]:
        return [r.run_id for r in self.runs]

    def key(self) -> tuple:
        """What the stored scores depend on: the runs. Their creation times are part of it because
        SQLite gives a new row the id of a deleted last one."""
        return tuple((r.run_id, r.created_at.isoformat()) for r in self.runs)

    def at_steps(self, steps: list[int]) -> AlignedRuns:
        """The runs of these steps (each must be a checkpoint of the series), in ascending step order."""
        known = {r.step: r for r in self.runs}
        unknown = [s for s in steps if s not in known]
        if unknown:
            raise InvalidInput(f"step {unknown[0]} is not a scored checkpoint of this series "
                               f"(steps: {', '.join(str(s) for s in known)})")
        return AlignedRuns(self.series_id, self.corpus_id, tuple(known[s] for s in sorted(set(steps))))


@dataclass(frozen=True)
class SeriesOnCorpus:
    """Every run of a series' checkpoints on a corpus (with the chosen options, when given)."""

    series: ModelSeries
    corpus: Corpus
    runs: list[SeriesRun]

    def problem(self) -> DomainError | None:
        """Why the runs cannot serve statistics across checkpoints, as the error to answer with; None if they can."""
        where = f"series {self.series.name!r} on corpus {self.corpus.name!r}"
        by_options = _grouped(self.runs, "options_key")
        if len(by_options) > 1:
            sets = "; ".join(f"{key} (runs {_ids(runs)})" for key, runs in by_options.items())
            detail = [{"options": json.loads(key), "run_ids": [r.run_id for r in runs]} for key, runs in by_options.items()]
            return InvalidInput(f"the runs of {where} were scored with different options: {sets}; choose one set "
                                f"with the `options` parameter", detail={"options": detail})
        by_tokenizer = _grouped(self.runs, "tokenizer_fingerprint")
        if len(by_tokenizer) > 1:
            sets = "; ".join(f"{fingerprint[:12]}… (runs {_ids(runs)})" for fingerprint, runs in by_tokenizer.items())
            return InvalidInput(f"the checkpoints of {where} use different tokenizers, so their tokens cannot be "
                                f"compared one by one: {sets}", detail={"run_ids": [r.run_id for r in self.runs]})
        if len(self.runs) < MIN_STEPS:
            return InvalidInput(f"{where} has {len(self.runs)} scored checkpoint(s); statistics across "
                                f"checkpoints need at least {MIN_STEPS}: score more of its checkpoints on this corpus")
        unfinished = [r for r in self.runs if r.status != DONE]
        if unfinished:
            listed = ", ".join(f"run {r.run_id} (step {r.step}) is {r.status}" for r in unfinished)
            return Conflict(f"not every run of {where} is done: {listed}; wait for it, or retry a failed one",
                            detail={"run_ids": [r.run_id for r in unfinished]})
        return None

    def aligned(self) -> AlignedRuns:
        problem = self.problem()
        if problem is not None:
            raise problem
        return AlignedRuns(self.series.id, self.corpus.id, tuple(self.runs))


def series_on_corpus(*, session: Session, series: ModelSeries, corpus: Corpus,
                     options: RunOptions | None = None) -> SeriesOnCorpus:
    query = (
        select(Checkpoint.step, Checkpoint.id, Checkpoint.tokenizer_fingerprint, Run.id, Run.options_key, Run.created_at)
        .join(Run, Run.checkpoint_id == Checkpoint.id)
        .where(Checkpoint.series_id == series.id, Run.corpus_id == corpus.id)
        .order_by(Checkpoint.step, Run.id)
    )
    if options is not None:
        query = query.where(Run.options_key == options.key())
    rows = session.execute(query).all()
    progress = run_progress(session=session, run_ids=[row[3] for row in rows])
    runs = [SeriesRun(step=step, checkpoint_id=checkpoint_id, run_id=run_id, status=progress[run_id].status,
                      options_key=options_key, tokenizer_fingerprint=fingerprint, created_at=created_at)
            for step, checkpoint_id, fingerprint, run_id, options_key, created_at in rows]
    return SeriesOnCorpus(series=series, corpus=corpus, runs=runs)


def aligned_runs(*, session: Session, series: ModelSeries, corpus: Corpus,
                 options: RunOptions | None = None) -> AlignedRuns:
    """The runs the statistics across checkpoints read; 422 or 409 naming the runs when there are none such."""
    return series_on_corpus(session=session, series=series, corpus=corpus, options=options).aligned()


def _grouped(runs: list[SeriesRun], attribute: str) -> dict[str, list[SeriesRun]]:
    groups: dict[str, list[SeriesRun]] = defaultdict(list)
    for run in runs:
        groups[getattr(run, attribute)].append(run)
    return dict(groups)


def _ids(runs: list[SeriesRun]) -> str:
    return ", ".join(str(r.run_id) for r in runs)
