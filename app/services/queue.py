"""The job queue: enqueue, claim, heartbeat, complete, fail, reap.

Claim is one atomic statement: `UPDATE jobs ... WHERE id = (SELECT ... LIMIT 1 FOR UPDATE SKIP
LOCKED) RETURNING ...`. On PostgreSQL the row lock and SKIP LOCKED make concurrent claimers take
different rows; on SQLite the transaction starts with BEGIN IMMEDIATE, so claimers are serialized by
the database's write lock (FOR UPDATE renders as nothing there).

Every write a worker makes afterwards is conditioned on its claim token and an unexpired lease, so a
worker that was paused or partitioned past its lease cannot overwrite the work of the worker that
took the job over.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import case, false, func, null, select, update
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.engine import SQLITE_IMMEDIATE
from app.models.job import Job
from app.vocab import CANCELLED, DONE, FAILED, LIVE_STATUSES, MAX_ATTEMPTS, QUEUED, RUNNING

# Tracebacks can be long; the tail holds the actual exception.
MAX_ERROR_CHARS = 8000


class LeaseLost(Exception):
    """The job is no longer ours: the lease expired and another worker took it, or it was cancelled."""


def _now(session: Session):
    """The time stored timestamps are written with. On PostgreSQL, the database's clock: workers on
    several hosts must agree on when a lease ends, and their own clocks may drift. On SQLite (one
    host) the local clock, as naive UTC like every stored timestamp."""
    if session.get_bind().dialect.name == "postgresql":
        return func.timezone("UTC", func.statement_timestamp())
    return utcnow()


@dataclass(frozen=True)
class LeaseClock:
    """The clock a worker writes and checks leases with: the database's time (see _now), moved by
    `skew`. Production uses LEASE_CLOCK; a test gives a worker a clock `skew` ahead, and the leases of
    every other worker have run out for it at once, with no waiting."""

    skew: timedelta = timedelta(0)

    def now(self, session: Session):
        return _now(session) + self.skew if self.skew else _now(session)


LEASE_CLOCK = LeaseClock()


@dataclass(frozen=True)
class Claim:
    job_id: int
    kind: str
    payload: dict
    run_id: int | None
    claim_token: str
    attempts: int
    progress_total: int


def enqueue(
    *, session: Session, kind: str, payload: dict, run_id: int | None = None,
    priority: int = 0, progress_total: int = 0, max_attempts: int = MAX_ATTEMPTS,
) -> Job:
    job = Job(
        kind=kind, payload=payload, run_id=run_id, priority=priority,
        progress_total=progress_total, max_attempts=max_attempts, status=QUEUED,
    )
    session.add(job)
    session.flush()
    return job


def claim_next(
    *, session: Session, worker: str, kinds: tuple[str, ...], lease_seconds: float, run_id: int | None = None,
    clock: LeaseClock = LEASE_CLOCK,
) -> Claim | None:
    """Take the highest-priority queued job of one of `kinds` (of one run, if `run_id`). Call on a
    session with no open transaction; the caller commits (the claim is not visible to others, nor
    final, until then)."""
    if session.in_transaction():
        # On SQLite the claim must be the first statement of its own BEGIN IMMEDIATE transaction.
        raise RuntimeError("claim_next needs a session with no open transaction")
    session.connection(execution_options={SQLITE_IMMEDIATE: True})
    now = clock.now(session)
    candidate = (
        select(Job.id)
        .where(Job.status == QUEUED, Job.kind.in_(kinds), *([Job.run_id == run_id] if run_id is not None else []))
        .order_by(Job.priority.desc(), Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    token = secrets.token_hex(16)
    row = session.execute(
        update(Job)
        .where(Job.id == candidate, Job.status == QUEUED)
        .values(
            status=RUNNING, claim_token=token, worker=worker, attempts=Job.attempts + 1,
            lease_expires_at=now + timedelta(seconds=lease_seconds), started_at=now,
            progress_done=0, tokens_done=0, tokens_per_s=None,
        )
        .returning(Job.id, Job.kind, Job.payload, Job.run_id, Job.attempts, Job.progress_total)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        return None
    return Claim(
        job_id=row.id, kind=row.kind, payload=row.payload, run_id=row.run_id,
        claim_token=token, attempts=row.attempts, progress_total=row.progress_total,
    )


def _owned(session: Session, claim: Claim, clock: LeaseClock):
    """The WHERE clause of every write a worker makes: still ours, and the lease not yet over."""
    return (
        Job.id == claim.job_id,
        Job.claim_token == claim.claim_token,
        Job.status == RUNNING,
        Job.lease_expires_at > clock.now(session),
    )


def heartbeat(
    *, session: Session, claim: Claim, lease_seconds: float, progress_done: int | None = None,
    tokens_done: int | None = None, tokens_per_s: float | None = None, detail: dict | None = None,
    clock: LeaseClock = LEASE_CLOCK,
) -> bool:
    """Extend the lease and record progress. False: the job is no longer ours; stop working on it."""
    values: dict = {"lease_expires_at": clock.now(session) + timedelta(seconds=lease_seconds)}
    if progress_done is not None:
        values["progress_done"] = progress_done
    if tokens_done is not None:
        values["tokens_done"] = tokens_done
    if tokens_per_s is not None:
        values["tokens_per_s"] = tokens_per_s
    if detail is not None:
        values["detail"] = detail
    result = session.execute(
        update(Job).where(*_owned(session, claim, clock)).values(**values).execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def complete(
    *, session: Session, claim: Claim, tokens_done: int | None = None, tokens_per_s: float | None = None,
    clock: LeaseClock = LEASE_CLOCK,
) -> None:
    """Mark the job done in the caller's transaction, which also holds the job's results: both
    commit together or not at all. Raises LeaseLost (roll back) when the job is no longer ours."""
    values: dict = {
        "status": DONE, "finished_at": _now(session), "lease_expires_at": None,
        "progress_done": Job.progress_total,
    }
    if tokens_done is not None:
        values["tokens_done"] = tokens_done
    if tokens_per_s is not None:
        values["tokens_per_s"] = tokens_per_s
    result = session.execute(
        update(Job).where(*_owned(session, claim, clock)).values(**values).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise LeaseLost(f"job {claim.job_id}: lease lost before completion; results discarded")


def fail(*, session: Session, claim: Claim, error: str, retry: bool = True) -> str | None:
    """Record an error. The job goes back to the queue while attempts remain (and `retry`), else it
    fails for good. Returns the new status, or None when the job was no longer ours."""
    requeue = (Job.attempts < Job.max_attempts) if retry else false()
    row = session.execute(
        update(Job)
        .where(Job.id == claim.job_id, Job.claim_token == claim.claim_token, Job.status == RUNNING)
        .values(
            status=case((requeue, QUEUED), else_=FAILED),
            finished_at=case((requeue, null()), else_=_now(session)),
            error=error[-MAX_ERROR_CHARS:], claim_token=None, lease_expires_at=None,
        )
        .returning(Job.status)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    return None if row is None else row.status


def reap_expired(*, session: Session, clock: LeaseClock = LEASE_CLOCK) -> tuple[int, int]:
    """Return running jobs whose lease ran out (their worker died or hung) to the queue, or fail them
    when their attempts are spent. Returns (requeued, failed)."""
    now = clock.now(session)
    expired = (Job.status == RUNNING, Job.lease_expires_at < now)
    failed = session.execute(
        update(Job)
        .where(*expired, Job.attempts >= Job.max_attempts)
        .values(
            status=FAILED, finished_at=now, claim_token=None, lease_expires_at=None,
            error="the worker stopped heart-beating (crashed, killed or out of memory) on every attempt",
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    requeued = session.execute(
        update(Job)
        .where(*expired, Job.attempts < Job.max_attempts)
        .values(status=QUEUED, claim_token=None, lease_expires_at=None, worker=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    return requeued, failed


def cancel(*, session: Session, job_ids: list[int] | None = None, run_id: int | None = None) -> int:
    """Cancel live jobs; a worker running one notices at its next heartbeat and stops."""
    condition = Job.status.in_(LIVE_STATUSES)
    statement = update(Job).where(condition)
    if job_ids is not None:
        statement = statement.where(Job.id.in_(job_ids))
    if run_id is not None:
        statement = statement.where(Job.run_id == run_id)
    return session.execute(
        statement.values(status=CANCELLED, finished_at=_now(session), claim_token=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount


def retry_failed(*, session: Session, run_id: int) -> int:
    """Give failed or cancelled jobs of a run a fresh set of attempts."""
    return session.execute(
        update(Job)
        .where(Job.run_id == run_id, Job.status.in_((FAILED, CANCELLED)))
        .values(status=QUEUED, attempts=0, error=None, finished_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount




def release(*, session: Session, claim: Claim) -> bool:
    """Give a job back untouched (the worker is shutting down): queued again, the attempt not counted."""
    return session.execute(
        update(Job)
        .where(Job.id == claim.job_id, Job.claim_token == claim.claim_token, Job.status == RUNNING)
        .values(status=QUEUED, attempts=Job.attempts - 1, claim_token=None, lease_expires_at=None, worker=None)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
