"""The worker end to end on SQLite and PostgreSQL with a tiny model: shards, summary, failures,
lost leases and shutdown."""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np
import pytest
from sqlalchemy import func, select, update

from app.models.job import Job
from app.models.run import RunSummary, TokenScores
from app.schemas.run import RunOptions
from app.services import checkpoints, corpora, queue, runs
from app.vocab import CANCELLED, DONE, FAILED, KIND_SCORE, KIND_SUMMARIZE, QUEUED
from tests.support.data import make_run
from tests.support.timing import wait_until
from workers.context import JobContext
from workers.loop import Worker
from workers.models import load_checkpoint
from workers.scoring.job import run_score_shard

def status(sessions, run_id):
    with sessions() as session:
        return runs.run_progress(session=session, run_ids=[run_id])[run_id]


def test_run_is_scored_and_summarized(settings, sessions, tiny_llama_dir, monkeypatch):
    from workers.scoring import model_cache

    loads = []
    monkeypatch.setattr(model_cache, "load_checkpoint", lambda **kw: loads.append(kw) or load_checkpoint(**kw))
    run_id = make_run(sessions, tiny_llama_dir, shard_chars=60)
    with sessions() as session:
        assert session.scalar(select(func.count(Job.id)).where(Job.kind == KIND_SCORE)) == 4
    assert Worker(settings, device="cpu").run_forever(exit_when_idle=True) == 5  # 4 shards + summary
    assert len(loads) == 1  # the worker's ModelCache kept the model from shard to shard
    state = status(sessions, run_id)
    assert (state.status, state.documents_done, state.documents_total) == (DONE, 5, 5)
    with sessions() as session:
        rows = session.scalars(select(TokenScores).where(TokenScores.run_id == run_id)).all()
        assert len(rows) == 5 and sum(r.n_tokens for r in rows) == state.tokens_done > 30
        summary = session.get(RunSummary, run_id)
        total_logprob = sum(r.sum_logprob for r in rows)
        assert summary.n_tokens == state.tokens_done
        assert summary.mean_loss == pytest.approx(-total_logprob / summary.n_tokens, rel=1e-6)
        assert sum(summary.stats["loss_histogram"]["counts"]) + summary.stats["loss_histogram"]["overflow"] >= summary.n_tokens
        assert 0 <= summary.ece <= 1 and summary.perplexity == pytest.approx(np.exp(summary.mean_loss))
        # The tokenizer's display vocabulary was stored for the API's top-k texts.
        fingerprint = runs.get_run(session=session, run_id=run_id).checkpoint.tokenizer_fingerprint
        vocabulary = checkpoints.load_vocabulary(session=session, fingerprint=fingerprint)
        assert len(vocabulary) == 320 and vocabulary[0] == "<s>"


def test_two_workers_share_shards_and_score_each_document_once(settings, sessions, tiny_llama_dir):
    run_id = make_run(sessions, tiny_llama_dir, shard_chars=1)  # one document per shard
    workers = [Worker(settings, device="cpu", name=f"w{i}") for i in range(2)]
    threads = [threading.Thread(target=w.run_forever, kwargs={"exit_when_idle": True}) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert status(sessions, run_id).status == DONE
    with sessions() as session:
        per_document = session.execute(
            select(TokenScores.document_id, func.count()).where(TokenScores.run_id == run_id).group_by(TokenScores.document_id)
        ).all()
        assert sorted(n for _, n in per_document) == [1] * 5
        assert session.scalar(select(func.count(Job.id)).where(Job.kind == KIND_SUMMARIZE)) == 1


def test_missing_checkpoint_fails_at_once_with_its_error(settings, sessions, tiny_llama_dir, tmp_path):
    import shutil

    copy = shutil.copytree(tiny_llama_dir, tmp_path / "doomed")
    run_id = make_run(sessions, copy)
    shutil.rmtree(copy)
    Worker(settings, device="cpu").run_forever(exit_when_idle=True)
    state = status(sessions, run_id)
    assert state.status == FAILED and "is gone" in state.errors[0]
    with sessions() as session:
        job = session.scalar(select(Job).where(Job.run_id == run_id))
        assert job.attempts == 1 and job.status == FAILED  # permanent: no retries spent


def test_crashing_handler_is_retried_then_fails_while_other_jobs_go_on(settings, sessions):
    with sessions() as session:
        poison = queue.enqueue(session=session, kind=KIND_SCORE, payload={"poison": True})
        healthy = queue.enqueue(session=session, kind=KIND_SCORE, payload={})
        session.commit()
    seen = []

    def handler(ctx: JobContext):
        seen.append(ctx.claim.job_id)
        if ctx.claim.payload.get("poison"):
            raise RuntimeError("poisoned document")
        with ctx.sessions() as session:
            queue.complete(session=session, claim=ctx.claim)
            session.commit()

    Worker(settings, device="cpu", handlers={KIND_SCORE: handler}).run_forever(exit_when_idle=True)
    with sessions() as session:
        poisoned, ok = session.get(Job, poison.id), session.get(Job, healthy.id)
        assert (poisoned.status, poisoned.attempts) == (FAILED, 3)
        assert poisoned.error.startswith("RuntimeError: poisoned document")
        assert ok.status == DONE
    assert seen.count(poison.id) == 3 and seen.count(healthy.id) == 1


def test_results_of_a_worker_that_lost_its_lease_are_discarded(settings, sessions, tiny_llama_dir):
    run_id = make_run(sessions, tiny_llama_dir)

    def stolen_then_scored(ctx: JobContext):
        # Another worker takes the job over (as after our lease expired) while we are scoring.
        with ctx.sessions() as session:
            session.execute(update(Job).where(Job.id == ctx.claim.job_id).values(claim_token="someone-else"))
            session.commit()
        run_score_shard(ctx, worker.scoring_models())

    worker = Worker(settings, device="cpu", handlers={KIND_SCORE: stolen_then_scored})
    worker.run_forever(exit_when_idle=True)
    with sessions() as session:
        assert session.scalar(select(func.count(TokenScores.id))) == 0
        job = session.scalar(select(Job).where(Job.run_id == run_id))
        assert job.claim_token == "someone-else" and job.status != DONE


def test_heartbeat_records_progress_and_shutdown_releases_the_job(settings, sessions):
    with sessions() as session:
        job_id = queue.enqueue(session=session, kind=KIND_SCORE, payload={}, progress_total=10).id
        session.commit()
    observed = {}
    worker = Worker(settings, device="cpu")

    def handler(ctx: JobContext):
        ctx.report(done=3, tokens=300)

        def recorded():  # a heartbeat has written the reported progress
            with ctx.sessions() as session:
                job = session.get(Job, job_id)
                return job if job.progress_done == 3 else None

        observed["job"] = wait_until(recorded, what="a heartbeat recording progress")
        worker.stop()  # as on Ctrl-C: the handler's next check() raises
        ctx.check()

    worker.handlers = {KIND_SCORE: handler}
    worker.run_forever()
    assert observed["job"].progress_done == 3 and observed["job"].tokens_done == 300
    assert observed["job"].tokens_per_s > 0
    with sessions() as session:
        job = session.get(Job, job_id)
        assert (job.status, job.attempts, job.claim_token) == (QUEUED, 0, None)


def test_cancelled_run_stops_its_worker(settings, sessions):
    with sessions() as session:
        job_id = queue.enqueue(session=session, kind=KIND_SCORE, payload={}).id
        session.commit()
    checks = []

    def handler(ctx: JobContext):
        with ctx.sessions() as session:
            queue.cancel(session=session, job_ids=[job_id])
            session.commit()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            checks.append(1)
            ctx.check()  # raises once a heartbeat finds the job cancelled
            time.sleep(0.05)

    Worker(settings, device="cpu", handlers={KIND_SCORE: handler}).run_forever(exit_when_idle=True)
    with sessions() as session:
        assert session.get(Job, job_id).status == CANCELLED
    assert 0 < len(checks) < 150


def test_pooled_worker_claims_shards_of_one_run_and_commits_each(settings, sessions, tiny_llama_dir):
    first = make_run(sessions, tiny_llama_dir, shard_chars=1)  # five one-document shards
    with sessions() as session:
        corpus = corpora.create_corpus(session=session, name="other", documents=[corpora.DocumentIn(text="x y z", source="o")])
        checkpoint = runs.get_run(session=session, run_id=first).checkpoint
        second, _ = runs.create_run(session=session, checkpoint_id=checkpoint.id, corpus_id=corpus.id,
                                    options=RunOptions(max_length=16), shard_chars=1)
        session.commit()
        second = second.id
    settings.claim_shards = 3
    worker = Worker(settings, device="cpu")
    assert worker.run_one()  # one pool: three shards of the first run, none of the second
    with sessions() as session:
        done = session.execute(select(Job.run_id, func.count()).where(Job.status == DONE).group_by(Job.run_id)).all()
        assert dict(done) == {first: 3}
        assert session.scalar(select(func.count(TokenScores.id)).where(TokenScores.run_id == first)) == 3
    worker.run_forever(exit_when_idle=True)
    assert status(sessions, first).status == DONE and status(sessions, second).status == DONE
    with sessions() as session:
        assert session.scalar(select(func.count(TokenScores.id))) == 6


def test_worker_command_line_copies_settings(tmp_path):
    from app.core.config import Settings
    from workers.cli import GPU_CLAIM_SHARDS, GPU_MAX_BATCH_TOKENS, add_arguments, worker_settings

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    settings = Settings(_env_file=None, data_dir=tmp_path, max_batch_tokens=2048)
    on_gpu = worker_settings(parser.parse_args(["--pack"]), settings, "cuda:0")
    # Set in the settings: kept; not set anywhere: the GPU's default; flags: applied.
    assert (on_gpu.max_batch_tokens, on_gpu.claim_shards, on_gpu.pack, on_gpu.compile) == (2048, GPU_CLAIM_SHARDS, True, False)
    on_cpu = worker_settings(parser.parse_args(["--max-batch-tokens", "512", "--compile"]), settings, "cpu")
    assert (on_cpu.max_batch_tokens, on_cpu.claim_shards, on_cpu.pack, on_cpu.compile) == (512, 1, False, True)
    assert worker_settings(parser.parse_args([]), settings.model_copy(update={"claim_shards": 2}), "cuda").claim_shards == 2
    # The caller's settings are untouched.
    assert (settings.max_batch_tokens, settings.claim_shards, settings.pack, settings.compile) == (2048, 1, False, False)
    fresh = Settings(_env_file=None, data_dir=tmp_path)
    assert worker_settings(parser.parse_args([]), fresh, "cuda").max_batch_tokens == GPU_MAX_BATCH_TOKENS
