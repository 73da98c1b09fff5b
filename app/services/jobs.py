"""Reading the job queue: one job, a filtered page of jobs (the API and the CLI alike), the queue's
health. Writing to it (enqueue, claim, finish) is app.services.queue."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models.job import Job
from app.schemas.system import QueueHealth
from app.services.errors import get_or_404
from app.vocab import QUEUED, RUNNING

# Queued work that nobody has claimed for this long, while no worker is busy, means the queue is stalled.
STALLED_AFTER = timedelta(seconds=30)


def get_job(*, session: Session, job_id: int) -> Job:
    return get_or_404(Job, job_id, session=session, thing="job")


def list_jobs(
    *, session: Session, offset: int, limit: int,
    status: str | None = None, kind: str | None = None, run_id: int | None = None,
) -> tuple[list[Job], int]:
    """Jobs matching every filter given, newest first, and how many match in all."""
    conditions = [condition for condition in (
        Job.status == status if status is not None else None,
        Job.kind == kind if kind is not None else None,
        Job.run_id == run_id if run_id is not None else None,
    ) if condition is not None]
    total = session.scalar(select(func.count(Job.id)).where(*conditions)) or 0
    items = session.scalars(select(Job).where(*conditions).order_by(Job.id.desc()).offset(offset).limit(limit)).all()
    return list(items), total


def queue_health(*, session: Session, now: datetime) -> QueueHealth:
    """What the dashboard's header shows about the queue: workers busy now, jobs waiting, and
    whether waiting work has gone unclaimed for a while (usually: no worker is running)."""
    busy_workers = session.scalar(
        select(func.count(func.distinct(Job.worker))).where(Job.status == RUNNING, Job.lease_expires_at > now)
    ) or 0
    queued = session.scalar(select(func.count(Job.id)).where(Job.status == QUEUED)) or 0
    oldest = session.scalar(select(func.min(Job.created_at)).where(Job.status == QUEUED))
    stalled = bool(oldest and busy_workers == 0 and now - oldest > STALLED_AFTER)
    return QueueHealth(busy_workers=busy_workers, queued_jobs=queued, queue_stalled=stalled)
