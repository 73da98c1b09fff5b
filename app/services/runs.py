"""Scoring runs: create (split into shards), follow progress, finish (enqueue the summary), and the
runs as the API shows them (`runs_out`). Their documents are app.services.run_documents."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models.corpus import Document
from app.models.job import Job
from app.models.run import Run, RunSummary
from app.schemas.corpus import CorpusOut
from app.schemas.run import RunHeadline, RunOptions, RunOut, RunProgress, RunSummaryOut
from app.services import queue
from app.services.checkpoints import checkpoint_out, get_checkpoint
from app.services.corpora import get_corpus
from app.services.errors import InvalidInput, get_or_404
from app.vocab import CANCELLED, DONE, FAILED, KIND_SCORE, KIND_SUMMARIZE, QUEUED, RUNNING

# Summaries jump the queue: they are quick and they are what the overview pages wait for.
SUMMARY_PRIORITY = 10


def shard_documents(documents: list[tuple[int, int]], shard_chars: int) -> list[list[int]]:
    """Split (document id, n_chars) in corpus order into consecutive shards of about shard_chars."""
    shards: list[list[int]] = []
    current: list[int] = []
    size = 0
    for document_id, n_chars in documents:
        if current and size + n_chars > shard_chars:
            shards.append(current)
            current, size = [], 0
        current.append(document_id)
        size += n_chars
    if current:
        shards.append(current)
    return shards


def create_run(
    *, session: Session, checkpoint_id: int, corpus_id: int, options: RunOptions, shard_chars: int, priority: int = 0,
) -> tuple[Run, bool]:
    """Create a run and enqueue its shards; returns (run, created). The same checkpoint, corpus and
    options return the existing run (its failed shards, if any, are queued again)."""
    get_checkpoint(session=session, checkpoint_id=checkpoint_id)
    corpus = get_corpus(session=session, corpus_id=corpus_id)
    key = options.key()
    existing = session.scalar(
        select(Run).where(Run.checkpoint_id == checkpoint_id, Run.corpus_id == corpus_id, Run.options_key == key)
    )
    if existing is not None:
        queue.retry_failed(session=session, run_id=existing.id)
        return existing, False
    documents = session.execute(
        select(Document.id, Document.n_chars).where(Document.corpus_id == corpus.id).order_by(Document.position)
    ).all()
    if not documents:
        raise InvalidInput(f"corpus {corpus.name!r} has no documents")
    run = Run(checkpoint_id=checkpoint_id, corpus_id=corpus_id, options=options.model_dump(), options_key=key)
    session.add(run)
    session.flush()
    for shard in shard_documents([(d.id, d.n_chars) for d in documents], shard_chars):
        queue.enqueue(session=session, kind=KIND_SCORE, run_id=run.id, priority=priority,
                      payload={"document_ids": shard}, progress_total=len(shard))
    return run, True


def get_run(*, session: Session, run_id: int) -> Run:
    return get_or_404(Run, run_id, session=session, thing="run")


def list_runs(
    *, session: Session, offset: int, limit: int, corpus_id: int | None = None, checkpoint_id: int | None = None
) -> tuple[list[Run], int]:
    query, count = select(Run), select(func.count(Run.id))
    if corpus_id is not None:
        query, count = query.where(Run.corpus_id == corpus_id), count.where(Run.corpus_id == corpus_id)
    if checkpoint_id is not None:
        query, count = query.where(Run.checkpoint_id == checkpoint_id), count.where(Run.checkpoint_id == checkpoint_id)
    items = session.scalars(query.order_by(Run.id.desc()).offset(offset).limit(limit)).all()
    return list(items), session.scalar(count) or 0


def run_progress(*, session: Session, run_ids: list[int]) -> dict[int, RunProgress]:
    """Status and progress of runs, derived from their jobs in one grouped query."""
    rows = session.execute(
        select(
            Job.run_id, Job.kind, Job.status, func.count(Job.id), func.sum(Job.progress_done),
            func.sum(Job.progress_total), func.sum(Job.tokens_done), func.sum(Job.tokens_per_s),
        )
        .where(Job.run_id.in_(run_ids))
        .group_by(Job.run_id, Job.kind, Job.status)
    ).all()
    errors = session.execute(
        select(Job.run_id, Job.error).where(Job.run_id.in_(run_ids), Job.error.is_not(None)).order_by(Job.id).limit(50)
    ).all()
    tally: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    for run_id, kind, status, n, done, total, tokens, rate in rows:
        t = tally[run_id]
        if kind == KIND_SUMMARIZE:
            t[f"summary_{status}"] += n
            continue
        t["shards_total"] += n
        t[f"shards_{status}"] += n
        t["documents_total"] += total or 0
        t["documents_done"] += (total or 0) if status == DONE else (done or 0)
        t["tokens_done"] += tokens or 0
        if status == RUNNING:
            t["rate"] += rate or 0.0
    errors_by_run: dict[int, list[str]] = defaultdict(list)
    for run_id, error in errors:
        errors_by_run[run_id].append(error.strip().splitlines()[0][:500] if error.strip() else error)
    return {run_id: _status(tally[run_id], errors_by_run[run_id]) for run_id in run_ids}


def _status(t: dict, errors: list[str]) -> RunProgress:
    if t["shards_failed"] or t["summary_failed"]:
        status = FAILED
    elif t["shards_cancelled"] or t["summary_cancelled"]:
        status = CANCELLED
    elif t["shards_total"] and t["shards_done"] == t["shards_total"] and t["summary_done"]:
        status = DONE
    elif t["shards_running"] or t["shards_done"] or t["summary_queued"] or t["summary_running"]:
        status = RUNNING
    else:
        status = QUEUED
    return RunProgress(
        status=status, shards_total=t["shards_total"], shards_done=t["shards_done"],
        shards_failed=t["shards_failed"], documents_total=t["documents_total"],
        documents_done=t["documents_done"], tokens_done=t["tokens_done"],
        tokens_per_s=t["rate"] or None, errors=errors,
    )


def on_shard_done(*, session: Session, run_id: int) -> bool:
    """Called in the transaction that completes a shard: enqueue the run's summary once every shard
    is done. The run row is locked first (PostgreSQL) so that two shards finishing together cannot
    both miss, or both enqueue, the summary. Returns True when it enqueued one."""
    session.execute(select(Run.id).where(Run.id == run_id).with_for_update())
    pending = session.scalar(
        select(func.count(Job.id)).where(Job.run_id == run_id, Job.kind == KIND_SCORE, Job.status != DONE)
    )
    if pending:
        return False
    live_summary = session.scalar(
        select(func.count(Job.id)).where(Job.run_id == run_id, Job.kind == KIND_SUMMARIZE, Job.status != FAILED)
    )
    if live_summary:
        return False
    queue.enqueue(session=session, kind=KIND_SUMMARIZE, run_id=run_id, payload={}, priority=SUMMARY_PRIORITY)
    return True


def get_summary(*, session: Session, run_id: int) -> RunSummary | None:
    return session.get(RunSummary, run_id)


def runs_out(*, session: Session, runs: list[Run], show_paths: bool, with_summary: bool = False) -> list[RunOut]:
    """The runs as the API shows them: progress and headline numbers for all of them in two queries,
    and with_summary the full summary too; checkpoint paths only with show_paths (admin callers)."""
    ids = [run.id for run in runs]
    progress = run_progress(session=session, run_ids=ids)
    summaries = {s.run_id: s for s in session.scalars(select(RunSummary).where(RunSummary.run_id.in_(ids)))}
    result = []
    for run in runs:
        summary = summaries.get(run.id)
        result.append(RunOut(
            id=run.id, created_at=run.created_at, options=RunOptions.model_validate(run.options),
            checkpoint=checkpoint_out(run.checkpoint, show_path=show_paths), corpus=CorpusOut.model_validate(run.corpus),
            progress=progress[run.id],
            headline=RunHeadline.model_validate(summary, from_attributes=True) if summary else None,
            summary=RunSummaryOut.model_validate(summary, from_attributes=True) if summary and with_summary else None,
        ))
    return result
