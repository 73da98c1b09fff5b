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
from app.training_specs import RHO1, TOKENIZER_BPE, parse_loss_spec, train_directory
from app.vocab import KIND_TRAIN, LIVE_STATUSES

# Columns of an experiment row rather than entries of its config.
EXPERIMENT_COLUMNS = {"name", "corpus_id", "eval_corpus_id"}


def enqueue_training(*, session: Session, request: TrainingRequest, settings: Settings) -> Job:
    """Create the series (with its training config as meta) and enqueue the `train` job, whose
    progress counts steps. The caller commits."""
    _check_inputs(session=session, request=request)
    request = with_resolved_reference(session=session, request=request)
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
    for training in requests:  # every series name free and every reference usable before anything is created
        _check_series_free(session=session, name=training.series, settings=settings)
        with_resolved_reference(session=session, request=training)
    experiment = Experiment(name=request.name, train_corpus_id=request.corpus_id,
                            eval_corpus_id=request.eval_corpus_id, config=request.model_dump(exclude=EXPERIMENT_COLUMNS))
    session.add(experiment)
    session.flush()
    for training in requests:
        enqueue_training(session=session, request=training.model_copy(update={"experiment_id": experiment.id}),
                         settings=settings)
    return experiment


def find_reference(*, session: Session, reference: str) -> Checkpoint:
    """A rho1 REFERENCE: a checkpoint id, SERIES@STEP, or SERIES (its latest checkpoint)."""
    if reference.isdigit():
        found = session.get(Checkpoint, int(reference))
    else:
        name, _, step = reference.partition("@")
        query = select(Checkpoint).join(ModelSeries, Checkpoint.series_id == ModelSeries.id).where(
            ModelSeries.name == name)
        query = query.where(Checkpoint.step == int(step)) if step else query.order_by(Checkpoint.step.desc())
        found = session.scalars(query.limit(1)).first()
    if found is None:
        raise InvalidInput(f"rho1 reference {reference!r}: no such checkpoint (give a checkpoint id, a series name "
                           "or SERIES@STEP of a trained model)")
    return found


def with_resolved_reference(*, session: Session, request: TrainingRequest) -> TrainingRequest:
    """A rho1 request with its reference pinned to SERIES@STEP, after checking that the reference was
    trained with the same tokenizer (same kind; for BPE the same corpus and vocabulary size, which
    train the same vocabulary). The worker compares the two vocabularies token by token as well."""
    spec = parse_loss_spec(request.loss)
    if spec.kind != RHO1:
        return request
    checkpoint = find_reference(session=session, reference=spec.reference or "")
    series = session.get(ModelSeries, checkpoint.series_id)
    trained = (series.meta or {}).get("training") or {}
    where = f"rho1 reference {spec.reference!r} ({series.name}@{checkpoint.step})"
    if not trained:
        raise InvalidInput(f"{where} was not trained by focalscope: its tokenizer cannot be matched to this run's")
    mine = (request.tokenizer, request.corpus_id if request.tokenizer == TOKENIZER_BPE else None, request.vocab_size)
    theirs = (trained.get("tokenizer"), trained.get("corpus_id") if trained.get("tokenizer") == TOKENIZER_BPE else None,
              trained.get("vocab_size"))
    if mine != theirs:
        raise InvalidInput(f"{where} has a different tokenizer: {_tokenizer_text(*theirs)}, this run "
                           f"{_tokenizer_text(*mine)}; train the reference with the same tokenizer")
    return request.model_copy(update={"loss": f"rho1:{spec.ratio:g}:{series.name}@{checkpoint.step}"})


def _tokenizer_text(kind, corpus_id, vocab_size) -> str:
    return f"{kind} ({vocab_size} tokens{f', trained on corpus {corpus_id}' if corpus_id else ''})"
