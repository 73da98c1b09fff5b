"""The worker process: reap expired leases, claim a job, run its handler with a heartbeat, repeat.

One worker process per device. Any number of workers, on any number of hosts, can share one
PostgreSQL database; on the embedded SQLite database, a few workers on the same machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import traceback
from typing import TYPE_CHECKING, Callable

from app.core.config import Settings
from app.core.log_format import job_fields
from app.db.availability import DATABASE_ERRORS, database_message
from app.db.engine import make_engine, make_sessionmaker
from app.services import queue
from app.vocab import JOB_KINDS, KIND_SCORE, KIND_SUMMARIZE, KIND_TRAIN
from workers.context import JobContext, JobInterrupted, PermanentError, TokenizerCache
from workers.outage import Backoff

if TYPE_CHECKING:
    from workers.metrics import WorkerMetrics
    from workers.scoring.model_cache import ModelCache

log = logging.getLogger("focalscope.worker")

# How often an idle worker looks for work: short enough that the demo feels live, long enough
# that idle workers cost the database nothing noticeable.
IDLE_POLL_SECONDS = 1.0

Handler = Callable[[JobContext], None]


def _handlers(models: Callable[[], ModelCache]) -> dict[str, Handler]:
    # Imported on first use: `summarize` needs no torch, and a worker started for summaries only
    # should not pay for importing it.
    def score(ctx: JobContext) -> None:
        from workers.scoring.job import run_score_shard

        run_score_shard(ctx, models())

    def summarize(ctx: JobContext) -> None:
        from workers.summarize_job import run_summarize

        run_summarize(ctx)

    def train(ctx: JobContext) -> None:
        from workers.training.job import run_train

        run_train(ctx)

    return {KIND_SCORE: score, KIND_SUMMARIZE: summarize, KIND_TRAIN: train}


class Worker:
    def __init__(
        self, settings: Settings, *, device: str = "cpu", kinds: tuple[str, ...] = JOB_KINDS,
        name: str | None = None, handlers: dict[str, Handler] | None = None,
        clock: queue.LeaseClock = queue.LEASE_CLOCK, metrics: WorkerMetrics | None = None,
    ):
        self.settings = settings
        self.clock = clock
        self.device = device
        self.kinds = kinds
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{device}"
        self.engine = make_engine(settings.db_url)
        self.sessions = make_sessionmaker(self.engine)
        self.handlers = {**_handlers(self.scoring_models), **(handlers or {})}
        # Kinds whose handler a caller replaced (tests): those always run one job at a time.
        self._custom = set(handlers or {})
        self.stopping = threading.Event()
        self._last_reap = 0.0
        # The model and scorer kept between score jobs; made by the first one (see scoring_models).
        self._models: ModelCache | None = None
        self.tokenizers = TokenizerCache()
        self.metrics = metrics

    def scoring_models(self) -> ModelCache:
        """This worker's ModelCache, made on first use: importing the scoring path imports torch,
        which a worker that only summarizes never needs."""
        if self._models is None:
            from workers.scoring.model_cache import ModelCache

            self._models = ModelCache(self.settings, device=self.device)
        return self._models

    def stop(self) -> None:
        self.stopping.set()

    def run_forever(self, *, exit_when_idle: bool = False) -> int:
        """Work until stopped (or, with exit_when_idle, until the queue has nothing for us).
        Returns the number of jobs handled."""
        handled = 0
        log.info("worker %s started (kinds: %s)", self.name, ", ".join(self.kinds))
        outage = Backoff()
        while not self.stopping.is_set():
            try:
                worked = self.run_one()
            except DATABASE_ERRORS as exc:
                self.stopping.wait(outage.failed(exc))
                continue
            outage.recovered()
            if worked:
                handled += 1
            elif exit_when_idle:
                break
            else:
                self.stopping.wait(IDLE_POLL_SECONDS)
        self.engine.dispose()
        return handled

    def run_one(self) -> bool:
        """Claim and run one job; False when there was nothing to claim."""
        self._reap_if_due()
        with self.sessions() as session:
            claim = queue.claim_next(
                session=session, worker=self.name, kinds=self.kinds, lease_seconds=self.settings.lease_seconds,
                clock=self.clock,
            )
            session.commit()
        if claim is None:
            return False
        self._run(claim)
        return True

    def _reap_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_reap < self.settings.lease_seconds / 4:
            return
        self._last_reap = now
        with self.sessions() as session:
            requeued, failed = queue.reap_expired(session=session, clock=self.clock)
            session.commit()
        if requeued or failed:
            log.warning("reaped expired leases: %d requeued, %d failed", requeued, failed)

    def _run(self, claim: queue.Claim) -> None:
        if claim.kind == KIND_SCORE and self.settings.claim_shards > 1 and KIND_SCORE not in self._custom:
            self._run_score_pool(claim)
            return
        with self._held(claim) as ctx:
            try:
                self.handlers[claim.kind](ctx)
                outcome = None
            except Exception as exc:  # settled below: recorded on the job, never lost
                outcome = exc
            self._settle(ctx, outcome)

    def _run_score_pool(self, first: queue.Claim) -> None:
        """Score up to `claim_shards` shards of the first shard's run as one pool: the scorer pulls
        further claims (lazily, from its tokenizer thread) as it needs work; each shard still
        commits, fails or is released on its own."""
        from workers.scoring.job import run_score_shards

        with contextlib.ExitStack() as held:
            contexts: list[JobContext] = []

            def claims():
                contexts.append(held.enter_context(self._held(first)))
                yield contexts[-1]
                for _ in range(self.settings.claim_shards - 1):
                    if self.stopping.is_set():
                        return
                    with self.sessions() as session:
                        claim = queue.claim_next(session=session, worker=self.name, kinds=(KIND_SCORE,),
                                                 lease_seconds=self.settings.lease_seconds, run_id=first.run_id,
                                                 clock=self.clock)
                        session.commit()
                    if claim is None:
                        return
                    contexts.append(held.enter_context(self._held(claim)))
                    yield contexts[-1]

            try:
                outcomes = run_score_shards(claims(), self.scoring_models())
            except Exception as exc:  # before any shard was scored (e.g. the model would not load)
                outcomes = {ctx.claim.job_id: exc for ctx in contexts}
            for ctx in contexts:
                self._settle(ctx, outcomes.get(ctx.claim.job_id, JobInterrupted("not scored in this pool")))

    @contextlib.contextmanager
    def _held(self, claim: queue.Claim):
        """A job's context with its heartbeat running for as long as the block lasts."""
        ctx = JobContext(
            claim=claim, settings=self.settings, sessions=self.sessions, device=self.device,
            stopping=self.stopping, tokenizers=self.tokenizers, clock=self.clock,
        )
        log.info("job %d (%s, attempt %d) claimed", claim.job_id, claim.kind, claim.attempts, extra=job_fields(claim))
        if self.metrics:
            self.metrics.claimed()
        beat_stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(ctx, beat_stop), daemon=True)
        beat.start()
        try:
            yield ctx
        finally:
            beat_stop.set()
            beat.join()

    def _settle(self, ctx: JobContext, outcome: BaseException | None) -> None:
        """Record how a job ended: done (None), handed back (interrupted), lost, or failed. Where the
        database cannot take the record, the job is left to its lease, which runs out and requeues it."""
        try:
            self._record_outcome(ctx, outcome)
        except DATABASE_ERRORS as exc:
            log.warning("job %d: its outcome could not be recorded (database unavailable: %s); it goes back to "
                        "the queue when its lease runs out", ctx.claim.job_id, database_message(exc),
                        extra=job_fields(ctx.claim))

    def _record_outcome(self, ctx: JobContext, outcome: BaseException | None) -> None:
        claim = ctx.claim
        fields = job_fields(claim)
        if outcome is None:
            ended = "done"
            log.info("job %d done", claim.job_id, extra=fields)
        elif isinstance(outcome, JobInterrupted):
            ended = "interrupted"
            if not ctx.lost.is_set():
                with self.sessions() as session:
                    queue.release(session=session, claim=claim)
                    session.commit()
            log.warning("job %d interrupted: %s", claim.job_id, outcome.reason, extra=fields)
        elif isinstance(outcome, queue.LeaseLost):
            ended = "lost"
            log.warning("%s", outcome, extra=fields)
        else:
            ended = "failed"
            retry = not isinstance(outcome, PermanentError)
            with self.sessions() as session:
                status = queue.fail(session=session, claim=claim, error=_describe(outcome), retry=retry)
                session.commit()
            log.error("job %d failed (%s): %s", claim.job_id, status, outcome, extra=fields)
        if self.metrics:
            self.metrics.settled(kind=claim.kind, outcome=ended, tokens=ctx.snapshot().tokens)

    def _heartbeat(self, ctx: JobContext, stop: threading.Event) -> None:
        while not stop.wait(self.settings.heartbeat_seconds):
            progress = ctx.snapshot()
            try:
                with self.sessions() as session:
                    ours = queue.heartbeat(
                        session=session, claim=ctx.claim, lease_seconds=self.settings.lease_seconds,
                        progress_done=progress.done, tokens_done=progress.tokens,
                        tokens_per_s=progress.rate(), detail=progress.detail or None, clock=self.clock,
                    )
                    session.commit()
            except Exception:  # a database hiccup: try again at the next beat, the lease has slack
                log.exception("heartbeat failed for job %d", ctx.claim.job_id, extra=job_fields(ctx.claim))
                continue
            if not ours:
                ctx.lost.set()
                return


def _describe(exc: BaseException) -> str:
    """The error text stored on the job: the message first (what the UI shows), then the traceback.
    A database error shows the driver's message, not the statement and its parameters."""
    if isinstance(exc, DATABASE_ERRORS):
        return f"database error: {database_message(exc)}\n\n{''.join(traceback.format_tb(exc.__traceback__))}"
    return f"{type(exc).__name__}: {exc}\n\n{''.join(traceback.format_exception(exc))}"
