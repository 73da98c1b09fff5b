"""Time in tests without fixed sleeps: poll a condition with a deadline, and a lease clock that is
past every lease the other workers hold, so "the lease ran out" needs no waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from app.services.queue import LeaseClock

T = TypeVar("T")
# Generous for a loaded 2-core machine; a passing test waits only as long as the condition takes.
DEFAULT_TIMEOUT_S = 15.0
POLL_S = 0.02


def wait_until(condition: Callable[[], T], *, timeout: float = DEFAULT_TIMEOUT_S, what: str = "the condition") -> T:
    """condition()'s first truthy value, polled until `timeout` seconds have passed (then the test fails)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(POLL_S)


def clock_past_leases(settings) -> LeaseClock:
    """A worker's clock one second past the end of any lease taken now with `settings`."""
    return LeaseClock(skew=timedelta(seconds=settings.lease_seconds + 1))
