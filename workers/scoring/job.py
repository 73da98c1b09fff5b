"""The `score` job: score claimed shards of a run and commit each one, with its done mark, in one
transaction conditioned on its claim.

`run_score_shard(ctx, models)` handles one claimed shard (the worker loop's unit).
`run_score_shards(ctxs, models)` takes several claimed shards of one run — how a GPU worker gets enough work per pool — and scores
them as one stream: documents are read and tokenized ahead of the device, shards are pooled into
full batches, and each shard is committed by the writer thread as soon as it is scored, while the
device goes on with the next. `ctxs` may be a lazy iterator that claims the next shard only when
the feeder asks for it, so a worker holds no more claims than it is about to score. `models` is the
worker's ModelCache: the model and scorer it keeps between jobs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from itertools import chain

from sqlalchemy import select

from app.models.corpus import Document
from app.models.run import TokenScores
from app.schemas.run import RunOptions
from app.services import checkpoints, runs
from workers.checkpoint_fetch import CheckpointSource
from workers.context import JobContext, JobInterrupted
from workers.scoring.model_cache import ModelCache
from workers.scoring.pipeline import ShardInput
from workers.scoring.writer import ShardWriter, commit_shard

log = logging.getLogger("focalscope.worker")


def run_score_shard(ctx: JobContext, models: ModelCache) -> None:
    outcome = run_score_shards([ctx], models)[ctx.claim.job_id]
    if outcome is not None:
        raise outcome


def run_score_shards(contexts: Iterable[JobContext], models: ModelCache) -> dict[int, BaseException | None]:
    """Score and commit claimed shards of one run; returns each job's outcome: None when committed,
    else the exception that stopped it (queue.LeaseLost, JobInterrupted, a scoring error), for the
    caller to record on that job as the worker loop does for a single shard."""
    pending = iter(contexts)
    first = next(pending)
    seen = [first]  # the contexts taken from `pending` so far (by the feeder thread)
    with first.sessions() as session:
        run = runs.get_run(session=session, run_id=first.claim.run_id)
        options = RunOptions.model_validate(run.options)
        checkpoint = run.checkpoint
        run_id, fingerprint = run.id, checkpoint.tokenizer_fingerprint
        has_vocabulary = checkpoints.load_vocabulary(session=session, fingerprint=fingerprint) is not None
        source = CheckpointSource.of(checkpoint)
    scorer = models.get_scorer(source, options, report=fetch_reporter(first))
    if not has_vocabulary:
        with first.writing() as session:
            checkpoints.store_vocabulary(session=session, fingerprint=fingerprint,
                                         tokens=scorer.loaded.display_vocabulary())
            session.commit()

    outcomes: dict[int, BaseException | None] = {}
    started = time.monotonic()
    tokens = 0
    with ShardWriter() as writer:
        futures = {}
        try:
            for ctx, results in scorer.score_shards(_shard_inputs(first, pending, seen), check=_check(seen),
                                                    on_progress=_progress(seen)):
                tokens += sum(r.n_tokens for r in results)
                elapsed = time.monotonic() - started
                rate = tokens / elapsed if elapsed > 0 else None
                futures[ctx.claim.job_id] = writer.submit(commit_shard, ctx, run_id, results, rate)
        except Exception as exc:  # every shard not yet handed to the writer shares the error
            outcomes.update({ctx.claim.job_id: exc for ctx in seen if ctx.claim.job_id not in futures})
    outcomes.update({job_id: future.exception() for job_id, future in futures.items()})
    if tokens:
        elapsed = time.monotonic() - started
        log.info("run %d: %d shards, %d tokens in %.1fs (%.0f tokens/s, padding %.1f%%)", run_id, len(futures), tokens,
                 elapsed, tokens / elapsed, 100 * scorer.counters.padding_fraction, extra={"run_id": run_id})
    return outcomes


def _shard_inputs(first: JobContext, pending: Iterator[JobContext], seen: list[JobContext]):
    """Each claimed shard's documents not yet scored, read lazily (on the scorer's feeder thread)."""
    for ctx in chain([first], pending):
        if ctx is not first:
            if ctx.claim.run_id != first.claim.run_id:
                raise ValueError("run_score_shards takes shards of one run")
            seen.append(ctx)
        document_ids = list(ctx.claim.payload["document_ids"])
        with ctx.sessions() as session:
            already = set(session.scalars(
                select(TokenScores.document_id)
                .where(TokenScores.run_id == ctx.claim.run_id, TokenScores.document_id.in_(document_ids))
            ))
            documents = session.execute(
                select(Document.id, Document.text).where(Document.id.in_(document_ids)).order_by(Document.position)
            ).all()
        if len(documents) != len(document_ids):
            log.warning("shard of run %d: %d documents were deleted", ctx.claim.run_id, len(document_ids) - len(documents))
        yield ShardInput(ctx, [(d.id, d.text) for d in documents if d.id not in already])


def fetch_reporter(ctx: JobContext):
    """A checkpoint fetch's bytes in the job's progress detail (GET /jobs/{id}); it stays there once
    complete (bytes_done = bytes_total), a record that this job's worker fetched the checkpoint. A
    job cancelled or a worker stopping mid-fetch stops it at the next megabyte (its copy is dropped)."""
    def report(progress: dict) -> None:
        ctx.check()
        ctx.report(detail={"checkpoint_fetch": progress})

    return report


def _check(seen: list[JobContext]):
    def check() -> None:
        # One lost shard does not stop the others: its commit fails alone (LeaseLost).
        if seen[0].stopping.is_set():
            raise JobInterrupted("the worker is shutting down")
        if all(ctx.lost.is_set() for ctx in seen):
            raise JobInterrupted("the job is no longer ours (lease lost or cancelled)")

    return check


def _progress(seen: list[JobContext]):
    def report(documents: int, tokens: int) -> None:
        # Progress per batch while there is one shard; pooled shards report as each one commits.
        if len(seen) == 1:
            seen[0].report(done=documents, tokens=tokens)

    return report
