"""`focalscope study`: the focal-vs-CE study on the bundled Shakespeare corpus, in one command.

Per seed, one experiment trains every loss of STUDY_LOSSES on six plays and evaluates each checkpoint
on Macbeth acts I–II (held out); then rho1 trains against that seed's CE model. At the end the report
(focalscope/report.py) is written: every chart and table, mean ± spread over the seeds, the command,
versions and seeds. The default size finishes in about half an hour on 2 CPU cores; --long trains
10,000 steps (the range where PolyFocal is reported to collapse); --preset picks a bigger model for a GPU.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from app.core.config import Settings
from app.db.engine import writing_session
from app.models.checkpoint import ModelSeries
from app.models.job import Job
from app.models.training import Experiment
from app.schemas.training import ExperimentCreate
from app.services import corpora, study as studies
from app.services.errors import InvalidInput
from app.training_specs import PRESETS
from focalscope import console, demo, demo_assets, report
from focalscope.training_commands import follow_training

# The losses every seed trains (rho1 is added after the seed's CE run: it needs it as reference).
STUDY_LOSSES = ("ce", "focal:1", "focal:2", "polyfocal:1:2", "focal-schedule:0->2", "focal-adaptive:2", "poly1:1",
                "mile:1")
# Rho-1 trains on the 60% of tokens with the largest excess loss (the paper's 60–70% range).
RHO1_RATIO = 0.6
DEFAULT_SEEDS = (0, 1, 2)
# Default size: tiny GPT-2, 8 × 64 tokens per step, 150 steps: the 27 runs with their evaluations,
# scoring and samples took 23 minutes on 2 CPU cores shared with other work (docs/study.md).
DEFAULT = {"preset": "tiny", "steps": 150, "save_every": 50, "batch_size": 8, "seq_len": 64}
# --long: long enough to see the 5–10k-step behaviour reported for PolyFocal.
LONG = {"steps": 10_000, "save_every": 500}


def add_study_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="study name (default study-DATE-TIME); its experiments are NAME-sSEED")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS), help="seeds (default 0 1 2)")
    parser.add_argument("--losses", nargs="+", default=list(STUDY_LOSSES), metavar="LOSS",
                        help=f"loss specs besides rho1 (default: {' '.join(STUDY_LOSSES)}); must include ce")
    parser.add_argument("--no-rho1", action="store_true", help="leave out rho1 (it trains against each seed's ce run)")
    parser.add_argument("--long", action="store_true", help=f"{LONG['steps']:,} steps, a checkpoint every {LONG['save_every']}")
    parser.add_argument("--preset", choices=tuple(PRESETS), default=DEFAULT["preset"], help="model size (GPU: small, base)")
    for option in ("steps", "save_every", "batch_size", "seq_len"):
        parser.add_argument(f"--{option.replace('_', '-')}", type=int, dest=option,
                            help=f"default {DEFAULT[option]}" + (f" ({LONG[option]} with --long)" if option in LONG else ""))
    parser.add_argument("--corpus", help="train on this corpus (id or name) instead of the bundled six plays")
    parser.add_argument("--eval-corpus", help="evaluate on this corpus (id or name) instead of Macbeth acts I–II")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, help="report path (default DATA_DIR/reports/NAME.html; NAME.md beside it)")


def study_options(args: argparse.Namespace) -> dict:
    """preset, steps, save_every, batch_size, seq_len: given > --long > default (a bigger preset keeps
    its own batch size and context unless given)."""
    options = {**DEFAULT, **(LONG if args.long else {}), "preset": args.preset}
    if args.preset != DEFAULT["preset"]:
        options.update(batch_size=None, seq_len=None)
    return options | {k: getattr(args, k) for k in ("steps", "save_every", "batch_size", "seq_len")
                      if getattr(args, k) is not None}


def study_command(name: str, args: argparse.Namespace, options: dict) -> str:
    """The command that reruns this study exactly (every setting spelt out)."""
    parts = ["focalscope", "study", "--name", name, "--seeds", *map(str, args.seeds), "--losses", *args.losses,
             "--device", args.device]
    parts += [p for flag, value in (("--corpus", args.corpus), ("--eval-corpus", args.eval_corpus)) if value
              for p in (flag, value)]
    parts += [p for k, v in options.items() if v is not None for p in (f"--{k.replace('_', '-')}", str(v))]
    return " ".join(shlex.quote(p) for p in parts + (["--no-rho1"] if args.no_rho1 else []))


def versions() -> dict:
    import numpy
    import torch
    import transformers

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except OSError:
        commit = None
    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "numpy": numpy.__version__, "focalscope_git": commit, "platform": platform.platform(),
            "torch_threads": torch.get_num_threads()}


def study(args: argparse.Namespace, settings: Settings, sessions) -> int:
    if "ce" not in args.losses:
        print("error: the study compares every loss with ce: include ce in --losses", file=sys.stderr)
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    name = args.name or f"study-{datetime.now():%Y%m%d-%H%M%S}"
    options = study_options(args)
    meta = {"name": name, "seeds": args.seeds, "command": study_command(name, args, options), "versions": versions(),
            "rho1_ratio": None if args.no_rho1 else RHO1_RATIO, "started": f"{datetime.now():%Y-%m-%d %H:%M:%S}"}
    with writing_session(sessions) as session:
        train, heldout = _corpora(session, args)
        experiments = [studies.create_study_experiment(session=session, settings=settings, study=meta, request=ExperimentCreate(
            name=f"{name}-s{seed}", corpus_id=train.id, eval_corpus_id=heldout.id, losses=args.losses, seed=seed,
            **{k: v for k, v in options.items() if v is not None})) for seed in args.seeds]
        session.commit()
        plan = [(e.id, e.name) for e in experiments]
    print(f"study {name!r}: {len(plan)} seeds × {len(args.losses)} losses"
          f"{'' if args.no_rho1 else ' + rho1'}, {options['steps']} steps each\n  {meta['command']}")
    with console.worker_in_process(settings, args.device):
        ok = follow_training(sessions, _job_ids(sessions, [i for i, _ in plan]))
        if not args.no_rho1:
            ok = _train_rho1(settings, sessions, plan, options["steps"]) and ok
    out = args.out or settings.data_dir / "reports" / f"{name}.html"
    with sessions() as session:
        markdown = report.write_report(session=session, ref=name, out=out)
    print(markdown)
    print(f"report: {out} (and {out.with_suffix('.md')})")
    return 0 if ok else 1


def _corpora(session, args: argparse.Namespace):
    """(training corpus, held-out corpus): the ones given, else the bundled plays (created on first use)."""
    train = corpora.find_corpus(session=session, ref=args.corpus) if args.corpus else demo._corpus(
        session, demo.TRAINING_CORPUS, demo_assets.training_documents,
        "Six Shakespeare plays (not Macbeth): the demo's training corpus.")
    heldout = corpora.find_corpus(session=session, ref=args.eval_corpus) if args.eval_corpus else demo._corpus(
        session, demo.HELDOUT_CORPUS, demo_assets.heldout_documents,
        "Macbeth, acts I–II, one document per scene (held out from the training corpus).")
    return train, heldout


def _train_rho1(settings: Settings, sessions, plan: list[tuple[int, str]], steps: int) -> bool:
    """rho1 into each experiment whose ce run finished, against its final checkpoint."""
    job_ids = []
    with writing_session(sessions) as session:
        for experiment_id, experiment_name in plan:
            experiment = session.get(Experiment, experiment_id)
            reference = f"{experiment_name}-ce@{steps}"
            try:
                job = studies.add_series(session=session, settings=settings, experiment=experiment,
                                         loss=f"rho1:{RHO1_RATIO:g}:{reference}")
            except InvalidInput as exc:
                print(f"rho1 for {experiment_name} skipped: {exc}", file=sys.stderr)
                continue
            job_ids.append(job.id)
        session.commit()
    return follow_training(sessions, job_ids) if job_ids else False


def _job_ids(sessions, experiment_ids: list[int]) -> list[int]:
    with sessions() as session:
        return list(session.scalars(select(Job.id).join(ModelSeries, ModelSeries.job_id == Job.id)
                                    .where(ModelSeries.experiment_id.in_(experiment_ids)).order_by(Job.id)))

