"""The experiment read model: experiments with their jobs and status, the per-loss comparison the
experiment page plots, and training loss curves. Reads only; every answer is an output schema of
app.schemas.experiments, built in a bounded number of queries."""

from __future__ import annotations

import math

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.analytics.dynamics import collapse_flags
from app.analytics.experiments import easy_share, rare_and_frequent_loss
from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.job import Job
from app.models.run import Run, RunSummary
from app.models.training import Experiment, TrainingMetric
from app.schemas.experiments import (
    CheckpointPoint, ExperimentComparison, ExperimentInfo, ExperimentOut, ExperimentStatus, SeriesComparison,
    SeriesJob, TrainingCurve,
)
from app.services import runs
from app.services.errors import InvalidInput, NotFound, get_or_404
from app.vocab import CANCELLED, DONE, FAILED

DEFAULT_CURVE_POINTS = 500
MAX_CURVE_POINTS = 10_000
CURVE_COLUMNS = ("step", "tokens_seen", "loss", "ce_loss", "lr", "tokens_per_s")
# Columns of the curve read from a metric row's `extra` JSON.
CURVE_EXTRA = ("grad_norm", "gamma")
# The first line of a failed job's error is enough for a progress row (the Jobs page has the rest).
JOB_ERROR_CHARS = 500


def get_experiment(*, session: Session, experiment_id: int) -> Experiment:
    return get_or_404(Experiment, experiment_id, session=session, thing="experiment")


def find_experiment(*, session: Session, ref: str) -> Experiment:
    """By id or by name (the CLI accepts either)."""
    experiment = session.get(Experiment, int(ref)) if ref.isdigit() else None
    experiment = experiment or session.scalar(select(Experiment).where(Experiment.name == ref))
    if experiment is None:
        raise NotFound(f"no experiment {ref!r}")
    return experiment


def list_experiments(*, session: Session, offset: int, limit: int) -> tuple[list[ExperimentOut], int]:
    """Newest first, with their status."""
    items = session.scalars(select(Experiment).order_by(Experiment.id.desc()).offset(offset).limit(limit)).all()
    return describe_experiments(session=session, experiments=list(items)), session.scalar(
        select(func.count(Experiment.id))) or 0


def describe_experiments(*, session: Session, experiments: list[Experiment]) -> list[ExperimentOut]:
    """Each experiment with what its list row shows: the train job of each series, jobs by status,
    steps done of total, and checkpoints saved / scored / whose scoring failed."""
    ids = [e.id for e in experiments]
    status = {i: ExperimentStatus(jobs={}, steps_done=0, steps_total=0, checkpoints=0, scored=0, scoring_failed=0)
              for i in ids}
    job_ids: dict[int, list[int]] = {i: [] for i in ids}
    series_ids: dict[int, list[int]] = {i: [] for i in ids}
    members = session.execute(
        select(ModelSeries.id, ModelSeries.experiment_id, Job).outerjoin(Job, ModelSeries.job_id == Job.id)
        .where(ModelSeries.experiment_id.in_(ids)).order_by(ModelSeries.id)
    ).all()
    for series_id, experiment_id, job in members:
        series_ids[experiment_id].append(series_id)
        if job is None:
            continue
        entry = status[experiment_id]
        job_ids[experiment_id].append(job.id)
        entry.jobs[job.status] = entry.jobs.get(job.status, 0) + 1
        entry.steps_done += job.progress_total if job.status == DONE else job.progress_done
        entry.steps_total += job.progress_total
    _count_checkpoints(session=session, status=status, experiment_of_series={s: e for s, e, _ in members},
                       eval_corpus_of={e.id: e.eval_corpus_id for e in experiments})
    return [ExperimentOut(**dict(ExperimentInfo.model_validate(e)), job_ids=job_ids[e.id], series_ids=series_ids[e.id],
                          status=status[e.id])
            for e in experiments]


def _count_checkpoints(*, session: Session, status: dict[int, ExperimentStatus], experiment_of_series: dict[int, int],
                       eval_corpus_of: dict[int, int | None]) -> None:
    """Checkpoints saved, scored and failed to score (on the experiment's eval corpus) per experiment."""
    rows = session.execute(
        select(Checkpoint.id, Checkpoint.series_id).where(Checkpoint.series_id.in_(list(experiment_of_series)))
    ).all()
    experiment_of_checkpoint = {checkpoint_id: experiment_of_series[series_id] for checkpoint_id, series_id in rows}
    for experiment_id in experiment_of_checkpoint.values():
        status[experiment_id].checkpoints += 1
    eval_runs = [run for run in session.execute(
        select(Run.id, Run.checkpoint_id, Run.corpus_id).where(Run.checkpoint_id.in_(list(experiment_of_checkpoint)))
    ).all() if run.corpus_id == eval_corpus_of[experiment_of_checkpoint[run.checkpoint_id]]]
    states = runs.run_progress(session=session, run_ids=[run.id for run in eval_runs])
    for run in eval_runs:
        if run.id in states:
            entry = status[experiment_of_checkpoint[run.checkpoint_id]]
            entry.scored += states[run.id].status == DONE
            entry.scoring_failed += states[run.id].status in (FAILED, CANCELLED)


def training_curve(*, session: Session, series_id: int, max_points: int = DEFAULT_CURVE_POINTS) -> TrainingCurve:
    """A series' training loss curve, at most `max_points` points (evenly strided, the last one kept)."""
    if not 1 <= max_points <= MAX_CURVE_POINTS:
        raise InvalidInput(f"max_points must be between 1 and {MAX_CURVE_POINTS}")
    get_or_404(ModelSeries, series_id, session=session, thing="series")
    total = session.scalar(select(func.count(TrainingMetric.id)).where(TrainingMetric.series_id == series_id)) or 0
    columns: dict[str, list] = {c: [] for c in CURVE_COLUMNS + CURVE_EXTRA}
    if total:
        # Every stride-th row plus the last: ≤ ceil(total / stride) + 1 ≤ max_points rows.
        stride = total if max_points == 1 else max(1, math.ceil(total / (max_points - 1)))
        number = func.row_number().over(order_by=TrainingMetric.step).label("n")
        rows = select(*(getattr(TrainingMetric, c) for c in CURVE_COLUMNS), TrainingMetric.extra, number).where(
            TrainingMetric.series_id == series_id).subquery()
        picked = select(*(rows.c[c] for c in CURVE_COLUMNS), rows.c.extra).where(
            or_((rows.c.n - 1) % stride == 0, rows.c.n == total) if max_points > 1 else rows.c.n == total
        ).order_by(rows.c.step)
        for row in session.execute(picked):
            for c in CURVE_COLUMNS:
                columns[c].append(getattr(row, c))
            for c in CURVE_EXTRA:
                columns[c].append((row.extra or {}).get(c))
    return TrainingCurve(series_id=series_id, total_points=total, **columns)


def experiment_comparison(*, session: Session, experiment_id: int,
                          max_points: int = DEFAULT_CURVE_POINTS) -> ExperimentComparison:
    """Per series (one per loss) and checkpoint step: held-out loss, perplexity, ECE, Brier, top-1
    accuracy, loss on rare vs frequent tokens, share of easy tokens (p ≥ 0.5) — from the summaries of
    the checkpoints' scoring runs on the experiment's eval corpus — plus the training loss curves."""
    experiment = get_experiment(session=session, experiment_id=experiment_id)
    members = session.scalars(
        select(ModelSeries).where(ModelSeries.experiment_id == experiment.id).order_by(ModelSeries.id)).all()
    return ExperimentComparison(
        experiment=ExperimentInfo.model_validate(experiment),
        series=[_series_comparison(session=session, series=series, eval_corpus_id=experiment.eval_corpus_id,
                                   max_points=max_points) for series in members],
    )


def _series_comparison(*, session: Session, series: ModelSeries, eval_corpus_id: int | None,
                       max_points: int) -> SeriesComparison:
    checkpoints = session.scalars(
        select(Checkpoint).where(Checkpoint.series_id == series.id).order_by(Checkpoint.step)).all()
    summaries = _eval_summaries(session=session, checkpoint_ids=[c.id for c in checkpoints], corpus_id=eval_corpus_id)
    run_states = runs.run_progress(session=session, run_ids=[run_id for run_id, _ in summaries.values()])
    points = []
    for checkpoint in checkpoints:
        run_id, summary = summaries.get(checkpoint.id, (None, None))
        points.append(_checkpoint_point(checkpoint, run_id, run_states[run_id].status if run_id else None, summary))
    scored = [p for p in points if p.mean_loss is not None]
    job = session.get(Job, series.job_id) if series.job_id is not None else None
    curve = training_curve(session=session, series_id=series.id, max_points=max_points)
    return SeriesComparison(
        series_id=series.id, name=series.name, loss=(series.meta or {}).get("training", {}).get("loss"),
        meta=series.meta, job=None if job is None else _series_job(job), checkpoints=points,
        final=scored[-1] if scored else None, curve=curve,
        samples=(checkpoints[-1].meta or {}).get("samples", []) if checkpoints else [],
        collapse=collapse_flags(
            checkpoint_steps=[p.step for p in points], heldout=[p.heldout.ce if p.heldout else None for p in points],
            curve_steps=curve.step, train_loss=curve.ce_loss, grad_norm=curve.grad_norm),
    )


def _series_job(job: Job) -> SeriesJob:
    error = job.error.strip().splitlines()[0][:JOB_ERROR_CHARS] if job.error and job.error.strip() else None
    return SeriesJob(id=job.id, status=job.status, progress_done=job.progress_done, progress_total=job.progress_total,
                     tokens_per_s=job.tokens_per_s, detail=job.detail, error=error)


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


def _checkpoint_point(checkpoint: Checkpoint, run_id: int | None, run_status: str | None,
                      summary: RunSummary | None) -> CheckpointPoint:
    meta = checkpoint.meta or {}
    scores = {}
    if summary is not None:
        stats = summary.stats or {}
        rare_loss, frequent_loss = rare_and_frequent_loss(stats)
        scores = dict(
            n_tokens=summary.n_tokens, mean_loss=summary.mean_loss, perplexity=summary.perplexity, ece=summary.ece,
            brier=summary.brier, top1_accuracy=summary.top1_accuracy, rare_loss=rare_loss,
            frequent_loss=frequent_loss, easy_share=easy_share(stats.get("p_histogram")),
        )
    return CheckpointPoint(
        checkpoint_id=checkpoint.id, step=checkpoint.step, tokens_seen=checkpoint.tokens_seen,
        train_loss=meta.get("train_loss"), train_ce=meta.get("train_ce"), run_id=run_id, run_status=run_status,
        scored=summary is not None, heldout=meta.get("heldout"), **scores,
    )
