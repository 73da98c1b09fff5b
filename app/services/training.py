"""Training: check and enqueue `train` jobs, one at a time or as an experiment (one series per loss).

No torch here (the API imports this). The request is app.schemas.training.TrainingRequest, already
valid when it arrives; what is checked here needs the database or the disk (the corpora exist, the
series name is free). Reading experiments back is app.services.experiments; the worker side is
workers/training/.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.corpus import Corpus, Document
from app.models.job import Job
from app.models.training import Experiment
from app.schemas.training import ExperimentCreate, TrainingRequest
from app.services import queue
from app.services.corpora import get_corpus
from app.services.errors import Conflict, InvalidInput, NotFound
from app.training_specs import parse_loss_spec, train_directory
from app.vocab import KIND_TRAIN, LIVE_STATUSES

# Columns of an experiment row rather than entries of its config.
EXPERIMENT_COLUMNS = {"name", "corpus_id", "eval_corpus_id"}


def enqueue_training(*, session: Session, request: TrainingRequest, settings: Settings) -> Job:
    """Create the series (with its training config as meta) and enqueue the `train` job, whose
    progress counts steps. The caller commits."""
    _check_inputs(session=session, request=request)
    series = _check_series_free(session=session, name=request.series, settings=settings)
    if series is None:
        series = ModelSeries(name=request.series)
        session.add(series)
    job = queue.enqueue(session=session, kind=KIND_TRAIN, payload=request.model_dump(), progress_total=request.steps)
    corpus_name = session.scalar(select(Corpus.name).where(Corpus.id == request.corpus_id))
    series.description = f"{request.preset} · {request.loss} · {request.steps} steps on {corpus_name}"
    series.experiment_id = request.experiment_id
    series.job_id = job.id
    series.meta = {"kind": "training", "training": request.model_dump()}
    session.flush()
    return job


def _check_inputs(*, session: Session, request: TrainingRequest) -> None:
    corpus = get_corpus(session=session, corpus_id=request.corpus_id)
    if session.scalar(select(Document.id).where(Document.corpus_id == corpus.id).limit(1)) is None:
        raise InvalidInput(f"corpus {corpus.name!r} has no documents to train on")
    if request.eval_corpus_id is not None:
        get_corpus(session=session, corpus_id=request.eval_corpus_id)
    if request.experiment_id is not None and session.get(Experiment, request.experiment_id) is None:
        raise NotFound(f"experiment {request.experiment_id} not found")


def _check_series_free(*, session: Session, name: str, settings: Settings) -> ModelSeries | None:
    """Refuse a series name that holds anything; returns the existing empty series row (an earlier
    training that never produced a checkpoint) or None."""
    series = session.scalar(select(ModelSeries).where(ModelSeries.name == name))
    if series is not None:
        if session.scalar(select(func.count(Checkpoint.id)).where(Checkpoint.series_id == series.id)):
            raise Conflict(f"series {name!r} already has checkpoints; train into a new series name")
        job = session.get(Job, series.job_id) if series.job_id is not None else None
        if job is not None and job.status in LIVE_STATUSES:
            raise Conflict(f"series {name!r} is being trained already (job {job.id})")
    directory = train_directory(settings.data_dir, name)
    if directory.is_dir() and any(directory.iterdir()):
        # Named within the data directory: the API shows this to callers who may not see server paths.
        where = directory.relative_to(settings.data_dir)
        raise Conflict(f"{where} in the data directory holds files of an earlier training run; delete it or pick "
                       f"another series name")
    return series


def experiment_series_name(experiment: str, loss: str) -> str:
    """`<experiment>-<loss spec made file-safe>`, e.g. "shake-focal-schedule-0-to-2"."""
    return f"{experiment}-{parse_loss_spec(loss).slug}"


def create_experiment(*, session: Session, settings: Settings, request: ExperimentCreate) -> Experiment:
    """One `train` job per loss, same everything else (seed included, so the runs differ by the loss
    alone), each in series `<name>-<loss>`. Checks all of them before enqueuing any."""
    if session.scalar(select(Experiment.id).where(Experiment.name == request.name)) is not None:
        raise Conflict(f"an experiment named {request.name!r} exists already")
    options = request.model_dump(exclude=EXPERIMENT_COLUMNS | {"losses"})
    requests = [
        TrainingRequest(**options, corpus_id=request.corpus_id, eval_corpus_id=request.eval_corpus_id, loss=loss,
                        series=experiment_series_name(request.name, loss))
        for loss in request.losses
    ]
    _check_inputs(session=session, request=requests[0])
    for training in requests:  # every series name free before anything is created
        _check_series_free(session=session, name=training.series, settings=settings)
    experiment = Experiment(name=request.name, train_corpus_id=request.corpus_id,
                            eval_corpus_id=request.eval_corpus_id, config=request.model_dump(exclude=EXPERIMENT_COLUMNS))
    session.add(experiment)
    session.flush()
    for training in requests:
        enqueue_training(session=session, request=training.model_copy(update={"experiment_id": experiment.id}),
                         settings=settings)
    return experiment
