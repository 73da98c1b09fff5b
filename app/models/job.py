from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utcnow
from app.vocab import MAX_ATTEMPTS, QUEUED


class Job(Base):
    """A unit of queued work: a shard of a scoring run, a run summary, or a training job.

    A worker owns a job while it holds the job's `claim_token` and its lease has not expired; every
    write a worker makes is conditioned on both (see app.services.queue).
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_claimable", "status", "priority", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # app.vocab.JOB_KINDS
    status: Mapped[str] = mapped_column(String(20), default=QUEUED)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), nullable=True, index=True)
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=MAX_ATTEMPTS)
    claim_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Progress of the current attempt, in the job's own unit (documents for a shard, steps for
    # training), and its rate in tokens per second.
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    tokens_done: Mapped[int] = mapped_column(Integer, default=0)
    tokens_per_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Small, job-defined status (e.g. the current training loss); shown next to the progress bar.
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
