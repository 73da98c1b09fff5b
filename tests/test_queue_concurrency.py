"""Concurrent claimers, threads and processes, on SQLite and PostgreSQL: every job claimed exactly once."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import make_engine, make_sessionmaker
from app.models import Job
from app.services.queue import claim_next
from app.vocab import KIND_SCORE, RUNNING
from tests.support.queue_jobs import LEASE_SECONDS, enqueue_jobs

CLAIMERS = 8
JOBS_PER_CLAIMER = 5


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
    job_ids = enqueue_jobs(sessions, CLAIMERS * JOBS_PER_CLAIMER)
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
    job_ids = enqueue_jobs(sessions, CLAIMERS * JOBS_PER_CLAIMER)
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
