"""`focalscope train` and `focalscope experiment`: train models with CE or focal-family losses."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import datetime

from sqlalchemy import select

from app.core.config import Settings
from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.job import Job
from app.models.run import Run
from app.services import corpora, runs, training
from app.training_specs import LOSS_FORMS, PRESETS, TrainingRequest
from app.vocab import DONE, TERMINAL_STATUSES
from focalscope import console

LOSS_HELP = "loss spec: " + ", ".join(usage for _, usage in LOSS_FORMS.values())


def add_training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", required=True, help="training corpus (id or name)")
    parser.add_argument("--eval-corpus", help="held-out corpus every checkpoint is scored on (id or name)")
    parser.add_argument("--preset", default="tiny", choices=tuple(PRESETS), help="model size (default tiny)")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps (default 300)")
    parser.add_argument("--save-every", type=int, default=50, help="checkpoint every K steps (default 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokenizer", choices=("bpe", "smollm2"), default="bpe",
                        help="bpe: trained on the corpus (default); smollm2: SmolLM2's 49,152 tokens")
    parser.add_argument("--vocab-size", type=int, help="bpe vocabulary size (default: the preset's)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the preset's)")
    parser.add_argument("--batch-size", type=int, help="sequences per step (default: the preset's)")
    parser.add_argument("--seq-len", type=int, help="tokens per sequence (default: the preset's context)")
    parser.add_argument("--wait", action="store_true", help="follow progress until done (a worker must be running)")
    parser.add_argument("--here", action="store_true", help="train (and score) in this process")
    parser.add_argument("--device", default="auto", help="with --here: cpu, cuda, cuda:N or auto")


def _common(args: argparse.Namespace, session) -> dict:
    corpus = corpora.find_corpus(session=session, ref=args.corpus)
    eval_corpus = corpora.find_corpus(session=session, ref=args.eval_corpus) if args.eval_corpus else None
    return {
        "corpus_id": corpus.id, "eval_corpus_id": eval_corpus.id if eval_corpus else None, "preset": args.preset,
        "steps": args.steps, "save_every": args.save_every, "seed": args.seed, "tokenizer": args.tokenizer,
        "vocab_size": args.vocab_size, "lr": args.lr, "batch_size": args.batch_size, "seq_len": args.seq_len,
    }


def train(args: argparse.Namespace, settings: Settings, sessions) -> int:
    with sessions() as session:
        request = TrainingRequest(series=args.series, loss=args.loss, **_common(args, session))
        job = training.enqueue_training(session=session, request=request, settings=settings)
        session.commit()
        job_ids = [job.id]
    print(f"training job {job_ids[0]} enqueued: series {args.series!r}, loss {args.loss}, {args.preset}, {args.steps} steps")
    return _follow(args, settings, sessions, job_ids)


def experiment(args: argparse.Namespace, settings: Settings, sessions) -> int:
    losses = [loss.strip() for loss in args.losses.split(",") if loss.strip()]
    name = args.name or f"exp-{datetime.now():%Y%m%d-%H%M%S}"
    with sessions() as session:
        created = training.create_experiment(session=session, settings=settings, name=name, losses=losses,
                                             **_common(args, session))
        session.commit()
        job_ids = list(created.config["job_ids"])
    print(f"experiment {name!r}: {len(job_ids)} training jobs ({', '.join(losses)}); "
          f"compare at /#/experiments/{created.id} or `focalscope experiments {name}`")
    return _follow(args, settings, sessions, job_ids)


def experiments(args: argparse.Namespace, settings: Settings, sessions) -> int:
    with sessions() as session:
        if args.ref is None:
            items, _ = training.list_experiments(session=session, offset=0, limit=200)
            print(console.table(("id", "name", "losses", "preset", "steps", "created"),
                                [(e.id, e.name, ", ".join(e.config.get("losses", [])), e.config.get("preset"),
                                  e.config.get("steps"), f"{e.created_at:%Y-%m-%d %H:%M}") for e in items]))
            return 0
        found = training.find_experiment(session=session, ref=args.ref)
        comparison = training.experiment_comparison(session=session, experiment_id=found.id, max_points=2)
    rows = []
    for series in comparison["series"]:
        job = series["job"] or {}
        for point in series["checkpoints"]:
            rows.append((series["loss"], point["step"], _f(point["train_ce"]), _f(point["mean_loss"]),
                         _f(point["perplexity"], 1), _f(point["ece"]), _f(point["rare_loss"]), _f(point["frequent_loss"]),
                         _f(point["easy_share"]), job.get("status", "")))
    print(console.table(("loss", "step", "train CE", "held-out loss", "ppl", "ECE", "rare loss", "frequent loss",
                         "easy share", "job"), rows))
    return 0


def _f(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _follow(args: argparse.Namespace, settings: Settings, sessions, job_ids: list[int]) -> int:
    if not (args.wait or args.here):
        return 0
    worker = thread = None
    if args.here:
        from workers.loop import Worker
        from workers.models import resolve_device

        worker = Worker(settings, device=str(resolve_device(args.device)))
        thread = threading.Thread(target=worker.run_forever, daemon=True)
        thread.start()
    try:
        ok = follow_training(sessions, job_ids)
    finally:
        if worker is not None:
            worker.stop()
            thread.join()
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
                pending_runs = _pending_scoring(session, jobs.values())
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


def _pending_scoring(session, jobs) -> int:
    """Scoring runs of the jobs' checkpoints that have not finished yet."""
    series_names = [j.payload.get("series") for j in jobs]
    run_ids = list(session.scalars(
        select(Run.id).join(Checkpoint, Run.checkpoint_id == Checkpoint.id)
        .join(ModelSeries, Checkpoint.series_id == ModelSeries.id).where(ModelSeries.name.in_(series_names))
    ))
    states = runs.run_progress(session=session, run_ids=run_ids)
    return sum(1 for state in states.values() if state.status not in TERMINAL_STATUSES)
