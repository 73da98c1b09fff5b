"""A run's jobs in the queue, on SQLite and PostgreSQL: cancel stops the live ones (and their
workers' next heartbeat), retry requeues the failed and cancelled ones."""

from __future__ import annotations

import pytest

from app.services.queue import LeaseLost, cancel, complete, fail, heartbeat, retry_failed
from app.vocab import CANCELLED, DONE, FAILED, QUEUED
from tests.support.queue_jobs import LEASE_SECONDS, claim_one, enqueue_jobs, job_row, run_row


def test_cancel_stops_live_jobs_and_their_workers(sessions):
    run_id, other_run_id = run_row(sessions, "a"), run_row(sessions, "b")
    done, running, queued = enqueue_jobs(sessions, 3, run_id=run_id)
    (other,) = enqueue_jobs(sessions, run_id=other_run_id)
    with sessions() as session:
        complete(session=session, claim=claim_one(sessions))  # `done`: the oldest is claimed first
        session.commit()
    claim = claim_one(sessions)
    assert claim.job_id == running

    with sessions() as session:
        assert cancel(session=session, run_id=run_id) == 2
        session.commit()
    statuses = {job_id: job_row(sessions, job_id).status for job_id in (done, running, queued, other)}
    assert statuses == {done: DONE, running: CANCELLED, queued: CANCELLED, other: QUEUED}
    assert job_row(sessions, running).claim_token is None

    # The worker still running the cancelled job finds out and cannot complete it.
    with sessions() as session:
        assert heartbeat(session=session, claim=claim, lease_seconds=LEASE_SECONDS) is False
        with pytest.raises(LeaseLost):
            complete(session=session, claim=claim)
        session.rollback()
    assert job_row(sessions, running).status == CANCELLED

    with sessions() as session:
        assert cancel(session=session, job_ids=[other, done]) == 1
        session.commit()
    assert (job_row(sessions, other).status, job_row(sessions, done).status) == (CANCELLED, DONE)


def test_retry_failed_requeues_failed_and_cancelled_jobs_of_a_run(sessions):
    run_id, other_run_id = run_row(sessions, "a"), run_row(sessions, "b")
    failed, cancelled, done = enqueue_jobs(sessions, 3, run_id=run_id, max_attempts=1)
    (other_failed,) = enqueue_jobs(sessions, run_id=other_run_id, max_attempts=1)
    with sessions() as session:
        assert fail(session=session, claim=claim_one(sessions), error="boom") == FAILED
        assert cancel(session=session, job_ids=[cancelled]) == 1
        session.commit()
    done_claim, other_claim = claim_one(sessions), claim_one(sessions)
    with sessions() as session:
        complete(session=session, claim=done_claim)
        assert fail(session=session, claim=other_claim, error="other run") == FAILED
        session.commit()
    statuses = [job_row(sessions, job_id).status for job_id in (failed, cancelled, done, other_failed)]
    assert statuses == [FAILED, CANCELLED, DONE, FAILED]

    with sessions() as session:
        assert retry_failed(session=session, run_id=run_id) == 2
        session.commit()
    for job_id in (failed, cancelled):
        job = job_row(sessions, job_id)
        assert (job.status, job.error, job.finished_at) == (QUEUED, None, None)
    assert job_row(sessions, failed).attempts == 0
    assert (job_row(sessions, done).status, job_row(sessions, other_failed).status) == (DONE, FAILED)
    again = claim_one(sessions)
    assert (again.job_id, again.attempts) == (failed, 1)
