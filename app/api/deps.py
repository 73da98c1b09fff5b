"""Dependencies shared by the routes: settings, a session per request, paging, and one 404-checked
lookup per resource that has an id in a path (`RunDep`, `CorpusDep`, ...), written once here
instead of in every route."""

from __future__ import annotations

from typing import Annotated, Iterator

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.db.base import MAX_INTEGER
from app.db.engine import writing
from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.corpus import Corpus, Document
from app.models.job import Job
from app.models.run import Run
from app.models.training import Experiment
from app.services.series_cache import ResultCache
from app.services import checkpoints, corpora, experiments, jobs, run_documents, runs

# Every list endpoint is bounded: at most this many items per request.
MAX_PAGE = 500
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """A session for the request; a request that may write takes SQLite's write lock at its first
    statement (see app.db.engine.writing), so concurrent writes wait for each other instead of failing."""
    bind = request.app.state.engine
    if request.method not in READ_METHODS:
        bind = writing(bind)
    with request.app.state.sessions(bind=bind) as session:
        yield session


def result_cache(request: Request) -> ResultCache:
    """The application's cache of statistics that stream a corpus (series, comparisons)."""
    return request.app.state.series_results


SettingsDep = Annotated[Settings, Depends(get_settings)]
CacheDep = Annotated[ResultCache, Depends(result_cache)]
SessionDep = Annotated[Session, Depends(get_session)]

# An id in a path or a query: a number beyond any id is a 422, not a database error.
PathId = Annotated[int, Path(ge=1, le=MAX_INTEGER, examples=[1])]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_INTEGER, examples=[1])]


class Paging:
    def __init__(
        self,
        offset: Annotated[int, Query(ge=0, le=MAX_INTEGER, description="Items to skip.")] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items to return.")] = 100,
    ):
        self.offset = offset
        self.limit = limit


PagingDep = Annotated[Paging, Depends()]


def valid_run(session: SessionDep, run_id: PathId) -> Run:
    return runs.get_run(session=session, run_id=run_id)


def valid_corpus(session: SessionDep, corpus_id: PathId) -> Corpus:
    return corpora.get_corpus(session=session, corpus_id=corpus_id)


def valid_document(session: SessionDep, document_id: PathId) -> Document:
    return corpora.get_document(session=session, document_id=document_id)


def valid_checkpoint(session: SessionDep, checkpoint_id: PathId) -> Checkpoint:
    return checkpoints.get_checkpoint(session=session, checkpoint_id=checkpoint_id)


def valid_series(session: SessionDep, series_id: PathId) -> ModelSeries:
    return checkpoints.get_series(session=session, series_id=series_id)


def valid_job(session: SessionDep, job_id: PathId) -> Job:
    return jobs.get_job(session=session, job_id=job_id)


def valid_experiment(session: SessionDep, experiment_id: PathId) -> Experiment:
    return experiments.get_experiment(session=session, experiment_id=experiment_id)


RunDep = Annotated[Run, Depends(valid_run)]
CorpusDep = Annotated[Corpus, Depends(valid_corpus)]
DocumentDep = Annotated[Document, Depends(valid_document)]
CheckpointDep = Annotated[Checkpoint, Depends(valid_checkpoint)]
SeriesDep = Annotated[ModelSeries, Depends(valid_series)]
JobDep = Annotated[Job, Depends(valid_job)]
ExperimentDep = Annotated[Experiment, Depends(valid_experiment)]


def valid_run_document(run: RunDep, session: SessionDep, document_id: PathId) -> Document:
    """A document of the run's corpus (404 for an unknown id and for another corpus' document)."""
    return run_documents.get_run_document(session=session, run=run, document_id=document_id)


RunDocumentDep = Annotated[Document, Depends(valid_run_document)]
