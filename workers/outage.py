"""A worker outlives its database going away (a PostgreSQL restart, a failover, a full disk).

While the database cannot be reached the worker waits, with growing pauses, and tries again; it
never exits on it. A job whose outcome could not be recorded is simply left: its lease runs out and
the queue hands it out again, so nothing is lost and nothing is done twice (completion is fenced by
the claim token).
"""

from __future__ import annotations

import logging

from app.db.availability import database_message

log = logging.getLogger("focalscope.worker")

FIRST_PAUSE_S = 0.5
# Long enough not to hammer a recovering server, short enough that work resumes soon after it is back.
MAX_PAUSE_S = 10.0


class Backoff:
    """Pauses between tries while the database is away: 0.5 s, 1 s, 2 s, … up to MAX_PAUSE_S."""

    def __init__(self) -> None:
        self.failures = 0

    def failed(self, exc: BaseException) -> float:
        self.failures += 1
        pause = min(FIRST_PAUSE_S * 2 ** (self.failures - 1), MAX_PAUSE_S)
        if self.failures == 1:
            log.warning("database unavailable (%s); trying again, at most every %.0f s", database_message(exc), MAX_PAUSE_S)
        return pause

    def recovered(self) -> None:
        if self.failures:
            log.info("database reachable again after %d failed tries", self.failures)
            self.failures = 0
