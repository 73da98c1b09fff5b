"""Terminal output for the CLI: tables, progress bars that follow runs, and the in-process worker
that `--here` runs them with."""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator, Sequence

from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.schemas.run import RunProgress
from app.services import runs
from app.vocab import CANCELLED, DONE, FAILED, QUEUED, RUNNING, TERMINAL_STATUSES

POLL_SECONDS = 1.0


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def bar(done: int, total: int, width: int = 24) -> str:
    filled = int(width * done / total) if total else 0
    return "[" + "#" * filled + "." * (width - filled) + f"] {done}/{total}"


def follow_runs(sessions: sessionmaker[Session], run_ids: list[int], *, label: str) -> str:
    """One progress bar over the documents of all the runs until every one ends; returns their
    overall status (done only when every run is done)."""
    from tqdm import tqdm

    with tqdm(total=0, unit="doc", desc=label, file=sys.stderr, dynamic_ncols=True) as progress:
        while True:
            with sessions() as session:
                state = overall(list(runs.run_progress(session=session, run_ids=run_ids).values()))
            progress.total = state.documents_total
            progress.n = state.documents_done
            if state.tokens_per_s:
                rate = f"{state.tokens_per_s:,.0f} tok/s"
            else:
                rate = "waiting for a worker" if state.status == QUEUED else "working"
            progress.set_postfix_str(f"{state.status}, {state.tokens_done:,} tokens, {rate}")
            progress.refresh()
            if state.status in TERMINAL_STATUSES:
                if state.errors:
                    print("\n".join(f"error: {e}" for e in state.errors[:5]), file=sys.stderr)
                return state.status
            time.sleep(POLL_SECONDS)


def overall(states: list[RunProgress]) -> RunProgress:
    """Several runs' progress as one: counts add up; the status is the runs' own while they share it,
    else running while any run is live, else failed if any failed, else cancelled."""
    statuses = {state.status for state in states}
    if len(statuses) == 1:
        status = statuses.pop()
    elif statuses - TERMINAL_STATUSES:
        status = RUNNING
    else:
        status = FAILED if FAILED in statuses else CANCELLED
    rates = [state.tokens_per_s for state in states if state.tokens_per_s]
    return RunProgress(
        status=status, errors=[error for state in states for error in state.errors],
        tokens_per_s=sum(rates) if rates else None,
        **{name: sum(getattr(state, name) for state in states) for name in (
            "shards_total", "shards_done", "shards_failed", "documents_total", "documents_done", "tokens_done")},
    )


@contextmanager
def worker_in_process(settings: Settings, device: str) -> Iterator[None]:
    """A worker claiming jobs in a thread of this process while the block runs (`--here`)."""
    from workers.loop import Worker
    from workers.models import resolve_device

    worker = Worker(settings, device=str(resolve_device(device)))
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        worker.stop()
        thread.join()


EXIT_CODES = {DONE: 0, FAILED: 1, CANCELLED: 1}
