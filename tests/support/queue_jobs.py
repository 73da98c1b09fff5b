"""Jobs for the queue tests: enqueue, claim, read back, a lease run out (moved to the past), a run to hang them on."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.db.base import utcnow
from app.models import Checkpoint, Corpus, Job, ModelSeries, Run
from app.services.queue import Claim, claim_next, enqueue
from app.vocab import KIND_SCORE

# Long enough never to run out by itself during a test: expiry is simulated by moving it to the past.
LEASE_SECONDS = 600.0


def enqueue_jobs(sessions: sessionmaker[Session], count: int = 1, **fields) -> list[int]:
    fields.setdefault("kind", KIND_SCORE)
    fields.setdefault("payload", {})
    with sessions() as session:
        ids = [enqueue(session=session, **fields).id for _ in range(count)]
        session.commit()
    return ids


def claim_one(sessions: sessionmaker[Session], kinds=(KIND_SCORE,), worker: str = "w1") -> Claim | None:
    with sessions() as session:
        claim = claim_next(session=session, worker=worker, kinds=kinds, lease_seconds=LEASE_SECONDS)
        session.commit()
    return claim


def job_row(sessions: sessionmaker[Session], job_id: int) -> Job:
    with sessions() as session:
        return session.get(Job, job_id)


def expire_lease(sessions: sessionmaker[Session], job_id: int) -> None:
    """What a worker paused past its lease looks like: the lease ended a second ago."""
    with sessions() as session:
        session.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()


def run_row(sessions: sessionmaker[Session], name: str = "r") -> int:
    with sessions() as session:
        corpus = Corpus(name=f"corpus-{name}")
        checkpoint = Checkpoint(
            series=ModelSeries(name=f"series-{name}"), format="safetensors", path="/m",
            weights_sha256="0" * 64, tokenizer_fingerprint="f" * 64,
        )
        run = Run(checkpoint=checkpoint, corpus=corpus, options={}, options_key="{}")
        session.add(run)
        session.commit()
        return run.id
