"""A series as a whole: its checkpoints, the corpora they were scored on and the steps still missing on
each, and scoring every checkpoint of it on a corpus in one request.

Reads are bounded like the rest of the API: at most MAX_CHECKPOINTS checkpoints (the cap a training
request has, app.training_specs) and MAX_SERIES_CORPORA corpora, most recently scored first.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.base import MAX_INTEGER
from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.corpus import Corpus
from app.models.run import Run
from app.schemas.run import RunOptions
from app.schemas.series import SeriesCheckpointRef, SeriesCorpus, SeriesCorpusRun, SeriesDetail
from app.services.errors import InvalidInput, NotFound
from app.services.runs import create_run, run_progress
from app.training_specs import MAX_CHECKPOINTS

# A series' overview lists this many corpora at most: one row each on the Series page.
MAX_SERIES_CORPORA = 100


def find_series(*, session: Session, ref: str) -> ModelSeries:
    """By name, or by id when no series has that name (the CLI accepts either)."""
    series = session.scalar(select(ModelSeries).where(ModelSeries.name == ref))
    if series is None and ref.isdigit() and int(ref) <= MAX_INTEGER:
        series = session.get(ModelSeries, int(ref))
    if series is None:
        raise NotFound(f"no series {ref!r}")
    return series


def series_checkpoints(*, session: Session, series: ModelSeries) -> list[Checkpoint]:
    """The series' checkpoints ascending by step, at most MAX_CHECKPOINTS (the first ones)."""
    return list(session.scalars(
        select(Checkpoint).where(Checkpoint.series_id == series.id).order_by(Checkpoint.step).limit(MAX_CHECKPOINTS)
    ))


def series_detail(*, session: Session, series: ModelSeries) -> SeriesDetail:
    checkpoints = series_checkpoints(session=session, series=series)
    n_checkpoints = session.scalar(select(func.count(Checkpoint.id)).where(Checkpoint.series_id == series.id)) or 0
    of_series = select(Run.corpus_id).join(Checkpoint, Run.checkpoint_id == Checkpoint.id).where(
        Checkpoint.series_id == series.id)
    n_corpora = session.scalar(select(func.count()).select_from(of_series.distinct().subquery())) or 0
    corpus_ids = list(session.scalars(
        of_series.add_columns(func.max(Run.id).label("newest")).group_by(Run.corpus_id)
        .order_by(func.max(Run.id).desc()).limit(MAX_SERIES_CORPORA)
    ))
    return SeriesDetail(
        id=series.id, name=series.name, description=series.description, experiment_id=series.experiment_id,
        job_id=series.job_id, n_checkpoints=n_checkpoints, n_corpora=n_corpora,
        checkpoints=[SeriesCheckpointRef(id=c.id, step=c.step, tokens_seen=c.tokens_seen, created_at=c.created_at)
                     for c in checkpoints],
        corpora=_corpora(session, series, checkpoints, corpus_ids),
    )


def _corpora(session: Session, series: ModelSeries, checkpoints: list[Checkpoint],
             corpus_ids: list[int]) -> list[SeriesCorpus]:
    """Per corpus, the newest run of each listed checkpoint, with its status, and the steps with none."""
    newest = (
        select(func.max(Run.id)).join(Checkpoint, Run.checkpoint_id == Checkpoint.id)
        .where(Checkpoint.series_id == series.id, Run.corpus_id.in_(corpus_ids))
        .group_by(Run.checkpoint_id, Run.corpus_id)
    )
    rows = session.execute(
        select(Run.id, Run.checkpoint_id, Run.corpus_id, Run.options).where(Run.id.in_(newest))
    ).all()
    by_corpus: dict[int, dict[int, tuple[int, dict]]] = defaultdict(dict)
    for run_id, checkpoint_id, corpus_id, options in rows:
        by_corpus[corpus_id][checkpoint_id] = (run_id, options)
    corpora = {c.id: c for c in session.scalars(select(Corpus).where(Corpus.id.in_(corpus_ids)))}
    result = []
    listed = {c.id for c in checkpoints}
    for corpus_id in corpus_ids:
        runs = {checkpoint_id: run for checkpoint_id, run in by_corpus[corpus_id].items() if checkpoint_id in listed}
        # One status query per corpus keeps each IN list within a thousand run ids.
        progress = run_progress(session=session, run_ids=[run_id for run_id, _ in runs.values()])
        corpus = corpora[corpus_id]
        result.append(SeriesCorpus(
            corpus_id=corpus.id, corpus_name=corpus.name, n_documents=corpus.n_documents,
            runs=[SeriesCorpusRun(step=c.step, checkpoint_id=c.id, run_id=runs[c.id][0],
                                  status=progress[runs[c.id][0]].status,
                                  options=RunOptions.model_validate(runs[c.id][1]))
                  for c in checkpoints if c.id in runs],
            missing_steps=[c.step for c in checkpoints if c.id not in runs],
        ))
    return result


def score_series(
    *, session: Session, series: ModelSeries, corpus: Corpus, options: RunOptions, shard_chars: int, priority: int = 0,
) -> tuple[list[int], list[int]]:
    """A run with these options on the corpus for every checkpoint of the series (the first
    MAX_CHECKPOINTS): returns the ids of the runs created and of those that existed, by step."""
    checkpoints = series_checkpoints(session=session, series=series)
    if not checkpoints:
        raise InvalidInput(f"series {series.name!r} has no checkpoints to score; register some first")
    created, existing = [], []
    for checkpoint in checkpoints:
        run, is_new = create_run(session=session, checkpoint_id=checkpoint.id, corpus_id=corpus.id, options=options,
                                 shard_chars=shard_chars, priority=priority)
        (created if is_new else existing).append(run.id)
    return created, existing
