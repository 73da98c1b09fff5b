"""Training: validate and enqueue `train` jobs, group them into experiments, and compare the results.

No torch here (the API imports this). The worker side is workers/training/; the request format and
the loss specs are app/training_specs.py, shared by both.
"""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.corpus import Corpus, Document
from app.models.job import Job
from app.models.run import Run, RunSummary
from app.models.training import Experiment, TrainingMetric
from app.services import queue, runs
from app.services.corpora import get_corpus
from app.services.errors import Conflict, InvalidInput, NotFound
from app.training_specs import PRESETS, SERIES_NAME, TrainingRequest, parse_loss_spec, train_directory
from app.vocab import CANCELLED, DONE, FAILED, KIND_TRAIN, LIVE_STATUSES

# An experiment trains one model per loss; more than this is a sweep, better split up.
MAX_EXPERIMENT_LOSSES = 16
# Leaves room for "-<loss spec>" within the 150 characters of a series name.
MAX_EXPERIMENT_NAME = 80
# Frequency buckets (app.analytics.summary: 10 buckets of ~equal token mass, rarest types first)
# that count as "rare" and as "frequent" tokens: the rarest 30% of the text vs the most common 30%.
RARE_BUCKETS = 3
FREQUENT_BUCKETS = 3
# A token is "easy" when the model gives it at least this probability (the DESIGN's default threshold).
EASY_P = 0.5
DEFAULT_CURVE_POINTS = 500
MAX_CURVE_POINTS = 10_000


def list_presets() -> list[dict]:
    return [asdict(preset) for preset in PRESETS.values()]


# --- enqueue --------------------------------------------------------------------------------------

def validate_request(request: TrainingRequest) -> TrainingRequest:
    """The request with defaults filled in; InvalidInput listing every problem otherwise."""
    try:
        return request.validated()
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def enqueue_training(*, session: Session, request: TrainingRequest, settings: Settings) -> Job:
    """Validate, create the series (with its training config as meta) and enqueue the `train` job,
    whose progress counts steps. The caller commits."""
    request = validate_request(request)
    _check_inputs(session=session, request=request)
    series = _check_series_free(session=session, name=request.series, settings=settings)
    if series is None:
        series = ModelSeries(name=request.series)
        session.add(series)
    job = queue.enqueue(session=session, kind=KIND_TRAIN, payload=request.to_payload(), progress_total=request.steps)
    corpus_name = session.scalar(select(Corpus.name).where(Corpus.id == request.corpus_id))
    series.description = f"{request.preset} · {request.loss} · {request.steps} steps on {corpus_name}"
    series.experiment_id = request.experiment_id
    series.meta = {"kind": "training", "training": request.to_payload(), "job_id": job.id}
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
        job = _series_job(session=session, series=series)
        if job is not None and job.status in LIVE_STATUSES:
            raise Conflict(f"series {name!r} is being trained already (job {job.id})")
    directory = train_directory(settings.data_dir, name)
    if directory.is_dir() and any(directory.iterdir()):
        raise Conflict(f"{directory} holds files of an earlier training run; delete it or pick another series name")
    return series


def _series_job(*, session: Session, series: ModelSeries) -> Job | None:
    job_id = (series.meta or {}).get("job_id")
    return session.get(Job, job_id) if isinstance(job_id, int) else None


def experiment_series_name(experiment: str, loss: str) -> str:
    """`<experiment>-<loss spec made file-safe>`, e.g. "shake-focal-schedule-0-to-2"."""
    return f"{experiment}-{parse_loss_spec(loss).slug}"


def create_experiment(
    *, session: Session, settings: Settings, name: str, corpus_id: int, eval_corpus_id: int | None,
    losses: list[str], preset: str = "tiny", steps: int = 300, save_every: int = 50, seed: int = 0,
    tokenizer: str = "bpe", vocab_size: int | None = None, lr: float | None = None,
    batch_size: int | None = None, seq_len: int | None = None,
) -> Experiment:
    """One `train` job per loss, same everything else (seed included, so the runs differ by the loss
    alone), each in series `<name>-<loss>`. Validates all of them before enqueuing any."""
    name = (name or "").strip()
    if not SERIES_NAME.match(name) or len(name) > MAX_EXPERIMENT_NAME:
        raise InvalidInput(
            f"experiment name {name!r}: use 1–{MAX_EXPERIMENT_NAME} letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (it prefixes the series names)"
        )
    if session.scalar(select(Experiment.id).where(Experiment.name == name)) is not None:
        raise Conflict(f"an experiment named {name!r} exists already")
    if not losses:
        raise InvalidInput("an experiment needs at least one loss (e.g. ce, focal:2)")
    if len(losses) > MAX_EXPERIMENT_LOSSES:
        raise InvalidInput(f"{len(losses)} losses; an experiment compares at most {MAX_EXPERIMENT_LOSSES}")
    canonical: list[str] = []
    for text in losses:
        try:
            spec = parse_loss_spec(text).text
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        if spec in canonical:
            raise InvalidInput(f"loss {spec} is listed twice")
        canonical.append(spec)
    base = TrainingRequest(
        corpus_id=corpus_id, eval_corpus_id=eval_corpus_id, series="placeholder", preset=preset, steps=steps,
        save_every=save_every, seed=seed, tokenizer=tokenizer, vocab_size=vocab_size, lr=lr,
        batch_size=batch_size, seq_len=seq_len,
    )
    requests = [validate_request(replace(base, loss=loss, series=experiment_series_name(name, loss)))
                for loss in canonical]
    _check_inputs(session=session, request=requests[0])
    for request in requests:  # every series name free before anything is created
        _check_series_free(session=session, name=request.series, settings=settings)
    experiment = Experiment(name=name, train_corpus_id=corpus_id, eval_corpus_id=eval_corpus_id, config={})
    session.add(experiment)
    session.flush()
    jobs = [enqueue_training(session=session, request=replace(r, experiment_id=experiment.id), settings=settings)
            for r in requests]
    settings_used = requests[0].to_payload()
    for key in ("series", "loss", "corpus_id", "eval_corpus_id", "experiment_id"):
        settings_used.pop(key)
    experiment.config = {
        **settings_used, "losses": canonical, "series": [r.series for r in requests], "job_ids": [j.id for j in jobs],
    }
    session.flush()
    return experiment


# --- read -----------------------------------------------------------------------------------------

def get_experiment(*, session: Session, experiment_id: int) -> Experiment:
    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} not found")
    return experiment


def find_experiment(*, session: Session, ref: str) -> Experiment:
    """By id or by name (the CLI accepts either)."""
    experiment = session.get(Experiment, int(ref)) if ref.isdigit() else None
    experiment = experiment or session.scalar(select(Experiment).where(Experiment.name == ref))
    if experiment is None:
        raise NotFound(f"no experiment {ref!r}")
    return experiment


def list_experiments(*, session: Session, offset: int, limit: int) -> tuple[list[Experiment], int]:
    items = session.scalars(select(Experiment).order_by(Experiment.id.desc()).offset(offset).limit(limit)).all()
    return list(items), session.scalar(select(func.count(Experiment.id))) or 0


def experiment_status(*, session: Session, experiment_ids: list[int]) -> dict[int, dict]:
    """Per experiment, what its list row shows: train jobs by status, steps done of total, and
    checkpoints saved / scored / whose scoring failed — in a fixed number of queries."""
    status: dict[int, dict] = {
        i: {"jobs": {}, "steps_done": 0, "steps_total": 0, "checkpoints": 0, "scored": 0, "scoring_failed": 0}
        for i in experiment_ids
    }
    series_of = dict(session.execute(
        select(ModelSeries.id, ModelSeries.experiment_id).where(ModelSeries.experiment_id.in_(experiment_ids))
    ).all())
    experiments = {e.id: e for e in session.scalars(select(Experiment).where(Experiment.id.in_(experiment_ids)))}
    experiment_of_job = {job_id: e.id for e in experiments.values() for job_id in e.config.get("job_ids", [])}
    for job in session.scalars(select(Job).where(Job.id.in_(list(experiment_of_job)))):
        entry = status[experiment_of_job[job.id]]
        entry["jobs"][job.status] = entry["jobs"].get(job.status, 0) + 1
        entry["steps_done"] += job.progress_total if job.status == "done" else job.progress_done
        entry["steps_total"] += job.progress_total
    checkpoint_rows = session.execute(
        select(Checkpoint.id, Checkpoint.series_id).where(Checkpoint.series_id.in_(list(series_of)))
    ).all()
    experiment_of_checkpoint = {cid: series_of[sid] for cid, sid in checkpoint_rows}
    for checkpoint_id, experiment_id in experiment_of_checkpoint.items():
        status[experiment_id]["checkpoints"] += 1
    eval_runs = session.execute(
        select(Run.id, Run.checkpoint_id, Run.corpus_id).where(Run.checkpoint_id.in_(list(experiment_of_checkpoint)))
    ).all()
    run_ids = [r.id for r in eval_runs if r.corpus_id == experiments[experiment_of_checkpoint[r.checkpoint_id]].eval_corpus_id]
    states = runs.run_progress(session=session, run_ids=run_ids)
    for run in eval_runs:
        if run.id in states:
            entry = status[experiment_of_checkpoint[run.checkpoint_id]]
            entry["scored"] += states[run.id].status == DONE
            entry["scoring_failed"] += states[run.id].status in (FAILED, CANCELLED)
    return status


def training_curve(*, session: Session, series_id: int, max_points: int = DEFAULT_CURVE_POINTS) -> dict:
    """A series' training loss curve, at most `max_points` points (evenly strided, the last one kept)."""
    if not 1 <= max_points <= MAX_CURVE_POINTS:
        raise InvalidInput(f"max_points must be between 1 and {MAX_CURVE_POINTS}")
    if session.get(ModelSeries, series_id) is None:
        raise NotFound(f"series {series_id} not found")
    total = session.scalar(select(func.count(TrainingMetric.id)).where(TrainingMetric.series_id == series_id)) or 0
    columns = ("step", "tokens_seen", "loss", "ce_loss", "lr", "tokens_per_s")
    curve: dict = {"series_id": series_id, "total_points": total, **{c: [] for c in columns}}
    if not total:
        return curve
    # Every stride-th row plus the last: ≤ ceil(total / stride) + 1 ≤ max_points rows.
    stride = total if max_points == 1 else max(1, math.ceil(total / (max_points - 1)))
    number = func.row_number().over(order_by=TrainingMetric.step).label("n")
    rows = select(*(getattr(TrainingMetric, c) for c in columns), number).where(
        TrainingMetric.series_id == series_id).subquery()
    picked = select(*(rows.c[c] for c in columns)).where(
        or_((rows.c.n - 1) % stride == 0, rows.c.n == total) if max_points > 1 else rows.c.n == total
    ).order_by(rows.c.step)
    for row in session.execute(picked):
        for c in columns:
            curve[c].append(getattr(row, c))
    return curve


def experiment_comparison(*, session: Session, experiment_id: int, max_points: int = DEFAULT_CURVE_POINTS) -> dict:
    """Per series (one per loss) and checkpoint step: held-out loss, perplexity, ECE, Brier, top-1
    accuracy, loss on rare vs frequent tokens, share of easy tokens (p ≥ 0.5) — from the summaries of
    the checkpoints' scoring runs on the experiment's eval corpus — plus the training loss curves."""
    experiment = get_experiment(session=session, experiment_id=experiment_id)
    series_rows = session.scalars(
        select(ModelSeries).where(ModelSeries.experiment_id == experiment.id).order_by(ModelSeries.id)).all()
    result = {
        "experiment": {
            "id": experiment.id, "name": experiment.name, "train_corpus_id": experiment.train_corpus_id,
            "eval_corpus_id": experiment.eval_corpus_id, "config": experiment.config,
            "created_at": experiment.created_at.isoformat() + "Z" if experiment.created_at else None,
        },
        "series": [],
    }
    for series in series_rows:
        checkpoints = session.scalars(
            select(Checkpoint).where(Checkpoint.series_id == series.id).order_by(Checkpoint.step)).all()
        summaries = _eval_summaries(session=session, checkpoint_ids=[c.id for c in checkpoints],
                                    corpus_id=experiment.eval_corpus_id)
        points = [_checkpoint_point(c, *summaries.get(c.id, (None, None))) for c in checkpoints]
        run_states = runs.run_progress(session=session, run_ids=[p["run_id"] for p in points if p["run_id"]])
        for point in points:
            point["run_status"] = run_states[point["run_id"]].status if point["run_id"] else None
        scored = [p for p in points if p["mean_loss"] is not None]
        job = _series_job(session=session, series=series)
        training = (series.meta or {}).get("training", {})
        result["series"].append({
            "series_id": series.id, "name": series.name, "loss": training.get("loss"), "meta": series.meta,
            "job": None if job is None else {
                "id": job.id, "status": job.status, "progress_done": job.progress_done,
                "progress_total": job.progress_total, "tokens_per_s": job.tokens_per_s, "detail": job.detail,
                "error": job.error.strip().splitlines()[0][:500] if job.error and job.error.strip() else None,
            },
            "checkpoints": points,
            "final": scored[-1] if scored else None,
            "curve": training_curve(session=session, series_id=series.id, max_points=max_points),
        })
    return result


def _eval_summaries(*, session: Session, checkpoint_ids: list[int], corpus_id: int | None) -> dict[int, tuple]:
    """checkpoint id -> (run id, summary or None): the first run of each checkpoint on the eval
    corpus, preferring one whose summary is ready."""
    if corpus_id is None or not checkpoint_ids:
        return {}
    rows = session.execute(
        select(Run.checkpoint_id, Run.id, RunSummary)
        .outerjoin(RunSummary, RunSummary.run_id == Run.id)
        .where(Run.checkpoint_id.in_(checkpoint_ids), Run.corpus_id == corpus_id)
        .order_by(Run.id)
    ).all()
    found: dict[int, tuple] = {}
    for checkpoint_id, run_id, summary in rows:
        if checkpoint_id not in found or (found[checkpoint_id][1] is None and summary is not None):
            found[checkpoint_id] = (run_id, summary)
    return found


def _checkpoint_point(checkpoint: Checkpoint, run_id: int | None, summary: RunSummary | None) -> dict:
    meta = checkpoint.meta or {}
    point = {
        "checkpoint_id": checkpoint.id, "step": checkpoint.step, "tokens_seen": checkpoint.tokens_seen,
        "train_loss": meta.get("train_loss"), "train_ce": meta.get("train_ce"), "run_id": run_id,
        "scored": summary is not None, "n_tokens": None, "mean_loss": None, "perplexity": None, "ece": None,
        "brier": None, "top1_accuracy": None, "rare_loss": None, "frequent_loss": None, "easy_share": None,
    }
    if summary is None:
        return point
    stats = summary.stats or {}
    buckets = (stats.get("vocabulary") or {}).get("frequency_buckets") or []
    point.update(
        n_tokens=summary.n_tokens, mean_loss=summary.mean_loss, perplexity=summary.perplexity, ece=summary.ece,
        brier=summary.brier, top1_accuracy=summary.top1_accuracy,
        rare_loss=bucket_loss(buckets[:RARE_BUCKETS]), frequent_loss=bucket_loss(buckets[-FREQUENT_BUCKETS:]),
        easy_share=easy_share(stats.get("p_histogram")),
    )
    return point


def bucket_loss(buckets: list[dict]) -> float | None:
    """Token-weighted mean loss over frequency buckets (empty buckets carry no weight)."""
    tokens = sum(b["tokens"] for b in buckets if b.get("mean_loss") is not None)
    if not tokens:
        return None
    return sum(b["mean_loss"] * b["tokens"] for b in buckets if b.get("mean_loss") is not None) / tokens


def easy_share(histogram: dict | None, threshold: float = EASY_P) -> float | None:
    """Share of tokens with p ≥ threshold, from a p histogram whose edges include the threshold."""
    if not histogram or not histogram.get("counts"):
        return None
    counts, edges = histogram["counts"], histogram["edges"]
    total = sum(counts)
    if not total:
        return None
    return sum(c for c, lo in zip(counts, edges[:-1]) if lo >= threshold - 1e-9) / total
