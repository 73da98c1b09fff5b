"""What the API's /metrics reports about the queue, read from the database at scrape time, so every
API replica reports the same numbers and none has to have seen the work happen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models.job import Job
from app.vocab import DONE, JOB_KINDS, JOB_STATUSES, KIND_SCORE, QUEUED


@dataclass(frozen=True)
class QueueMetrics:
    jobs: dict[tuple[str, str], int]  # (kind, status) -> jobs; every pair present, zeros included
    shards_done: int
    tokens_scored: int  # tokens of the done score shards: grows as shards land
    oldest_queued_age_s: float  # how long the oldest queued job has waited; 0 with none queued


def queue_metrics(*, session: Session, now: datetime) -> QueueMetrics:
    jobs = {(kind, status): 0 for kind in JOB_KINDS for status in JOB_STATUSES}
    for kind, status, count in session.execute(select(Job.kind, Job.status, func.count(Job.id)).group_by(Job.kind, Job.status)):
        jobs[(kind, status)] = count
    done_shards = select(func.count(Job.id), func.coalesce(func.sum(Job.tokens_done), 0)).where(
        Job.kind == KIND_SCORE, Job.status == DONE)
    shards_done, tokens_scored = session.execute(done_shards).one()
    oldest = session.scalar(select(func.min(Job.created_at)).where(Job.status == QUEUED))
    age = max((now - oldest).total_seconds(), 0.0) if oldest else 0.0
    return QueueMetrics(jobs=jobs, shards_done=shards_done, tokens_scored=int(tokens_scored), oldest_queued_age_s=age)
