"""Terminal output: tables and progress bars for the CLI."""

from __future__ import annotations

import sys
import time
from typing import Callable, Sequence

from sqlalchemy.orm import Session, sessionmaker

from app.services import runs
from app.vocab import CANCELLED, DONE, FAILED, QUEUED, TERMINAL_STATUSES

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


def follow_run(sessions: sessionmaker[Session], run_id: int, *, tick: Callable[[], None] | None = None) -> str:
    """Show a run's progress until it ends; returns its final status. `tick` runs between polls
    (an in-process worker's step, for `score --here`)."""
    from tqdm import tqdm

    with tqdm(total=0, unit="doc", desc=f"run {run_id}", file=sys.stderr, dynamic_ncols=True) as progress:
        while True:
            with sessions() as session:
                state = runs.run_progress(session=session, run_ids=[run_id])[run_id]
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
            if tick is not None:
                tick()
            else:
                time.sleep(POLL_SECONDS)


EXIT_CODES = {DONE: 0, FAILED: 1, CANCELLED: 1}
