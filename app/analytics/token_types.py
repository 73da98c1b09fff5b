"""Per-token-type sums accumulated one document at a time, and the corpus's frequency buckets.

A corpus is streamed document by document; per-type statistics are kept as sums in a table indexed by
token id (memory grows with the vocabulary, never with the corpus), and means are taken at the end.
"""

from __future__ import annotations

import numpy as np

# Buckets of ≈ equal token mass, rarest types first (the run summary's rule, used by every view of it).
FREQUENCY_BUCKETS = 10


class TypeTable:
    """Sums of `columns` values per token type, indexed by token id and grown as larger ids appear."""

    def __init__(self, columns: int, dtype=np.float64):
        self._sums = np.zeros((0, columns), dtype=dtype)

    def add(self, token_id: np.ndarray, values: np.ndarray) -> None:
        """values[n, columns] for the n occurrences token_id[n]; summed into their types' rows."""
        if token_id.size == 0:
            return
        if (token_id < 0).any():
            raise ValueError("token ids must be ≥ 0")
        # Sort once and reduce each run of equal ids: O(n log n) per document, whatever the vocabulary.
        order = np.argsort(token_id, kind="stable")
        sorted_ids = token_id[order]
        starts = np.flatnonzero(np.concatenate([[True], sorted_ids[1:] != sorted_ids[:-1]]))
        types = sorted_ids[starts]
        self._grow(int(types[-1]) + 1)
        self._sums[types] += np.add.reduceat(values[order].astype(self._sums.dtype), starts, axis=0)

    def _grow(self, rows: int) -> None:
        if rows <= self._sums.shape[0]:
            return
        grown = np.zeros((max(rows, 2 * self._sums.shape[0]), self._sums.shape[1]), dtype=self._sums.dtype)
        grown[: self._sums.shape[0]] = self._sums
        self._sums = grown

    def rows(self, present: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(token ids, their sums) for the types with any non-zero sum, ascending by id; `present`
        chooses the column that says a type occurred (a count) when the others may sum to 0."""
        seen = self._sums[:, present] != 0 if present is not None else (self._sums != 0).any(axis=1)
        types = np.flatnonzero(seen)
        return types, self._sums[types]


def frequency_buckets(counts: np.ndarray, n_buckets: int = FREQUENCY_BUCKETS) -> np.ndarray:
    """The bucket (0 = rarest) of each token type, given the types' occurrence counts in ascending
    token-id order. The rule of the run summary (app/analytics/summary.py): types sorted from rarest to
    most frequent (ties by id) are cut into `n_buckets` buckets of ≈ equal token mass, by the share of
    the corpus's tokens held by the types up to and including each one."""
    counts = np.asarray(counts)
    if counts.size == 0:
        return np.zeros(0, dtype=np.int64)
    if (counts <= 0).any():
        raise ValueError("every listed token type must occur at least once")
    type_order = np.argsort(counts, kind="stable")
    token_share = np.cumsum(counts[type_order]) / counts.sum()
    bucket = np.empty(counts.size, dtype=np.int64)
    bucket[type_order] = np.minimum((token_share * n_buckets - 1e-12).astype(np.int64), n_buckets - 1)
    return bucket
