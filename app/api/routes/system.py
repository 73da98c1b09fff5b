"""Health and version: what the dashboard's header and a load balancer look at."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from sqlalchemy import func, select, text

from app.api.deps import SessionDep
from app.db.base import utcnow
from app.models.job import Job
from app.vocab import QUEUED, RUNNING

router = APIRouter(tags=["system"])


@router.get("/health")
def health(session: SessionDep):
    session.execute(text("SELECT 1"))
    now = utcnow()
    busy_workers = session.scalar(
        select(func.count(func.distinct(Job.worker))).where(Job.status == RUNNING, Job.lease_expires_at > now)
    )
    queued = session.scalar(select(func.count(Job.id)).where(Job.status == QUEUED))
    oldest = session.scalar(select(func.min(Job.created_at)).where(Job.status == QUEUED))
    return {
        "status": "ok",
        "database": session.get_bind().dialect.name,
        "busy_workers": busy_workers or 0,
        "queued_jobs": queued or 0,
        # Queued work that nobody has picked up for a while usually means no worker is running.
        "queue_stalled": bool(oldest and busy_workers == 0 and now - oldest > timedelta(seconds=30)),
    }
