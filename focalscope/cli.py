"""focalscope — which tokens are hard, how that changes during training, what focal loss would do.

Every command reads its settings from the environment and .env (FOCALSCOPE_DATA_DIR,
DATABASE_URL, ...); options given here win.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from app.core.config import Settings
from app.core.log_format import LOG_FORMATS, configure_logging
from app.schemas.run import DEFAULT_MAX_LENGTH, DEFAULT_TOP_K
from app.services.errors import DomainError
from app.vocab import DTYPE_FLOAT32, JOB_STATUSES, SCOPE_READ, SCOPES, WEIGHT_DTYPES, WINDOW_POLICIES, WINDOW_ROLLING
from focalscope import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="focalscope", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="data directory (default: ./data)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite under the data directory)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("--log-format", choices=LOG_FORMATS,
                        help="text lines (default) or one JSON object per line, with run, job and shard ids")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # In the order `focalscope --help` lists them.
    for add_commands in (_add_server_commands, _add_data_commands, _add_score_command, _add_training_commands,
                         _add_status_commands, _add_token_commands):
        add_commands(sub)
    return parser


def _add_server_commands(sub) -> None:
    serve = sub.add_parser("serve", help="serve the dashboard and API, with worker processes")
    _serve_options(serve)
    serve.set_defaults(handler=commands.serve)

    demo = sub.add_parser("demo", help="prepare the offline demo (SmolLM2 on Macbeth) and serve it")
    _serve_options(demo)
    demo.add_argument("--no-serve", action="store_true", help="prepare the data, enqueue the work, and exit")
    demo.add_argument("--no-train", action="store_true", help="skip the CE-vs-focal training experiment")
    demo.set_defaults(handler=commands.demo)

    from workers.cli import add_arguments as worker_arguments

    worker = sub.add_parser("worker", help="run a worker that claims jobs from the database")
    worker_arguments(worker)
    worker.set_defaults(handler=commands.worker)


def _add_data_commands(sub) -> None:
    corpus = sub.add_parser("corpus", help="manage corpora").add_subparsers(dest="action", required=True, metavar="ACTION")
    add = corpus.add_parser("add", help="create a corpus from .txt / .jsonl / .jsonl.gz / .parquet files or directories of them")
    add.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add.add_argument("--name", help="corpus name (default: the first path's name)")
    add.add_argument("--description", default="")
    add.add_argument("--split", choices=("file", "scenes"), default="file",
                     help="file: one document per .txt file / .jsonl line / .parquet row; scenes: one per play scene")
    add.add_argument("--text-field", default="text",
                     help='the .jsonl field or .parquet column that holds the text (default "text")')
    add.set_defaults(handler=commands.corpus_add)
    corpus.add_parser("list", help="list corpora").set_defaults(handler=commands.corpus_list)

    export = sub.add_parser("export", help="write a run's tokens to a Parquet or CSV file, one row per token")
    export.add_argument("run", type=int, metavar="RUN", help="run id")
    export.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    export.add_argument("--out", type=Path, required=True, metavar="PATH", help="file to write")
    export.add_argument("--gamma", type=float, default=2.0, help="focal γ for focal_weight and focal_loss (default 2)")
    export.set_defaults(handler=commands.export_run)

    model = sub.add_parser("model", help="manage checkpoints").add_subparsers(dest="action", required=True, metavar="ACTION")
    model_add = model.add_parser(
        "add", help="register a safetensors directory or a GGUF file, or every checkpoint in a training output folder",
        description="PATH is one checkpoint, or a training output folder whose checkpoint subfolders (checkpoint-N, "
                    "step-N, step_N, global_stepN, iter-N, ckpt-N; or any with a trainer_state.json) are all "
                    "registered into one series, each at its step (trainer_state.json's global_step where present, "
                    "else the number in its name). Or an fsspec URL of one checkpoint (s3://bucket/run/step-100, "
                    "gs://..., file:///...): its files are copied into this host's cache and checked there, and "
                    "workers fetch them from the URL with their own credentials (README: Running on several hosts).")
    model_add.add_argument("path", help="a folder, a .gguf file or a URL")
    model_add.add_argument("--series", help="series name (default: the file or directory name)")
    model_add.add_argument("--step", type=int,
                           help="one checkpoint: its training step (default: from trainer_state.json or its name, else 0)")
    model_add.add_argument("--tokens-seen", type=int, help="one checkpoint: training tokens seen at it")
    model_add.set_defaults(handler=commands.model_add)
    model.add_parser("list", help="list checkpoints").set_defaults(handler=commands.model_list)


def _add_score_command(sub) -> None:
    score = sub.add_parser("score", help="score a checkpoint, or every checkpoint of a series, on a corpus (enqueue runs)")
    which = score.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="checkpoint id, series name (latest step) or SERIES@STEP")
    which.add_argument("--series", help="series name or id: every checkpoint of it without a run with these options")
    score.add_argument("--corpus", required=True, help="corpus id or name")
    score.add_argument("--window", choices=WINDOW_POLICIES, default=WINDOW_ROLLING)
    score.add_argument("--max-length", type=int, default=DEFAULT_MAX_LENGTH,
                       help=f"tokens per window (default {DEFAULT_MAX_LENGTH})")
    score.add_argument("--stride", type=int, help="strided: new tokens per window (default max-length/2)")
    score.add_argument("--top-k", type=int, default=DEFAULT_TOP_K,
                       help=f"alternatives stored per token (default {DEFAULT_TOP_K})")
    score.add_argument("--dtype", choices=WEIGHT_DTYPES, default=DTYPE_FLOAT32)
    score.add_argument("--wait", action="store_true", help="show progress until the runs end (a worker must be running)")
    score.add_argument("--here", action="store_true", help="score in this process instead of waiting for a worker")
    score.add_argument("--device", default="auto", help="with --here: cpu, cuda, cuda:N or auto")
    score.set_defaults(handler=commands.score)


def _add_training_commands(sub) -> None:
    from focalscope.training_commands import add_experiment_options, add_train_options

    train = sub.add_parser("train", help="train a small LM with cross-entropy or a focal-family loss")
    add_train_options(train)
    train.set_defaults(handler=commands.train)

    experiment = sub.add_parser("experiment", help="train one series per loss and compare them on a held-out corpus")
    add_experiment_options(experiment)
    experiment.set_defaults(handler=commands.experiment)

    from focalscope.report import add_report_options
    from focalscope.study import add_study_options

    study = sub.add_parser("study", help="run the focal-vs-CE study on the bundled Shakespeare corpus and write its report",
                           description="Every loss × every seed on six plays, evaluated on Macbeth I–II; rho1 against "
                                       "each seed's ce run; then the HTML report and its Markdown summary.")
    add_study_options(study)
    study.set_defaults(handler=commands.study)

    report = sub.add_parser("report", help="write a study's or an experiment's offline HTML report (+ Markdown)")
    add_report_options(report)
    report.set_defaults(handler=commands.report)

    experiments = sub.add_parser("experiments", help="list experiments, or compare the losses of one")
    experiments.add_argument("ref", nargs="?", help="experiment id or name")
    experiments.set_defaults(handler=commands.experiments)


def _add_token_commands(sub) -> None:
    token = sub.add_parser("token", help="manage API tokens (needed when the server is not on loopback)")
    actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a token and print its secret (shown this once only)")
    create.add_argument("--name", required=True, help="who or what uses it, e.g. alice or ci")
    create.add_argument("--scope", choices=SCOPES, default=SCOPE_READ,
                        help="read: see everything; write: also add corpora, runs, uploads, training; "
                             "admin: also register server-side paths and see them (default read)")
    create.set_defaults(handler=commands.token_create)
    actions.add_parser("list", help="list tokens (never their secrets)").set_defaults(handler=commands.token_list)
    revoke = actions.add_parser("revoke", help="revoke a token; requests with it fail from now on")
    revoke.add_argument("ref", metavar="ID|NAME")
    revoke.set_defaults(handler=commands.token_revoke)


def _add_status_commands(sub) -> None:
    runs = sub.add_parser("runs", help="list runs with their status")
    runs.set_defaults(handler=commands.runs_list)

    jobs = sub.add_parser("jobs", help="list jobs with progress")
    jobs.add_argument("--status", choices=JOB_STATUSES, metavar="STATUS",
                      help=f"only jobs with this status ({', '.join(JOB_STATUSES)})")
    jobs.add_argument("--limit", type=int, default=30)
    jobs.add_argument("--watch", action="store_true", help="refresh every 2 seconds until Ctrl-C")
    jobs.set_defaults(handler=commands.jobs)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="action", required=True, metavar="ACTION")
    db.add_parser("upgrade", help="migrate to the latest schema").set_defaults(handler=commands.db_upgrade)
    db.add_parser("current", help="show the schema revision").set_defaults(handler=commands.db_current)


def _serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8000)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes to start (default 1; 0 for none)")
    parser.add_argument("--device", default="auto", help="workers' device: cpu, cuda, cuda:N or auto")
    access = parser.add_argument_group("access (README \"Security\")")
    access.add_argument("--insecure-open", action="store_true", default=None,
                        help="on a non-loopback address, serve without tokens: anyone who reaches the port "
                             "can read and change everything")
    access.add_argument("--require-token", action="store_true", default=None,
                        help="on loopback too, require tokens (a machine with several users)")
    access.add_argument("--public-read", action="store_true", default=None,
                        help="with tokens required, let reads go without one")
    access.add_argument("--allowed-host", action="append", dest="allowed_hosts", metavar="NAME",
                        help="a host name the server answers to besides the loopback names and --host "
                             "(repeatable; * for any)")
    access.add_argument("--allowed-origin", action="append", dest="allowed_origins", metavar="ORIGIN",
                        help="another origin whose pages may call the API, e.g. https://lab.example (repeatable)")


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if args.database_url:
        overrides["database_url"] = args.database_url
    for name in ("host", "port", "log_format", "insecure_open", "require_token", "public_read", "allowed_hosts",
                 "allowed_origins"):
        if getattr(args, name, None) is not None:
            overrides[name] = getattr(args, name)
    return Settings(**overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        print(f"error: invalid settings: {problems}", file=sys.stderr)
        return 2
    configure_logging(log_format=settings.log_format, verbose=args.verbose)
    try:
        return args.handler(args, settings) or 0
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except OperationalError as exc:
        print(f"error: cannot use the database: {exc.orig}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
