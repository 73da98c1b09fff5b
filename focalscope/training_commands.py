"""`focalscope train` and `focalscope experiment`: train models with CE or focal-family losses.

Their options are made from the request models' fields (app.schemas.training, by
focalscope.model_options), so the command line offers what the API accepts, with the same checks.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime

from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from app.core.config import Settings
from app.db.engine import writing_session
from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.job import Job
from app.models.run import Run
from app.schemas.training import ExperimentCreate, TrainingJobCreate, TrainingRequest, request_problems
from app.services import corpora, experiments as experiment_views, runs, training
from app.services.errors import InvalidInput
from app.vocab import DONE, TERMINAL_STATUSES
from focalscope import console
from focalscope.model_options import add_model_options, model_values

# Fields of ExperimentCreate whose option is written here: on the command line the name has a default.
EXPERIMENT_CLI_OWN = ("name",)


def add_train_options(parser: argparse.ArgumentParser) -> None:
    add_model_options(parser, TrainingJobCreate)
    _add_run_options(parser)


def add_experiment_options(parser: argparse.ArgumentParser) -> None:
    add_model_options(parser, ExperimentCreate, skip=EXPERIMENT_CLI_OWN)
    parser.add_argument("--name", help="experiment name (default exp-DATE-TIME); prefixes the series names")
    _add_run_options(parser)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true", help="follow progress until done (a worker must be running)")
    parser.add_argument("--here", action="store_true", help="train (and score) in this process")
    parser.add_argument("--device", default="auto", help="with --here: cpu, cuda, cuda:N or auto")


def _request(model: type[BaseModel], args: argparse.Namespace, session, **given) -> BaseModel:
    """The request the options describe, checked by the model (its messages, as the API gives them)."""
    resolvers = {"corpus": lambda ref: corpora.find_corpus(session=session, ref=ref).id}
    values = model_values(args, model, resolvers, skip=tuple(given)) | given
    try:
        return model(**values)
    except ValidationError as exc:
        raise InvalidInput(request_problems(exc)) from None


def train(args: argparse.Namespace, settings: Settings, sessions) -> int:
    with writing_session(sessions) as session:
        request = _request(TrainingRequest, args, session, experiment_id=None)
        job = training.enqueue_training(session=session, request=request, settings=settings)
        session.commit()
        job_ids = [job.id]
    print(f"training job {job_ids[0]} enqueued: series {request.series!r}, loss {request.loss}, {request.preset}, "
          f"{request.steps} steps")
    return _follow(args, settings, sessions, job_ids)


def experiment(args: argparse.Namespace, settings: Settings, sessions) -> int:
    name = args.name or f"exp-{datetime.now():%Y%m%d-%H%M%S}"
    with writing_session(sessions) as session:
        request = _request(ExperimentCreate, args, session, name=name)
        created = training.create_experiment(session=session, settings=settings, request=request)
        session.commit()
        (view,) = experiment_views.describe_experiments(session=session, experiments=[created])
    print(f"experiment {view.name!r}: {len(view.job_ids)} training jobs ({', '.join(request.losses)}); "
          f"compare at /#/experiments/{view.id} or `focalscope experiments {view.name}`")
    return _follow(args, settings, sessions, view.job_ids)


def experiments(args: argparse.Namespace, settings: Settings, sessions) -> int:
    with sessions() as session:
        if args.ref is None:
            items, _ = experiment_views.list_experiments(session=session, offset=0, limit=200)
            print(console.table(("id", "name", "losses", "preset", "steps", "created"),
                                [(e.id, e.name, ", ".join(e.config.get("losses", [])), e.config.get("preset"),
                                  e.config.get("steps"), f"{e.created_at:%Y-%m-%d %H:%M}") for e in items]))
            return 0
        found = experiment_views.find_experiment(session=session, ref=args.ref)
        comparison = experiment_views.experiment_comparison(session=session, experiment_id=found.id, max_points=2)
    rows = []
    for series in comparison.series:
        status = series.job.status if series.job else ""
        for point in series.checkpoints:
            rows.append((series.loss, point.step, _f(point.train_ce), _f(point.mean_loss), _f(point.perplexity, 1),
                         _f(point.ece), _f(point.rare_loss), _f(point.frequent_loss), _f(point.easy_share), status))
    print(console.table(("loss", "step", "train CE", "held-out loss", "ppl", "ECE", "rare loss", "frequent loss",
                         "easy share", "job"), rows))
    return 0


def _f(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _follow(args: argparse.Namespace, settings: Settings, sessions, job_ids: list[int]) -> int:
    if not (args.wait or args.here):
        return 0
    if args.here:
        with console.worker_in_process(settings, args.device):
            ok = follow_training(sessions, job_ids)
    else:
        ok = follow_training(sessions, job_ids)
    return 0 if ok else 1


def follow_training(sessions, job_ids: list[int]) -> bool:
    """Progress bars (step, loss, tokens/s, ETA) until the jobs and their checkpoints' scoring end."""
    from tqdm import tqdm

    bars = {job_id: tqdm(total=0, desc=f"job {job_id}", unit="step", file=sys.stderr, dynamic_ncols=True)
            for job_id in job_ids}
    try:
        while True:
            with sessions() as session:
                jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(job_ids)))}
                pending_runs = _pending_scoring(session, job_ids)
            for job_id, bar in bars.items():
                job = jobs[job_id]
                detail = job.detail or {}
                bar.total, bar.n = job.progress_total, job.progress_done
                parts = [job.status]
                if "loss" in detail:
                    parts.append(f"loss {detail['loss']:.3f}")
                if job.tokens_per_s:
                    parts.append(f"{job.tokens_per_s:,.0f} tok/s")
                if detail.get("eta_s") and job.status not in TERMINAL_STATUSES:
                    parts.append(f"ETA {detail['eta_s']:.0f}s")
                bar.set_postfix_str(", ".join(parts))
                bar.refresh()
            if all(j.status in TERMINAL_STATUSES for j in jobs.values()) and not pending_runs:
                for job in jobs.values():
                    if job.error:
                        print(f"error (job {job.id}): {job.error.strip().splitlines()[0]}", file=sys.stderr)
                return all(j.status == DONE for j in jobs.values())
            time.sleep(console.POLL_SECONDS)
    finally:
        for bar in bars.values():
            bar.close()


def _pending_scoring(session, job_ids: list[int]) -> int:
    """Scoring runs of the jobs' checkpoints that have not finished yet."""
    run_ids = list(session.scalars(
        select(Run.id).join(Checkpoint, Run.checkpoint_id == Checkpoint.id)
        .join(ModelSeries, Checkpoint.series_id == ModelSeries.id).where(ModelSeries.job_id.in_(job_ids))
    ))
    states = runs.run_progress(session=session, run_ids=run_ids)
    return sum(1 for state in states.values() if state.status not in TERMINAL_STATUSES)
