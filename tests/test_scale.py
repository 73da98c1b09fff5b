"""Scale: one worker scoring shard after shard keeps flat memory; a killed worker's finished shards
stay finished (never rescored); pooled shards commit each on its own claim."""

from __future__ import annotations

import threading

import numpy as np
import torch
from sqlalchemy import select, update
from sqlalchemy.orm import undefer

from app.models.corpus import Document
from app.models.job import Job
from app.models.run import RunSummary, TokenScores
from app.schemas.run import RunOptions
from app.services import queue, runs, summaries
from app.vocab import DONE, KIND_SCORE, RUNNING
from bench.common import rss_mb
from tests.support.data import TEXTS, make_run
from tests.support.timing import clock_past_leases
from workers.context import JobContext
from workers.loop import Worker
from workers.models import load_safetensors_dir
from workers.scoring.job import run_score_shards
from workers.scoring.model_cache import ModelCache
from workers.scoring.pipeline import ShardInput
from workers.scoring.scorer import Scorer

WORDS = "when shall we three meet again in thunder lightning or rain fair is foul and".split()


def shard_stream(n_shards: int, docs_per_shard: int = 8):
    """Distinct random documents of 20–400 words, shard after shard."""
    generator = np.random.default_rng(0)
    for shard in range(n_shards):
        documents = []
        for doc in range(docs_per_shard):
            words = generator.choice(WORDS, size=int(generator.integers(20, 400)))
            documents.append((shard * docs_per_shard + doc, " ".join(words)))
        yield ShardInput(shard, documents)


def test_memory_stays_flat_over_many_shards(tiny_llama_dir):
    loaded = load_safetensors_dir(tiny_llama_dir, device=torch.device("cpu"), dtype=torch.float32)
    scorer = Scorer(loaded, RunOptions(max_length=64), max_batch_tokens=1024, pool_tokens=4096)
    n_shards, warm_up = 140, 40
    samples, tokens = [], 0
    for index, (key, results) in enumerate(scorer.score_shards(shard_stream(n_shards))):
        assert key == index and len(results) == 8
        tokens += sum(r.n_tokens for r in results)
        if index >= warm_up and index % 20 == 0:
            samples.append(rss_mb())
    assert index == n_shards - 1 and tokens > 25 * scorer.pool_tokens
    assert scorer.staging.allocated == 1  # one batch at a time on a CPU: one staging slot, reused
    print(f"{tokens} tokens; RSS after warm-up (MiB): {samples}")
    # After warm-up, resident memory does not grow with the number of tokens scored.
    assert max(samples) - samples[0] < 25, samples


def test_killed_workers_finished_shards_are_not_rescored(settings, sessions, tiny_llama_dir):
    run_id = make_run(sessions, tiny_llama_dir, shard_chars=1)  # one document per shard
    doomed = Worker(settings, device="cpu", name="doomed")
    assert doomed.run_one() and doomed.run_one()
    # It claims a third shard and is killed holding it: no heartbeat, no release, no completion.
    with sessions() as session:
        lost = queue.claim_next(session=session, worker="doomed", kinds=(KIND_SCORE,), lease_seconds=settings.lease_seconds)
        session.commit()
    with sessions() as session:
        finished = dict(session.execute(select(TokenScores.document_id, TokenScores.id)).all())
    assert len(finished) == 2
    # The survivor's clock is past the doomed worker's lease: it reaps and re-claims that shard.
    survivor = Worker(settings, device="cpu", name="survivor", clock=clock_past_leases(settings))
    assert survivor.run_forever(exit_when_idle=True) == 4  # 3 shards + summary
    with sessions() as session:
        rows = dict(session.execute(select(TokenScores.document_id, TokenScores.id)).all())
        jobs = session.scalars(select(Job).where(Job.run_id == run_id, Job.kind == KIND_SCORE)).all()
        state = runs.run_progress(session=session, run_ids=[run_id])[run_id]
    assert state.status == DONE and len(rows) == len(TEXTS)
    assert {doc: rows[doc] for doc in finished} == finished  # the same rows, never rewritten
    by_worker = {job.id: (job.worker, job.attempts) for job in jobs}
    assert by_worker[lost.job_id] == ("survivor", 2)
    assert sorted(by_worker.values()).count(("doomed", 1)) == 2


def test_a_write_committed_while_the_summary_reads_does_not_fail_it(settings, sessions, tiny_llama_dir, monkeypatch):
    """The summarize job's heartbeat commits while the job reads the run; on SQLite a transaction that
    has read and then writes fails at once ("database is locked") when another write committed in
    between, so the job must not write in the transaction it read in."""
    run_id = make_run(sessions, tiny_llama_dir)
    build = summaries.build_summary

    def build_then_someone_writes(*, session, run_id):
        summary = build(session=session, run_id=run_id)
        with sessions() as other:  # as the job's heartbeat may: a write, committed (a no-op update would not do)
            other.execute(update(Job).where(Job.run_id == run_id, Job.kind == KIND_SCORE).values(priority=Job.priority + 1))
            other.commit()
        return summary

    monkeypatch.setattr(summaries, "build_summary", build_then_someone_writes)
    assert Worker(settings, device="cpu", name="one").run_forever(exit_when_idle=True) == 2  # shard + summary
    with sessions() as session:
        statuses = session.scalars(select(Job.status).where(Job.run_id == run_id)).all()
        assert statuses == [DONE, DONE] and session.get(RunSummary, run_id).n_tokens > 0


def test_pooled_shards_commit_each_on_its_own_claim(settings, sessions, tiny_llama_dir):
    run_id = make_run(sessions, tiny_llama_dir, shard_chars=1)
    claims = []
    for _ in TEXTS:
        with sessions() as session:
            claims.append(queue.claim_next(session=session, worker="gpu", kinds=(KIND_SCORE,), lease_seconds=60))
            session.commit()
    stolen = claims[2]
    with sessions() as session:  # another worker took this one over meanwhile
        session.execute(update(Job).where(Job.id == stolen.job_id).values(claim_token="someone-else"))
        session.commit()
    stopping, models = threading.Event(), ModelCache(settings, device="cpu")
    contexts = [JobContext(claim=c, settings=settings, sessions=sessions, device="cpu", stopping=stopping)
                for c in claims]
    outcomes = run_score_shards(contexts, models)
    assert isinstance(outcomes.pop(stolen.job_id), queue.LeaseLost)
    assert set(outcomes.values()) == {None}
    with sessions() as session:
        statuses = dict(session.execute(select(Job.id, Job.status).where(Job.kind == KIND_SCORE)).all())
        stored = {
            row.document_id: (np.asarray(row.logprob), np.asarray(row.top_ids), text)
            for row, text in session.execute(
                select(TokenScores, Document.text).join(Document, Document.id == TokenScores.document_id)
                .where(TokenScores.run_id == run_id).options(undefer("*"))
            ).all()
        }
    assert statuses.pop(stolen.job_id) == RUNNING and set(statuses.values()) == {DONE}
    assert len(stored) == len(TEXTS) - 1 and stolen.payload["document_ids"][0] not in stored
    # Pooling changes nothing: each document's arrays equal scoring it alone.
    loaded = load_safetensors_dir(tiny_llama_dir, device=torch.device("cpu"), dtype=torch.float32)
    for document_id, (logprob, top_ids, text) in stored.items():
        [alone] = Scorer(loaded, RunOptions(max_length=16), max_batch_tokens=16).score([(document_id, text)])
        np.testing.assert_allclose(logprob, alone.arrays["logprob"], atol=1e-5)
        np.testing.assert_array_equal(top_ids, alone.arrays["top_ids"].reshape(-1))


def test_half_precision_cpu_memory_stays_flat_over_batch_shapes(tiny_llama_dir):
    """bf16 CPU kernels (oneDNN, brgemm) keep one compiled kernel per input shape unless the scorer
    bounds the shapes they see; a corpus brings a new [rows, width] every batch."""
    loaded = load_safetensors_dir(tiny_llama_dir, device=torch.device("cpu"), dtype=torch.bfloat16)
    scorer = Scorer(loaded, RunOptions(max_length=256, dtype="bfloat16"), max_batch_tokens=1024)
    generator = np.random.default_rng(0)

    def document(n_words: int) -> list[tuple[int, str]]:
        return [(n_words, " ".join(generator.choice(WORDS, size=n_words)))]

    for n_words in (5, 50, 120):  # warm-up: first calls allocate thread pools and buffers
        scorer.score(document(n_words))
    before = rss_mb()
    widths = set()
    for n_words in range(8, 240):  # one batch per document: ~230 distinct window widths
        [result] = scorer.score(document(n_words))
        widths.add(result.n_tokens)
    grown = rss_mb() - before
    print(f"{len(widths)} widths; RSS grew {grown:.0f} MiB")
    assert len(widths) > 150
    assert grown < 100, grown
