"""Database writes behind the device: one thread commits scored shards while the next ones score.

Each shard is still one transaction — its done mark (conditioned on our claim and an unexpired
lease), every document's packed arrays, and the run's summary trigger commit together or not at
all — so a worker killed at any moment leaves finished shards finished and others queued. Only the
waiting moves off the scoring thread: packing rows and the INSERT run here. At most `max_pending`
shards wait for the writer (the scorer blocks beyond that), so memory stays flat when the database
is slower than the device.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait

from app.services import queue, runs, scores
from app.services.scores import DocumentScores
from workers.context import JobContext

log = logging.getLogger("focalscope.worker")

# Shards waiting to be written while the scorer works on: two keeps the database busy without
# holding more than two shards' arrays in memory.
MAX_PENDING_SHARDS = 2


def commit_shard(ctx: JobContext, run_id: int, results: list[DocumentScores], tokens_per_s: float | None) -> int:
    """Write one shard's scores and mark its job done, in one transaction; raises queue.LeaseLost
    (and writes nothing) when the job is no longer ours. Returns the tokens written."""
    n_tokens = sum(r.n_tokens for r in results)
    with ctx.sessions() as session:
        queue.complete(session=session, claim=ctx.claim, tokens_done=n_tokens, tokens_per_s=tokens_per_s,
                       clock=ctx.clock)
        scores.store_scores(session=session, run_id=run_id, documents=results)
        runs.on_shard_done(session=session, run_id=run_id)
        session.commit()
    ctx.report(done=ctx.claim.progress_total, tokens=n_tokens)
    return n_tokens


class ShardWriter:
    """A single writer thread with a bounded backlog; use as a context manager (exit waits for
    every submitted shard)."""

    def __init__(self, max_pending: int = MAX_PENDING_SHARDS):
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="focalscope-writer")
        self._pending: deque[Future] = deque()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        """Queue fn(*args, **kwargs) on the writer thread, first waiting while max_pending shards
        are already queued. Its outcome (an error too) is on the returned future."""
        while self._pending and self._pending[0].done():
            self._pending.popleft()
        while len(self._pending) >= self.max_pending:
            wait([self._pending.popleft()])
        future = self._executor.submit(fn, *args, **kwargs)
        self._pending.append(future)
        return future

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self._executor.shutdown(wait=True)
