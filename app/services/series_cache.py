"""Results of the statistics across checkpoints, kept for the next request that asks the same.

A statistic streams every score of a series on a corpus (seconds on millions of tokens); what it
returns is small. The stored scores of a done run never change, so a result stays valid for as long
as its runs exist, and the key names them (AlignedRuns.key) with the statistic's parameters. The cache
lives with the application (one per app), is bounded in bytes and evicts the least recently used.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import numpy as np

T = TypeVar("T")

# Results are counts, histograms and bounded samples; per-type tables grow with the vocabulary
# (a 256k vocabulary: ~12 MiB). 256 MiB keeps a few dozen results while the API stays far under 1 GiB.
DEFAULT_MAX_BYTES = 256 * 2**20
# What a result costs beyond its arrays (objects, lists of a few numbers).
ENTRY_OVERHEAD_BYTES = 4096


class ResultCache:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # routes run in a thread pool

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached result for `key`, or compute() stored under it. Two requests computing the
        same key at once both compute: the work is repeated, the answer is the same."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key][0]
        value = compute()
        size = nbytes(value)
        with self._lock:
            if key not in self._entries and size <= self.max_bytes:
                self._entries[key] = (value, size)
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, (_, evicted) = self._entries.popitem(last=False)
                    self._bytes -= evicted
        return value

    def __len__(self) -> int:
        return len(self._entries)


def cached(cache: ResultCache | None, key: Hashable, compute: Callable[[], T]) -> T:
    return compute() if cache is None else cache.get_or_compute(key, compute)


def nbytes(value: object) -> int:
    """Approximate memory of a result: its numpy arrays, in dataclasses, tuples, lists and dicts, nested."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, str):
        return 50 + len(value)  # CPython's str header, and up to a byte per character for most texts
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts = [getattr(value, field.name) for field in dataclasses.fields(value)]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    elif isinstance(value, dict):
        parts = list(value.values())
    else:
        return 0
    return ENTRY_OVERHEAD_BYTES + sum(nbytes(part) for part in parts)
