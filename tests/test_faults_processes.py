"""Worker processes killed and stopped mid-shard, with real processes on PostgreSQL and SQLite.

`python -m workers` processes share one run: four and 40 shards on PostgreSQL, the database that many
workers on many hosts share; three and 10 shards on SQLite, one host's database (its variant with 40
shards cost 40–65 s of `make test`). The first is caught holding a shard and killed with SIGKILL; the second is caught holding one and frozen
with SIGSTOP until its lease has run out and another worker has finished that shard, then let go
(SIGCONT): its late result must be refused and change nothing (fencing by the claim token). At the end
every shard is done exactly once, no document has two rows, and the stored numbers equal those of a
clean single-worker run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.db.engine import make_engine, make_sessionmaker
from app.models.corpus import Document
from app.models.job import Job
from app.models.run import TokenScores
from app.vocab import DONE, KIND_SCORE, KIND_SUMMARIZE, RUNNING
from tests.support.api import own_settings
from tests.support.data import macbeth_scenes
from tests.support.timing import wait_until
from tests.test_faults import scenes_run
from workers.loop import Worker

REPO = Path(__file__).resolve().parents[1]
LEASE_S = 4
# Per database: (worker processes, shards).
SIZES = {"postgresql": (4, 40), "sqlite": (3, 10)}


def documents(n_shards: int) -> list[str]:
    """Passages of Macbeth of about 600 characters each (one shard each)."""
    text = " ".join(macbeth_scenes()[:8])
    return [text[i * 600:(i + 1) * 600] for i in range(n_shards)]


def start_worker(settings: Settings, name: str, log_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": settings.db_url, "FOCALSCOPE_DATA_DIR": str(settings.data_dir),
           "FOCALSCOPE_LEASE_SECONDS": str(LEASE_S), "FOCALSCOPE_HEARTBEAT_SECONDS": "0.5",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    log = (log_dir / f"{name}.log").open("w")
    return subprocess.Popen([sys.executable, "-m", "workers", "--device", "cpu", "--name", name],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def held_by(sessions, name: str) -> int | None:
    """The score job the worker called `name` holds now, if any."""
    with sessions() as session:
        return session.scalar(select(Job.id).where(Job.worker == name, Job.status == RUNNING, Job.kind == KIND_SCORE))


def catch_holding(sessions, processes: dict[str, subprocess.Popen]) -> dict[str, int]:
    """Freeze each worker while it holds a shard (SIGSTOP, then look: a frozen worker cannot finish
    its shard between the look and the signal); the job id each holds. Their first shard, while the
    model loads, is the usual catch."""
    caught: dict[str, int] = {}

    def all_frozen_holding():
        for name, process in processes.items():
            if name in caught or held_by(sessions, name) is None:
                continue
            process.send_signal(signal.SIGSTOP)
            job_id = held_by(sessions, name)
            if job_id is None:
                process.send_signal(signal.SIGCONT)
            else:
                caught[name] = job_id
        return len(caught) == len(processes)
    wait_until(all_frozen_holding, timeout=90, what=f"{', '.join(processes)} to be caught holding shards")
    return caught


def shard_record(sessions, job_id: int) -> tuple:
    """The job's status, worker and finish time, and the rows (ids included) of its documents."""
    with sessions() as session:
        job = session.get(Job, job_id)
        rows = session.execute(select(TokenScores.id, TokenScores.document_id, TokenScores.sum_logprob)
                               .where(TokenScores.run_id == job.run_id,
                                      TokenScores.document_id.in_(job.payload["document_ids"]))).all()
        return job.status, job.worker, job.finished_at, job.attempts, sorted(rows)


def diagnosis(sessions, run_id: int, log_dir: Path) -> str:
    """The run's jobs by kind and status, and the end of each worker's log."""
    with sessions() as session:
        jobs = session.execute(select(Job.kind, Job.status, Job.worker, Job.attempts, func.count())
                               .where(Job.run_id == run_id).group_by(Job.kind, Job.status, Job.worker, Job.attempts)).all()
    logs = {log.stem: log.read_text()[-1500:] for log in sorted(log_dir.glob("w*.log"))}
    return f"jobs {[tuple(j) for j in jobs]}; logs {logs}"


def stored(sessions, run_id: int) -> list[tuple]:
    """(document source, n_tokens, sum_logprob) of every row the run holds, in source order."""
    with sessions() as session:
        return sorted(session.execute(select(Document.source, TokenScores.n_tokens, TokenScores.sum_logprob)
                                      .join(Document, Document.id == TokenScores.document_id)
                                      .where(TokenScores.run_id == run_id)).all())


def clean_run(tmp_path: Path, model_dir: Path, n_shards: int) -> list[tuple]:
    """The same run scored by one worker in this process on a database of its own."""
    settings = own_settings(tmp_path / "clean", f"sqlite:///{tmp_path / 'clean.db'}")
    from app.db import migrate

    migrate.upgrade(settings.db_url)
    engine = make_engine(settings.db_url)
    sessions = make_sessionmaker(engine)
    run_id = scenes_run(sessions, model_dir, documents(n_shards))
    Worker(settings, device="cpu").run_forever(exit_when_idle=True)
    rows = stored(sessions, run_id)
    engine.dispose()
    return rows


@pytest.mark.slow
def test_killed_and_frozen_workers_lose_nothing_and_change_nothing(settings, sessions, tiny_llama_dir, tmp_path):
    n_workers, n_shards = SIZES[make_url(settings.db_url).get_backend_name()]
    run_id = scenes_run(sessions, tiny_llama_dir, documents(n_shards))
    names = [f"w{i}" for i in range(n_workers)]
    processes = {name: start_worker(settings, name, tmp_path) for name in names}
    try:
        caught = catch_holding(sessions, {name: processes[name] for name in ("w0", "w1")})
        killed_job, frozen_job = caught["w0"], caught["w1"]
        processes["w0"].kill()  # SIGKILL while frozen holding the shard: no release, no completion
        processes["w0"].wait(timeout=30)

        def finished_by_another(job_id):
            with sessions() as session:
                job = session.get(Job, job_id)
                session.expire_all()
                return job.status == DONE and job.worker not in ("w0", "w1")
        wait_until(lambda: finished_by_another(killed_job) and finished_by_another(frozen_job), timeout=90,
                   what="the killed and the frozen worker's shards to be finished by the others")
        before = shard_record(sessions, frozen_job)
        processes["w1"].send_signal(signal.SIGCONT)
        log = tmp_path / "w1.log"
        wait_until(lambda: f"job {frozen_job}" in log.read_text() and "lease lost" in log.read_text(), timeout=30,
                   what="the thawed worker to find its lease lost")
        assert shard_record(sessions, frozen_job) == before  # its late result changed nothing

        def run_done():
            with sessions() as session:
                return session.scalar(select(func.count()).where(Job.run_id == run_id, Job.kind == KIND_SUMMARIZE,
                                                                 Job.status == DONE))
        try:
            wait_until(run_done, timeout=90, what="the run and its summary to be done")
        except AssertionError as timed_out:  # say where it stood
            raise AssertionError(f"{timed_out}; {diagnosis(sessions, run_id, tmp_path)}") from None
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.terminate()
        exits = {name: process.wait(timeout=60) for name, process in processes.items()}
    assert exits == {"w0": -signal.SIGKILL, **{name: 0 for name in names[1:]}}  # the others stopped cleanly
    with sessions() as session:
        shards = session.execute(select(Job.id, Job.status, Job.attempts).where(Job.run_id == run_id, Job.kind == KIND_SCORE)).all()
        per_document = session.execute(select(func.count()).where(TokenScores.run_id == run_id)
                                       .group_by(TokenScores.document_id)).scalars().all()
    assert len(shards) == n_shards and all(s.status == DONE for s in shards)
    attempts = {s.id: s.attempts for s in shards}
    # Taken over once each (a loaded machine may also cost a healthy worker a lease now and then).
    assert attempts[killed_job] >= 2 and attempts[frozen_job] >= 2
    assert per_document == [1] * n_shards  # every document exactly once
    clean = clean_run(tmp_path, tiny_llama_dir, n_shards)
    faulted = stored(sessions, run_id)
    assert [(s, n) for s, n, _ in faulted] == [(s, n) for s, n, _ in clean]
    assert [lp for *_, lp in faulted] == pytest.approx([lp for *_, lp in clean], rel=1e-5)
