"""What a job handler gets: its claim, a session factory, progress reporting and a stop flag.

Handlers report progress through `JobContext.report(...)`; the heartbeat thread (workers.loop)
flushes it to the job row with the lease extension, so progress costs the handler no SQL. A
handler calls `ctx.check()` between units of work (a batch, a training step): it raises
`JobInterrupted` once the job is no longer ours (lease lost, cancelled) or the worker is stopping.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.db.engine import writing_session
from app.services.queue import LEASE_CLOCK, Claim, LeaseClock


class JobInterrupted(Exception):
    """Stop working on this job now; `reason` says why (shutdown, lease lost, cancelled)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class PermanentError(Exception):
    """An error that retrying cannot fix (a corrupt checkpoint, an unsupported model): the job
    fails at once instead of using up its attempts."""


@dataclass
class Progress:
    done: int = 0
    tokens: int = 0
    detail: dict = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def rate(self) -> float | None:
        elapsed = time.monotonic() - self.started
        return self.tokens / elapsed if elapsed > 0 and self.tokens else None


@dataclass
class TokenizerCache:
    """Tokenizers a worker keeps between jobs: SmolLM2's takes seconds to read from its GGUF file.
    (Typed as Any: this module is imported by workers that never load transformers.)"""

    smollm2: Any = None
    # BPE tokenizers trained by this worker, by (hash of the texts, vocabulary size, context): a study
    # trains dozens of models on one corpus, and training the BPE again would give the same vocabulary.
    bpe: dict = field(default_factory=dict)


@dataclass
class JobContext:
    claim: Claim
    settings: Settings
    sessions: sessionmaker[Session]
    device: str
    stopping: threading.Event
    # Owned by the Worker, shared across its jobs. Scoring's model and scorer live in its ModelCache.
    tokenizers: TokenizerCache = field(default_factory=lambda: TokenizerCache())
    # The worker's lease clock: every lease write and check of the job goes through it.
    clock: LeaseClock = LEASE_CLOCK
    lost: threading.Event = field(default_factory=threading.Event)
    progress: Progress = field(default_factory=Progress)
    # Called (from the handler's thread) after each report; the CLI's progress bar hooks in here.
    on_report: Callable[[Progress], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def report(self, *, done: int | None = None, tokens: int | None = None, detail: dict | None = None) -> None:
        with self._lock:
            if done is not None:
                self.progress.done = done
            if tokens is not None:
                self.progress.tokens = tokens
            if detail is not None:
                self.progress.detail = detail
        if self.on_report is not None:
            self.on_report(self.progress)

    def writing(self) -> Session:
        """A session for a transaction that reads before it writes: on SQLite it takes the write lock
        up front (app.db.engine.writing says why), so that a write the heartbeat commits meanwhile
        makes it wait instead of failing with "database is locked"."""
        return writing_session(self.sessions)

    def snapshot(self) -> Progress:
        with self._lock:
            return Progress(self.progress.done, self.progress.tokens, dict(self.progress.detail), self.progress.started)

    def check(self) -> None:
        if self.lost.is_set():
            raise JobInterrupted("the job is no longer ours (lease lost or cancelled)")
        if self.stopping.is_set():
            raise JobInterrupted("the worker is shutting down")
