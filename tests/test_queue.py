"""The job queue (app.services.queue) on SQLite and PostgreSQL: concurrent claimers (threads and
processes) take every job exactly once; leases expire, are reaped and re-claimed; a worker that lost
its lease cannot complete, heartbeat or fail the job; fail, release, cancel and retry."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db.base import utcnow
from app.db.engine import make_engine, make_sessionmaker
from app.models import Checkpoint, Corpus, Job, ModelSeries, Run
from app.services.queue import (
    MAX_ERROR_CHARS, Claim, LeaseClock, LeaseLost, cancel, claim_next, complete, enqueue, fail, heartbeat,
    reap_expired, release, retry_failed,
)
from app.vocab import CANCELLED, DONE, FAILED, KIND_SCORE, KIND_SUMMARIZE, KIND_TRAIN, QUEUED, RUNNING

# Long enough never to run out by itself during a test: expiry is simulated by moving it to the past.
LEASE_SECONDS = 600.0
CLAIMERS = 8
JOBS_PER_CLAIMER = 5


def _enqueue(sessions: sessionmaker[Session], count: int = 1, **fields) -> list[int]:
    fields.setdefault("kind", KIND_SCORE)
    fields.setdefault("payload", {})
    with sessions() as session:
        ids = [enqueue(session=session, **fields).id for _ in range(count)]
        session.commit()
    return ids


def _claim(sessions: sessionmaker[Session], kinds=(KIND_SCORE,), worker: str = "w1") -> Claim | None:
    with sessions() as session:
        claim = claim_next(session=session, worker=worker, kinds=kinds, lease_seconds=LEASE_SECONDS)
        session.commit()
    return claim


def _job(sessions: sessionmaker[Session], job_id: int) -> Job:
    with sessions() as session:
        return session.get(Job, job_id)


def _expire_lease(sessions: sessionmaker[Session], job_id: int) -> None:
    """What a worker paused past its lease looks like: the lease ended a second ago."""
    with sessions() as session:
        session.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()


def test_a_clock_past_the_lease_sees_it_expired_and_the_owners_clock_does_not(sessions):
    [job_id] = _enqueue(sessions)
    claim = _claim(sessions)
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
    assert _job(sessions, job_id).status == QUEUED


def _taken_over(sessions: sessionmaker[Session], job_id: int):
    """(stale claim, current claim): the first worker's lease ran out, the reaper requeued the job
    and a second worker claimed it."""
    stale = _claim(sessions)
    _expire_lease(sessions, job_id)
    with sessions() as session:
        reap_expired(session=session)
        session.commit()
    return stale, _claim(sessions)


def _run_id(sessions: sessionmaker[Session], name: str = "r") -> int:
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


def _claim_until_empty(sessions: sessionmaker[Session], worker: str) -> list[tuple[int, str, str]]:
    """Claim jobs one by one, as a worker does, until none is left: [(job id, claim token, worker)]."""
    claimed = []
    with sessions() as session:
        while True:
            claim = claim_next(session=session, worker=worker, kinds=(KIND_SCORE,), lease_seconds=LEASE_SECONDS)
            session.commit()
            if claim is None:
                return claimed
            claimed.append((claim.job_id, claim.claim_token, worker))


def _claimer_process(
    url: str, worker: str, start: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue
) -> None:
    """Body of one claiming process (spawned: it builds its own engine, as a worker process does)."""
    engine = make_engine(url)
    try:
        start.wait(timeout=60)
        results.put(_claim_until_empty(make_sessionmaker(engine), worker))
    finally:
        engine.dispose()


def _assert_claimed_exactly_once(sessions: sessionmaker[Session], job_ids: list[int], claimed: list) -> None:
    assert sorted(job_id for job_id, _, _ in claimed) == sorted(job_ids)
    assert len({token for _, token, _ in claimed}) == len(job_ids)
    owner = {job_id: (token, worker) for job_id, token, worker in claimed}
    with sessions() as session:
        for job in session.scalars(select(Job)):
            assert (job.status, job.attempts) == (RUNNING, 1)
            assert (job.claim_token, job.worker) == owner[job.id]


def test_concurrent_threads_claim_each_job_exactly_once(sessions):
    job_ids = _enqueue(sessions, CLAIMERS * JOBS_PER_CLAIMER)
    start = threading.Barrier(CLAIMERS)

    def claimer(worker: str) -> list:
        start.wait(timeout=60)
        return _claim_until_empty(sessions, worker)

    with ThreadPoolExecutor(CLAIMERS) as pool:
        futures = [pool.submit(claimer, f"t{i}") for i in range(CLAIMERS)]
        # result() re-raises a claimer's exception here instead of losing it in its thread.
        claimed = [item for future in futures for item in future.result(timeout=60)]
    _assert_claimed_exactly_once(sessions, job_ids, claimed)


def test_concurrent_processes_claim_each_job_exactly_once(db_url, sessions):
    job_ids = _enqueue(sessions, CLAIMERS * JOBS_PER_CLAIMER)
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(CLAIMERS), context.Queue()
    processes = [
        context.Process(target=_claimer_process, args=(db_url, f"p{i}", start, results)) for i in range(CLAIMERS)
    ]
    for process in processes:
        process.start()
    try:
        # Drain the queue before joining: a child exits only once its result has been read.
        claimed = [item for _ in processes for item in results.get(timeout=60)]
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():  # only after a failure above; do not leave it running
                process.kill()
    assert [process.exitcode for process in processes] == [0] * CLAIMERS
    _assert_claimed_exactly_once(sessions, job_ids, claimed)


def test_claim_takes_highest_priority_then_oldest(sessions):
    low, high, middle, high_later, low_later = (
        _enqueue(sessions, priority=priority)[0] for priority in (0, 5, 1, 5, 0)
    )
    order = [_claim(sessions).job_id for _ in range(5)]
    assert order == [high, high_later, middle, low, low_later]
    assert _claim(sessions) is None


def test_claim_takes_only_the_requested_kinds(sessions):
    (score,) = _enqueue(sessions, kind=KIND_SCORE, priority=9)
    (train,) = _enqueue(sessions, kind=KIND_TRAIN)

    assert _claim(sessions, kinds=(KIND_TRAIN,)).job_id == train
    assert _claim(sessions, kinds=(KIND_TRAIN,)) is None
    assert _job(sessions, score).status == QUEUED
    assert _claim(sessions, kinds=(KIND_SUMMARIZE, KIND_SCORE)).job_id == score


def test_claim_records_owner_lease_and_returns_the_job(sessions):
    run_id = _run_id(sessions)
    (job_id,) = _enqueue(sessions, payload={"documents": [1, 2]}, run_id=run_id, progress_total=2)
    before = utcnow()
    claim = _claim(sessions, worker="gpu0")
    after = utcnow()

    assert (claim.job_id, claim.kind, claim.run_id) == (job_id, KIND_SCORE, run_id)
    assert claim.payload == {"documents": [1, 2]}
    assert (claim.attempts, claim.progress_total, len(claim.claim_token)) == (1, 2, 32)
    job = _job(sessions, job_id)
    assert (job.status, job.worker, job.claim_token, job.attempts) == (RUNNING, "gpu0", claim.claim_token, 1)
    lease = timedelta(seconds=LEASE_SECONDS)
    assert before + lease <= job.lease_expires_at <= after + lease
    assert before <= job.started_at <= after


def test_claim_refuses_a_session_inside_a_transaction(sessions):
    _enqueue(sessions)
    with sessions() as session:
        session.scalar(select(func.count(Job.id)))  # opens a transaction
        with pytest.raises(RuntimeError, match="no open transaction"):
            claim_next(session=session, worker="w", kinds=(KIND_SCORE,), lease_seconds=LEASE_SECONDS)


def test_expired_lease_is_reaped_and_reclaimed_with_a_new_token(sessions):
    (job_id,) = _enqueue(sessions)
    first = _claim(sessions, worker="w1")
    with sessions() as session:
        assert reap_expired(session=session) == (0, 0)  # a live lease is left alone
        session.commit()

    _expire_lease(sessions, job_id)
    with sessions() as session:
        assert reap_expired(session=session) == (1, 0)
        session.commit()
    job = _job(sessions, job_id)
    assert (job.status, job.claim_token, job.lease_expires_at, job.attempts) == (QUEUED, None, None, 1)

    second = _claim(sessions, worker="w2")
    assert second.job_id == job_id
    assert second.claim_token != first.claim_token
    assert second.attempts == 2
    job = _job(sessions, job_id)
    assert (job.status, job.claim_token, job.worker, job.attempts) == (RUNNING, second.claim_token, "w2", 2)


def test_reaping_the_last_attempt_fails_the_job(sessions):
    (job_id,) = _enqueue(sessions, max_attempts=2)
    for expected in [(1, 0), (0, 1)]:
        _claim(sessions)
        _expire_lease(sessions, job_id)
        with sessions() as session:
            assert reap_expired(session=session) == expected
            session.commit()

    job = _job(sessions, job_id)
    assert (job.status, job.attempts, job.claim_token, job.lease_expires_at) == (FAILED, 2, None, None)
    assert "stopped heart-beating" in job.error
    assert isinstance(job.finished_at, datetime)
    assert _claim(sessions) is None


def test_late_complete_with_a_stale_token_raises_and_its_results_roll_back(sessions):
    (job_id,) = _enqueue(sessions, progress_total=3)
    stale = _claim(sessions, worker="paused")
    _expire_lease(sessions, job_id)
    with sessions() as session:
        reap_expired(session=session)
        session.commit()
    current = _claim(sessions, worker="w2")

    with sessions() as session:
        session.add(Corpus(name="results of the paused worker"))
        session.flush()
        with pytest.raises(LeaseLost):
            complete(session=session, claim=stale, tokens_done=99)
        session.rollback()
    with sessions() as session:
        assert session.scalar(select(func.count(Corpus.id))) == 0
    job = _job(sessions, job_id)
    assert (job.status, job.claim_token, job.worker, job.tokens_done) == (RUNNING, current.claim_token, "w2", 0)

    # The current owner's results and its done mark commit together.
    with sessions() as session:
        session.add(Corpus(name="results of the current owner"))
        complete(session=session, claim=current, tokens_done=1234)
        session.commit()
    with sessions() as session:
        assert session.scalars(select(Corpus.name)).all() == ["results of the current owner"]
    job = _job(sessions, job_id)
    assert (job.status, job.progress_done, job.tokens_done, job.lease_expires_at) == (DONE, 3, 1234, None)
    assert isinstance(job.finished_at, datetime)


def test_complete_after_the_lease_ran_out_raises_even_before_reaping(sessions):
    (job_id,) = _enqueue(sessions)
    claim = _claim(sessions)
    _expire_lease(sessions, job_id)
    with sessions() as session:
        with pytest.raises(LeaseLost):
            complete(session=session, claim=claim)
        session.rollback()
    assert _job(sessions, job_id).status == RUNNING  # until the reaper returns it to the queue


def test_heartbeat_extends_the_lease_and_records_progress(sessions):
    (job_id,) = _enqueue(sessions, progress_total=10)
    claim = _claim(sessions)

    before = utcnow()
    with sessions() as session:
        alive = heartbeat(
            session=session, claim=claim, lease_seconds=2 * LEASE_SECONDS, progress_done=4, tokens_done=5000,
            tokens_per_s=812.5, detail={"loss": 2.5},
        )
        session.commit()
    after = utcnow()
    assert alive is True
    job = _job(sessions, job_id)
    lease = timedelta(seconds=2 * LEASE_SECONDS)
    assert before + lease <= job.lease_expires_at <= after + lease
    assert (job.progress_done, job.progress_total, job.tokens_done, job.tokens_per_s) == (4, 10, 5000, 812.5)
    assert job.detail == {"loss": 2.5}

    # Progress fields left out are left alone.
    with sessions() as session:
        assert heartbeat(session=session, claim=claim, lease_seconds=LEASE_SECONDS) is True
        session.commit()
    job = _job(sessions, job_id)
    assert (job.progress_done, job.tokens_done, job.detail) == (4, 5000, {"loss": 2.5})
    assert job.lease_expires_at <= utcnow() + timedelta(seconds=LEASE_SECONDS)


def test_heartbeat_with_a_stale_token_returns_false_and_changes_nothing(sessions):
    (job_id,) = _enqueue(sessions)
    stale, current = _taken_over(sessions, job_id)
    before = _job(sessions, job_id)

    with sessions() as session:
        assert heartbeat(session=session, claim=stale, lease_seconds=LEASE_SECONDS, progress_done=7) is False
        session.commit()
    after = _job(sessions, job_id)
    assert (after.lease_expires_at, after.progress_done) == (before.lease_expires_at, 0)
    assert after.claim_token == current.claim_token


def test_fail_requeues_while_attempts_remain_then_fails(sessions):
    (job_id,) = _enqueue(sessions, max_attempts=2)
    with sessions() as session:
        assert fail(session=session, claim=_claim(sessions), error="CUDA out of memory") == QUEUED
        session.commit()
    job = _job(sessions, job_id)
    assert (job.status, job.error, job.claim_token, job.lease_expires_at, job.finished_at) == (
        QUEUED, "CUDA out of memory", None, None, None,
    )

    with sessions() as session:
        assert fail(session=session, claim=_claim(sessions), error="CUDA out of memory again") == FAILED
        session.commit()
    job = _job(sessions, job_id)
    assert (job.status, job.attempts, job.error) == (FAILED, 2, "CUDA out of memory again")
    assert isinstance(job.finished_at, datetime)


def test_fail_without_retry_fails_at_once_and_keeps_the_error_tail(sessions):
    (job_id,) = _enqueue(sessions, max_attempts=5)
    error = "x" * MAX_ERROR_CHARS + "ValueError: corrupt checkpoint"
    with sessions() as session:
        assert fail(session=session, claim=_claim(sessions), error=error, retry=False) == FAILED
        session.commit()
    job = _job(sessions, job_id)
    assert (job.status, job.attempts) == (FAILED, 1)
    assert len(job.error) == MAX_ERROR_CHARS
    assert job.error.endswith("ValueError: corrupt checkpoint")


def test_fail_with_a_stale_token_returns_none(sessions):
    (job_id,) = _enqueue(sessions)
    stale, current = _taken_over(sessions, job_id)
    with sessions() as session:
        assert fail(session=session, claim=stale, error="late") is None
        session.commit()
    job = _job(sessions, job_id)
    assert (job.status, job.claim_token, job.error) == (RUNNING, current.claim_token, None)


def test_release_requeues_without_counting_the_attempt(sessions):
    (job_id,) = _enqueue(sessions)
    claim = _claim(sessions, worker="shutting-down")
    with sessions() as session:
        assert release(session=session, claim=claim) is True
        session.commit()
    job = _job(sessions, job_id)
    assert (job.status, job.attempts, job.claim_token, job.worker) == (QUEUED, 0, None, None)
    assert job.lease_expires_at is None

    with sessions() as session:
        assert release(session=session, claim=claim) is False  # no longer ours
        session.commit()
    assert _claim(sessions).attempts == 1


def test_cancel_stops_live_jobs_and_their_workers(sessions):
    run_id, other_run_id = _run_id(sessions, "a"), _run_id(sessions, "b")
    done, running, queued = _enqueue(sessions, 3, run_id=run_id)
    (other,) = _enqueue(sessions, run_id=other_run_id)
    with sessions() as session:
        complete(session=session, claim=_claim(sessions))  # `done`: the oldest is claimed first
        session.commit()
    claim = _claim(sessions)
    assert claim.job_id == running

    with sessions() as session:
        assert cancel(session=session, run_id=run_id) == 2
        session.commit()
    statuses = {job_id: _job(sessions, job_id).status for job_id in (done, running, queued, other)}
    assert statuses == {done: DONE, running: CANCELLED, queued: CANCELLED, other: QUEUED}
    assert _job(sessions, running).claim_token is None

    # The worker still running the cancelled job finds out and cannot complete it.
    with sessions() as session:
        assert heartbeat(session=session, claim=claim, lease_seconds=LEASE_SECONDS) is False
        with pytest.raises(LeaseLost):
            complete(session=session, claim=claim)
        session.rollback()
    assert _job(sessions, running).status == CANCELLED

    with sessions() as session:
        assert cancel(session=session, job_ids=[other, done]) == 1
        session.commit()
    assert (_job(sessions, other).status, _job(sessions, done).status) == (CANCELLED, DONE)


def test_retry_failed_requeues_failed_and_cancelled_jobs_of_a_run(sessions):
    run_id, other_run_id = _run_id(sessions, "a"), _run_id(sessions, "b")
    failed, cancelled, done = _enqueue(sessions, 3, run_id=run_id, max_attempts=1)
    (other_failed,) = _enqueue(sessions, run_id=other_run_id, max_attempts=1)
    with sessions() as session:
        assert fail(session=session, claim=_claim(sessions), error="boom") == FAILED
        assert cancel(session=session, job_ids=[cancelled]) == 1
        session.commit()
    done_claim, other_claim = _claim(sessions), _claim(sessions)
    with sessions() as session:
        complete(session=session, claim=done_claim)
        assert fail(session=session, claim=other_claim, error="other run") == FAILED
        session.commit()
    statuses = [_job(sessions, job_id).status for job_id in (failed, cancelled, done, other_failed)]
    assert statuses == [FAILED, CANCELLED, DONE, FAILED]

    with sessions() as session:
        assert retry_failed(session=session, run_id=run_id) == 2
        session.commit()
    for job_id in (failed, cancelled):
        job = _job(sessions, job_id)
        assert (job.status, job.error, job.finished_at) == (QUEUED, None, None)
    assert _job(sessions, failed).attempts == 0
    assert (_job(sessions, done).status, _job(sessions, other_failed).status) == (DONE, FAILED)
    again = _claim(sessions)
    assert (again.job_id, again.attempts) == (failed, 1)
