"""The CLI's command handlers: each takes (args, settings) and returns an exit status."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pydantic import ValidationError

from app.core.config import Settings
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker, writing_session
from app.schemas.run import RunOptions
from app.services import checkpoint_folders, checkpoint_urls, checkpoints, corpora, corpus_files, export, runs, series as series_service
from app.services.checkpoint_manifest import is_url
from app.services.errors import InvalidInput
from app.services.jobs import list_jobs
from focalscope import console, demo_assets, token_commands
from focalscope.serve import serve as serve_forever

# `score --series` names this many runs; a longer series is summed up.
MAX_LISTED_RUNS = 12


def _sessions(settings: Settings):
    if settings.auto_migrate:
        migrate.upgrade(settings.db_url)
    return make_sessionmaker(make_engine(settings.db_url))


def serve(args: argparse.Namespace, settings: Settings) -> int:
    return serve_forever(settings, workers=args.workers, device=args.device)


def worker(args: argparse.Namespace, settings: Settings) -> int:
    from workers.cli import run

    return run(args, settings)


def demo(args: argparse.Namespace, settings: Settings) -> int:
    from focalscope.demo import prepare_demo

    prepare_demo(_sessions(settings), settings, train=not args.no_train)
    if args.no_serve:
        return 0
    return serve_forever(settings, workers=args.workers, device=args.device)


def corpus_add(args: argparse.Namespace, settings: Settings) -> int:
    files = _expand(args.paths)
    name = args.name or args.paths[0].name.split(".")[0]
    with writing_session(_sessions(settings)) as session:
        documents = _documents(files, args, settings.max_line_bytes)
        corpus = corpora.create_corpus(session=session, name=name, documents=documents, description=args.description)
        session.commit()
        print(f"corpus {corpus.id} {corpus.name!r}: {corpus.n_documents} documents, {corpus.n_chars:,} characters")
    return 0


def _documents(files: list[Path], args: argparse.Namespace, max_line_bytes: int):
    """Every file's documents, one file open at a time and read lazily (constant memory)."""
    for path in files:
        if args.split == "scenes" and path.suffix == ".txt":
            scenes = demo_assets.split_scenes(path.read_text(encoding="utf-8"), path.stem)
            if scenes:
                yield from scenes
                continue
        with path.open("rb") as stream:
            yield from corpus_files.read_documents(path.name, stream, text_field=args.text_field,
                                                   max_line_bytes=max_line_bytes)


def _expand(paths: list[Path]) -> list[Path]:
    files = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if corpus_files.corpus_suffix(p.name) and p.is_file())
            if not found:
                raise InvalidInput(f"{path}: no .txt or .jsonl(.gz) or .parquet files in this directory")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InvalidInput(f"{path}: no such file or directory")
    return files


def export_run(args: argparse.Namespace, settings: Settings) -> int:
    if args.gamma < 0:
        raise InvalidInput("--gamma must be at least 0")
    totals = export.ExportTotals()
    with _sessions(settings)() as session:
        run = runs.get_run(session=session, run_id=args.run)
        partial = args.out.with_name(args.out.name + ".partial")
        try:  # written beside the target and renamed: a failed export leaves no half-written file
            with partial.open("wb") as out:
                for chunk in export.export_chunks(session=session, run=run, fmt=args.format, gamma=args.gamma,
                                                  totals=totals):
                    out.write(chunk)
            partial.replace(args.out)
        except OSError as exc:
            raise InvalidInput(f"cannot write {args.out}: {exc.strerror}") from None
        finally:
            partial.unlink(missing_ok=True)
    print(f"run {run.id}: {totals.tokens:,} tokens of {totals.documents:,} documents -> {args.out}")
    return 0


def corpus_list(args: argparse.Namespace, settings: Settings) -> int:
    with _sessions(settings)() as session:
        items, total = corpora.list_corpora(session=session, offset=0, limit=1000)
        print(console.table(("id", "name", "documents", "characters", "created"),
                            [(c.id, c.name, c.n_documents, f"{c.n_chars:,}", f"{c.created_at:%Y-%m-%d %H:%M}") for c in items]))
    return 0


def model_add(args: argparse.Namespace, settings: Settings) -> int:
    if is_url(args.path):
        return _model_add_url(args, settings)
    with writing_session(_sessions(settings)) as session:
        result = checkpoint_folders.register_path(
            session=session, path=Path(args.path), series=args.series, step=args.step, tokens_seen=args.tokens_seen
        )
        session.commit()
        found = [(c, "registered") for c in result.registered] + [(c, "already registered as") for c in result.existing]
        for checkpoint, verb in sorted(found, key=lambda item: item[0].step):
            print(f"{verb} checkpoint {checkpoint.id}: {result.series.name}@{checkpoint.step} "
                  f"({checkpoint.format}, {checkpoint.architecture or 'unknown architecture'}) from {checkpoint.path}")
        for path, reason in result.skipped:
            print(f"skipped {path}: {reason}")
    return 0


def _model_add_url(args: argparse.Namespace, settings: Settings) -> int:
    # The lock is taken at the first statement, after the download (a session begins lazily).
    with writing_session(_sessions(settings)) as session:
        checkpoint, created = checkpoint_urls.register_url(
            session=session, url=args.path, cache_dir=settings.cache_dir, series=args.series, step=args.step or 0,
            tokens_seen=args.tokens_seen)
        session.commit()
        print(f"{'registered' if created else 'already registered as'} checkpoint {checkpoint.id}: "
              f"{checkpoint.series.name}@{checkpoint.step} ({checkpoint.format}, "
              f"{checkpoint.architecture or 'unknown architecture'}) at {checkpoint.path}")
    return 0


def model_list(args: argparse.Namespace, settings: Settings) -> int:
    with _sessions(settings)() as session:
        items, _ = checkpoints.list_checkpoints(session=session, offset=0, limit=1000)
        print(console.table(("id", "series", "step", "format", "architecture", "path"),
                            [(c.id, c.series.name, c.step, c.format, c.architecture, c.path) for c in items]))
    return 0


def score(args: argparse.Namespace, settings: Settings) -> int:
    try:
        options = RunOptions(window=args.window, max_length=args.max_length, stride=args.stride,
                             top_k=args.top_k, dtype=args.dtype)
    except ValidationError as exc:
        raise InvalidInput("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
    sessions = _sessions(settings)
    with writing_session(sessions) as session:
        corpus = corpora.find_corpus(session=session, ref=args.corpus)
        enqueue = _enqueue_series if args.series else _enqueue_checkpoint
        run_ids, label, message = enqueue(session, args, settings, corpus, options)
        session.commit()
    print(message)
    if args.here:
        with console.worker_in_process(settings, args.device):
            status = console.follow_runs(sessions, run_ids, label=label)
    elif args.wait:
        status = console.follow_runs(sessions, run_ids, label=label)
    else:
        return 0
    return console.EXIT_CODES.get(status, 1)


def _enqueue_checkpoint(session, args, settings: Settings, corpus, options: RunOptions) -> tuple[list[int], str, str]:
    checkpoint = checkpoints.find_checkpoint(session=session, ref=args.model)
    run, created = runs.create_run(session=session, checkpoint_id=checkpoint.id, corpus_id=corpus.id,
                                   options=options, shard_chars=settings.shard_chars)
    return [run.id], f"run {run.id}", f"run {run.id} {'enqueued' if created else 'exists'}: {args.model} on {corpus.name}"


def _enqueue_series(session, args, settings: Settings, corpus, options: RunOptions) -> tuple[list[int], str, str]:
    series = series_service.find_series(session=session, ref=args.series)
    created, existing = series_service.score_series(session=session, series=series, corpus=corpus, options=options,
                                                    shard_chars=settings.shard_chars)
    run_ids = created + existing
    listed = ", ".join(str(run_id) for run_id in run_ids[:MAX_LISTED_RUNS])
    more = f" and {len(run_ids) - MAX_LISTED_RUNS} more" if len(run_ids) > MAX_LISTED_RUNS else ""
    return run_ids, f"{series.name}: {len(run_ids)} runs", (
        f"series {series.name!r} on {corpus.name}: {len(created)} runs enqueued, {len(existing)} exist "
        f"(runs {listed}{more})")


def train(args: argparse.Namespace, settings: Settings) -> int:
    from focalscope import training_commands

    return training_commands.train(args, settings, _sessions(settings))


def experiment(args: argparse.Namespace, settings: Settings) -> int:
    from focalscope import training_commands

    return training_commands.experiment(args, settings, _sessions(settings))


def experiments(args: argparse.Namespace, settings: Settings) -> int:
    from focalscope import training_commands

    return training_commands.experiments(args, settings, _sessions(settings))


def study(args: argparse.Namespace, settings: Settings) -> int:
    from focalscope import study as study_command

    return study_command.study(args, settings, _sessions(settings))


def report(args: argparse.Namespace, settings: Settings) -> int:
    from focalscope import report as report_module

    return report_module.report_command(args, settings, _sessions(settings))


def runs_list(args: argparse.Namespace, settings: Settings) -> int:
    with _sessions(settings)() as session:
        items, _ = runs.list_runs(session=session, offset=0, limit=200)
        progress = runs.run_progress(session=session, run_ids=[r.id for r in items])
        rows = []
        for r in items:
            state = progress[r.id]
            summary = runs.get_summary(session=session, run_id=r.id)
            rows.append((r.id, f"{r.checkpoint.series.name}@{r.checkpoint.step}", r.corpus.name, state.status,
                         console.bar(state.documents_done, state.documents_total, 12),
                         f"{summary.mean_loss:.3f}" if summary else ""))
        print(console.table(("run", "model", "corpus", "status", "documents", "mean loss"), rows))
    return 0


def jobs(args: argparse.Namespace, settings: Settings) -> int:
    sessions = _sessions(settings)
    while True:
        with sessions() as session:
            items, _ = list_jobs(session=session, offset=0, limit=args.limit, status=args.status)
            rows = [
                (j.id, j.kind, j.run_id or "", j.status, console.bar(j.progress_done, j.progress_total, 12),
                 f"{j.tokens_per_s:,.0f}" if j.tokens_per_s else "", j.attempts, j.worker or "",
                 (j.error or "").strip().splitlines()[0][:60] if j.error else "")
                for j in items
            ]
        output = console.table(("job", "kind", "run", "status", "progress", "tok/s", "tries", "worker", "error"), rows)
        if not args.watch:
            print(output)
            return 0
        print("\033[2J\033[H" + output, flush=True)
        time.sleep(2)


def token_create(args: argparse.Namespace, settings: Settings) -> int:
    return token_commands.create(args, _sessions(settings))


def token_list(args: argparse.Namespace, settings: Settings) -> int:
    return token_commands.list_(args, _sessions(settings))


def token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    return token_commands.revoke(args, _sessions(settings))


def db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    migrate.upgrade(settings.db_url)
    print(f"database at revision {migrate.current_revision(settings.db_url)}")
    return 0


def db_current(args: argparse.Namespace, settings: Settings) -> int:
    current = migrate.current_revision(settings.db_url)
    head = migrate.head_revision()
    print(f"current: {current or '(empty database)'}; head: {head}")
    return 0 if current == head else 1


