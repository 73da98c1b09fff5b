"""The `summarize` job: a run's aggregates, stored with the job's done mark in one transaction.

Computed in a read-only transaction first, then written in a second one whose first statement is a
write, so that on SQLite the write waits for the lock (summaries.build_summary says why)."""

from __future__ import annotations

from app.services import queue, summaries
from workers.context import JobContext


def run_summarize(ctx: JobContext) -> None:
    with ctx.sessions() as session:
        summary = summaries.build_summary(session=session, run_id=ctx.claim.run_id)
    with ctx.sessions() as session:
        summaries.store_summary(session=session, summary=summary)
        queue.complete(session=session, claim=ctx.claim, tokens_done=summary.n_tokens, clock=ctx.clock)
        session.commit()
