"""The job queue (app.services.queue) on SQLite and PostgreSQL: leases expire, are reaped and
re-claimed; a worker that lost its lease cannot complete, heartbeat or fail the job; fail, release,
cancel and retry. Concurrent claimers are in test_queue_concurrency.py."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db.base import utcnow
from app.models import Corpus, Job
from app.services.queue import (
    MAX_ERROR_CHARS, LeaseClock, LeaseLost, claim_next, complete, fail, heartbeat, reap_expired, release,
)
from app.vocab import DONE, FAILED, KIND_SCORE, KIND_SUMMARIZE, KIND_TRAIN, QUEUED, RUNNING
from tests.support.queue_jobs import LEASE_SECONDS, claim_one, enqueue_jobs, expire_lease, job_row, run_row


def test_a_clock_past_the_lease_sees_it_expired_and_the_owners_clock_does_not(sessions):
    [job_id] = enqueue_jobs(sessions)
    claim = claim_one(sessions)
    before = LeaseClock(skew=timedelta(seconds=LEASE_SECONDS - 60))
    after = LeaseClock(skew=timedelta(seconds=LEASE_SECONDS + 60))
    with sessions() as session:
        assert reap_expired(session=session, clock=before) == (0, 0)
        assert heartbeat(session=session, claim=claim, lease_seconds=LEASE_SECONDS) is True
        session.commit()
    with sessions() as session:  # the heartbeat moved the lease to now + LEASE_SECONDS; `after` is past it
        with pytest.raises(LeaseLost):
            complete(session=session, claim=claim, clock=after)
        session.rollback()
        assert reap_expired(session=session, clock=after) == (1, 0)
        session.commit()
    assert job_row(sessions, job_id).status == QUEUED


def _taken_over(sessions: sessionmaker[Session], job_id: int):
    """(stale claim, current claim): the first worker's lease ran out, the reaper requeued the job
    and a second worker claimed it."""
    stale = claim_one(sessions)
    expire_lease(sessions, job_id)
    with sessions() as session:
        reap_expired(session=session)
        session.commit()
    return stale, claim_one(sessions)


def test_claim_takes_highest_priority_then_oldest(sessions):
    low, high, middle, high_later, low_later = (
        enqueue_jobs(sessions, priority=priority)[0] for priority in (0, 5, 1, 5, 0)
    )
    order = [claim_one(sessions).job_id for _ in range(5)]
    assert order == [high, high_later, middle, low, low_later]
    assert claim_one(sessions) is None


def test_claim_takes_only_the_requested_kinds(sessions):
    (score,) = enqueue_jobs(sessions, kind=KIND_SCORE, priority=9)
    (train,) = enqueue_jobs(sessions, kind=KIND_TRAIN)

    assert claim_one(sessions, kinds=(KIND_TRAIN,)).job_id == train
    assert claim_one(sessions, kinds=(KIND_TRAIN,)) is None
    assert job_row(sessions, score).status == QUEUED
    assert claim_one(sessions, kinds=(KIND_SUMMARIZE, KIND_SCORE)).job_id == score


def test_claim_records_owner_lease_and_returns_the_job(sessions):
    run_id = run_row(sessions)
    (job_id,) = enqueue_jobs(sessions, payload={"documents": [1, 2]}, run_id=run_id, progress_total=2)
    before = utcnow()
    claim = claim_one(sessions, worker="gpu0")
    after = utcnow()

    assert (claim.job_id, claim.kind, claim.run_id) == (job_id, KIND_SCORE, run_id)
    assert claim.payload == {"documents": [1, 2]}
    assert (claim.attempts, claim.progress_total, len(claim.claim_token)) == (1, 2, 32)
    job = job_row(sessions, job_id)
    assert (job.status, job.worker, job.claim_token, job.attempts) == (RUNNING, "gpu0", claim.claim_token, 1)
    lease = timedelta(seconds=LEASE_SECONDS)
    assert before + lease <= job.lease_expires_at <= after + lease
    assert before <= job.started_at <= after


def test_claim_refuses_a_session_inside_a_transaction(sessions):
    enqueue_jobs(sessions)
    with sessions() as session:
        session.scalar(select(func.count(Job.id)))  # opens a transaction
        with pytest.raises(RuntimeError, match="no open transaction"):
            claim_next(session=session, worker="w", kinds=(KIND_SCORE,), lease_seconds=LEASE_SECONDS)


def test_expired_lease_is_reaped_and_reclaimed_with_a_new_token(sessions):
    (job_id,) = enqueue_jobs(sessions)
    first = claim_one(sessions, worker="w1")
    with sessions() as session:
        assert reap_expired(session=session) == (0, 0)  # a live lease is left alone
        session.commit()

    expire_lease(sessions, job_id)
    with sessions() as session:
        assert reap_expired(session=session) == (1, 0)
        session.commit()
    job = job_row(sessions, job_id)
    assert (job.status, job.claim_token, job.lease_expires_at, job.attempts) == (QUEUED, None, None, 1)

    second = claim_one(sessions, worker="w2")
    assert second.job_id == job_id
    assert second.claim_token != first.claim_token
    assert second.attempts == 2
    job = job_row(sessions, job_id)
    assert (job.status, job.claim_token, job.worker, job.attempts) == (RUNNING, second.claim_token, "w2", 2)


def test_reaping_the_last_attempt_fails_the_job(sessions):
    (job_id,) = enqueue_jobs(sessions, max_attempts=2)
    for expected in [(1, 0), (0, 1)]:
        claim_one(sessions)
        expire_lease(sessions, job_id)
        with sessions() as session:
            assert reap_expired(session=session) == expected
            session.commit()

    job = job_row(sessions, job_id)
    assert (job.status, job.attempts, job.claim_token, job.lease_expires_at) == (FAILED, 2, None, None)
    assert "stopped heart-beating" in job.error
    assert isinstance(job.finished_at, datetime)
    assert claim_one(sessions) is None


def test_late_complete_with_a_stale_token_raises_and_its_results_roll_back(sessions):
    (job_id,) = enqueue_jobs(sessions, progress_total=3)
    stale = claim_one(sessions, worker="paused")
    expire_lease(sessions, job_id)
    with sessions() as session:
        reap_expired(session=session)
        session.commit()
    current = claim_one(sessions, worker="w2")

    with sessions() as session:
        session.add(Corpus(name="results of the paused worker"))
        session.flush()
        with pytest.raises(LeaseLost):
            complete(session=session, claim=stale, tokens_done=99)
        session.rollback()
    with sessions() as session:
        assert session.scalar(select(func.count(Corpus.id))) == 0
    job = job_row(sessions, job_id)
    assert (job.status, job.claim_token, job.worker, job.tokens_done) == (RUNNING, current.claim_token, "w2", 0)

    # The current owner's results and its done mark commit together.
    with sessions() as session:
        session.add(Corpus(name="results of the current owner"))
        complete(session=session, claim=current, tokens_done=1234)
        session.commit()
    with sessions() as session:
        assert session.scalars(select(Corpus.name)).all() == ["results of the current owner"]
    job = job_row(sessions, job_id)
    assert (job.status, job.progress_done, job.tokens_done, job.lease_expires_at) == (DONE, 3, 1234, None)
    assert isinstance(job.finished_at, datetime)


def test_complete_after_the_lease_ran_out_raises_even_before_reaping(sessions):
    (job_id,) = enqueue_jobs(sessions)
    claim = claim_one(sessions)
    expire_lease(sessions, job_id)
    with sessions() as session:
        with pytest.raises(LeaseLost):
            complete(session=session, claim=claim)
        session.rollback()
    assert job_row(sessions, job_id).status == RUNNING  # until the reaper returns it to the queue


def test_heartbeat_extends_the_lease_and_records_progress(sessions):
    (job_id,) = enqueue_jobs(sessions, progress_total=10)
    claim = claim_one(sessions)

    before = utcnow()
    with sessions() as session:
        alive = heartbeat(
            session=session, claim=claim, lease_seconds=2 * LEASE_SECONDS, progress_done=4, tokens_done=5000,
            tokens_per_s=812.5, detail={"loss": 2.5},
        )
        session.commit()
    after = utcnow()
    assert alive is True
    job = job_row(sessions, job_id)
    lease = timedelta(seconds=2 * LEASE_SECONDS)
    assert before + lease <= job.lease_expires_at <= after + lease
    assert (job.progress_done, job.progress_total, job.tokens_done, job.tokens_per_s) == (4, 10, 5000, 812.5)
    assert job.detail == {"loss": 2.5}

    # Progress fields left out are left alone.
    with sessions() as session:
        assert heartbeat(session=session, claim=claim, lease_seconds=LEASE_SECONDS) is True
        session.commit()
    job = job_row(sessions, job_id)
    assert (job.progress_done, job.tokens_done, job.detail) == (4, 5000, {"loss": 2.5})
    assert job.lease_expires_at <= utcnow() + timedelta(seconds=LEASE_SECONDS)


def test_heartbeat_with_a_stale_token_returns_false_and_changes_nothing(sessions):
    (job_id,) = enqueue_jobs(sessions)
    stale, current = _taken_over(sessions, job_id)
    before = job_row(sessions, job_id)

    with sessions() as session:
        assert heartbeat(session=session, claim=stale, lease_seconds=LEASE_SECONDS, progress_done=7) is False
        session.commit()
    after = job_row(sessions, job_id)
    assert (after.lease_expires_at, after.progress_done) == (before.lease_expires_at, 0)
    assert after.claim_token == current.claim_token


def test_fail_requeues_while_attempts_remain_then_fails(sessions):
    (job_id,) = enqueue_jobs(sessions, max_attempts=2)
    with sessions() as session:
        assert fail(session=session, claim=claim_one(sessions), error="CUDA out of memory") == QUEUED
        session.commit()
    job = job_row(sessions, job_id)
    assert (job.status, job.error, job.claim_token, job.lease_expires_at, job.finished_at) == (
        QUEUED, "CUDA out of memory", None, None, None,
    )

    with sessions() as session:
        assert fail(session=session, claim=claim_one(sessions), error="CUDA out of memory again") == FAILED
        session.commit()
    job = job_row(sessions, job_id)
    assert (job.status, job.attempts, job.error) == (FAILED, 2, "CUDA out of memory again")
    assert isinstance(job.finished_at, datetime)


def test_fail_without_retry_fails_at_once_and_keeps_the_error_tail(sessions):
    (job_id,) = enqueue_jobs(sessions, max_attempts=5)
    error = "x" * MAX_ERROR_CHARS + "ValueError: corrupt checkpoint"
    with sessions() as session:
        assert fail(session=session, claim=claim_one(sessions), error=error, retry=False) == FAILED
        session.commit()
    job = job_row(sessions, job_id)
    assert (job.status, job.attempts) == (FAILED, 1)
    assert len(job.error) == MAX_ERROR_CHARS
    assert job.error.endswith("ValueError: corrupt checkpoint")


def test_fail_with_a_stale_token_returns_none(sessions):
    (job_id,) = enqueue_jobs(sessions)
    stale, current = _taken_over(sessions, job_id)
    with sessions() as session:
        assert fail(session=session, claim=stale, error="late") is None
        session.commit()
    job = job_row(sessions, job_id)
    assert (job.status, job.claim_token, job.error) == (RUNNING, current.claim_token, None)


def test_release_requeues_without_counting_the_attempt(sessions):
    (job_id,) = enqueue_jobs(sessions)
    claim = claim_one(sessions, worker="shutting-down")
    with sessions() as session:
        assert release(session=session, claim=claim) is True
        session.commit()
    job = job_row(sessions, job_id)
    assert (job.status, job.attempts, job.claim_token, job.worker) == (QUEUED, 0, None, None)
    assert job.lease_expires_at is None

    with sessions() as session:
        assert release(session=session, claim=claim) is False  # no longer ours
        session.commit()
    assert claim_one(sessions).attempts == 1
