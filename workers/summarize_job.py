"""The `summarize` job: a run's aggregates, stored with the job's done mark in one transaction."""

from __future__ import annotations

from app.services import queue, summaries
from workers.context import JobContext


def run_summarize(ctx: JobContext) -> None:
    with ctx.sessions() as session:
        summary = summaries.compute_summary(session=session, run_id=ctx.claim.run_id)
        queue.complete(session=session, claim=ctx.claim, tokens_done=summary.n_tokens, clock=ctx.clock)
        session.commit()
