"""A bounded, reproducible sample of cartography points for the scatter plot.

Millions of token occurrences cannot all be drawn; the scatter keeps at most `limit` of them. The rule is
a bottom-k sample: every point gets a 64-bit hash of (seed, document id, position), and the sample is
the `limit` points with the smallest hashes. With a well-mixed hash every point is equally likely to be
kept (a uniform sample without replacement, so regions keep their shares); the sample depends neither on
the order documents arrive in nor on the other points of a document, so the same seed gives the same
points on every request and on every machine; memory stays O(limit + one document).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.analytics.cartography import Cartography

DEFAULT_SCATTER_LIMIT = 20_000  # enough to see the map's shape; a WebGL scatter draws it instantly


def point_hash(seed: int, document_id: int, positions: np.ndarray) -> np.ndarray:
    """Position i's hash is the (i + 1)-th output of the splitmix64 generator whose state is a hash of
    (seed, document id): independent-looking values, and no two positions of a document collide."""
    document_key = _mix(_as_uint64(seed) ^ _mix(_as_uint64(document_id)))
    counter = np.asarray(positions, dtype=np.int64).view(np.uint64) + np.uint64(1)
    return _mix(document_key + counter * _GOLDEN_GAMMA)


_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # splitmix64's increment


def _as_uint64(value: int) -> np.ndarray:
    return np.array([value], dtype=np.int64).view(np.uint64)


def _mix(x: np.ndarray) -> np.ndarray:
    # uint64 arithmetic wraps around, which is what the finalizer wants.
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@dataclass(frozen=True)
class ScatterPoints:
    """The kept points, ordered by (document id, position)."""

    document_id: np.ndarray
    position: np.ndarray
    token_id: np.ndarray
    confidence: np.ndarray
    variability: np.ndarray
    correctness: np.ndarray
    forgetting: np.ndarray


_FIELDS = {"document_id": np.int64, "position": np.int64, "token_id": np.int64,
           "confidence": np.float64, "variability": np.float64, "correctness": np.float64, "forgetting": np.int64}


class ScatterSample:
    """Bottom-k sample of cartography points of (document, position), fed a document at a time."""

    def __init__(self, limit: int = DEFAULT_SCATTER_LIMIT, seed: int = 0):
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"the scatter limit must be a positive integer, got {limit!r}")
        self.limit, self.seed = limit, seed
        self.seen = 0  # points offered, so a caller can say "n of N shown"
        self._hash = np.zeros(0, dtype=np.uint64)
        self._kept = {name: np.zeros(0, dtype=dtype) for name, dtype in _FIELDS.items()}

    def add(self, document_id: int, occurrences: Cartography) -> None:
        """Offer every occurrence of one document (`occurrences` from occurrence_cartography)."""
        n = occurrences.confidence.size
        self.seen += n
        position = np.arange(n, dtype=np.int64)
        hashes = point_hash(self.seed, document_id, position)
        candidate = np.ones(n, dtype=bool)
        if self._hash.size == self.limit:  # full: only points below the current largest hash can enter
            candidate = hashes < self._hash.max()
        fresh = {"document_id": np.full(n, document_id), "position": position,
                 "token_id": occurrences.token_id, "confidence": occurrences.confidence,
                 "variability": occurrences.variability, "correctness": occurrences.correctness,
                 "forgetting": occurrences.forgetting}
        merged_hash = np.concatenate([self._hash, hashes[candidate]])
        merged = {name: np.concatenate([self._kept[name], fresh[name][candidate].astype(dtype)])
                  for name, dtype in _FIELDS.items()}
        if merged_hash.size > self.limit:
            keep = np.argpartition(merged_hash, self.limit - 1)[: self.limit]
            merged_hash = merged_hash[keep]
            merged = {name: values[keep] for name, values in merged.items()}
        self._hash, self._kept = merged_hash, merged

    def points(self) -> ScatterPoints:
        order = np.lexsort((self._kept["position"], self._kept["document_id"]))
        return ScatterPoints(**{name: values[order] for name, values in self._kept.items()})
