"""The agreement between definitions of a hard token over a run of any size, in bounded memory.

Means need one running sum per definition. Spearman's ρ and the hardest-set overlaps need every token
they are computed on at once (a rank is a sort), so they see every token of a run with at most
SAMPLE_CAP tokens, and above it the SAMPLE_CAP tokens with the smallest 64-bit hash of (document id,
position) (splitmix64, as the scatter sample: app/analytics/scatter_sample.py). That is a uniform sample
without replacement that depends only on the corpus's documents and positions: a run gives the same
answer on every request, and two runs of one corpus keep the same tokens (the pair definitions compare
them token by token). Kept tokens stay in document order, so ties at a hardest set's cut still go to
the earlier token.

The run's token count is known before the pass, so the sample keeps only tokens whose hash is under a
threshold that lets through a little more than SAMPLE_CAP of them; if more arrive than the buffer
holds, it keeps the SAMPLE_CAP smallest and lowers the threshold to the largest of those. Either way
the result is the SAMPLE_CAP smallest hashes below the threshold, whatever the batches were.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from app.analytics.hardness import hardest_overlap, spearman
from app.analytics.scatter_sample import point_hash

# 2,000,000 tokens × 7 definitions × 8 bytes = 112 MB of values, 16 MB of hashes and one definition's
# ranking at a time (~40 B a token: 80 MB): about 210 MB beyond one batch, whatever the run's size. ρ's
# standard error on such a sample is under 7·10⁻⁴. It also keeps the hardest-set overlap's float32
# mask products exact (counts < 2²⁴).
SAMPLE_CAP = 2_000_000
SAMPLE_SEED = 0x68617264  # "hard": a stream of hashes of its own, not the scatter sample's
# The first threshold lets through this many standard deviations (√cap) above the cap: fewer than the
# cap pass with probability ~3·10⁻⁵ (the sample is then every token under the threshold, still uniform).
THRESHOLD_SIGMAS = 4
# Spearman's ρ has var(atanh ρ) ≈ 1.06 / (n − 3) (Fieller, Hartley & Pearson 1957).
SPEARMAN_VARIANCE_FACTOR = 1.06


class CompensatedSums:
    """One float64 sum per row, each with a Neumaier compensation term: the mean over 10⁸ tokens keeps
    ~16 significant digits rather than losing a few to the rounding of a long running sum."""

    def __init__(self, rows: int):
        self.total = np.zeros(rows)
        self.compensation = np.zeros(rows)

    def add(self, sums: np.ndarray) -> None:
        total = self.total + sums
        larger = np.abs(self.total) >= np.abs(sums)
        self.compensation += np.where(larger, (self.total - total) + sums, (sums - total) + self.total)
        self.total = total

    def value(self) -> np.ndarray:
        return self.total + self.compensation


class TokenSample:
    """The values of every token ([rows, tokens] float64) when the run has at most `cap`, else of the
    `cap` tokens with the smallest hashes; fed batches in document order."""

    def __init__(self, rows: int, n_tokens: int, cap: int):
        if cap < 1:
            raise ValueError(f"the sample cap must be positive, got {cap}")
        self.n_tokens, self.cap = n_tokens, cap
        self.sampled = n_tokens > cap
        margin = THRESHOLD_SIGMAS * math.sqrt(cap)
        # Room for the tokens over the cap before a prune: twice the margin the threshold allows, and at least 1,024.
        self._slack = int(2 * margin) + 1024
        self._values = np.empty((rows, cap + self._slack if self.sampled else n_tokens))
        self._hashes = np.empty(self._values.shape[1] if self.sampled else 0, dtype=np.uint64)
        self._threshold = _threshold((cap + margin) / n_tokens) if self.sampled else None
        self._count = 0

    def add(self, values: np.ndarray, documents: Sequence[tuple[int, int]]) -> None:
        """Offer a batch: values[rows, tokens] of `documents`' tokens, given as (document id, size), in order."""
        if not self.sampled:
            if self._count + values.shape[1] > self.n_tokens:
                raise ValueError(f"more tokens offered than the {self.n_tokens} counted")
            self._values[:, self._count:self._count + values.shape[1]] = values
            self._count += values.shape[1]
            return
        hashes = np.concatenate([point_hash(SAMPLE_SEED, document_id, np.arange(size, dtype=np.int64))
                                 for document_id, size in documents] or [np.zeros(0, dtype=np.uint64)])
        candidates = np.flatnonzero(hashes < self._threshold)
        for start in range(0, candidates.size, self._slack):  # a part always fits after a prune
            part = candidates[start:start + self._slack]
            part = part[hashes[part] < self._threshold]  # a prune may have lowered it
            if self._count + part.size > self._values.shape[1]:
                self._prune()
                part = part[hashes[part] < self._threshold]
            end = self._count + part.size
            self._hashes[self._count:end] = hashes[part]
            self._values[:, self._count:end] = values[:, part]
            self._count = end

    def values(self) -> np.ndarray:
        """[rows, kept tokens] in document order (a view: the caller may overwrite it)."""
        if self.sampled and self._count > self.cap:
            self._prune()
        return self._values[:, :self._count]

    def _prune(self) -> None:
        """Keep the `cap` smallest hashes (in document order); from now on only smaller ones may enter."""
        keep = np.sort(np.argpartition(self._hashes[:self._count], self.cap - 1)[:self.cap])
        hashes = self._hashes[keep]
        self._threshold = hashes.max()  # a later token must beat the largest kept (a tie would not enter)
        self._hashes[:self.cap] = hashes
        for row in self._values:  # one row at a time: the copy costs one row, not the matrix
            row[:self.cap] = row[keep]
        self._count = self.cap


def _threshold(share: float) -> np.uint64:
    """The hash under which `share` of uniform 64-bit hashes fall (all of them for a share ≥ 1)."""
    return np.uint64(min(int(share * 2.0**64), 2**64 - 1))


class AgreementTally:
    """Means over every token and the sample for ρ and the overlaps, of `names` (rows of the batches)."""

    def __init__(self, names: Sequence[str], n_tokens: int, cap: int):
        self.names = list(names)
        self.sums = CompensatedSums(len(self.names))
        self.sample = TokenSample(len(self.names), n_tokens, cap)
        self.seen = 0

    def add(self, values: np.ndarray, documents: Sequence[tuple[int, int]]) -> None:
        self.sums.add(values.sum(axis=1))
        self.sample.add(values, documents)
        self.seen += values.shape[1]

    def result(self, fraction: float) -> dict:
        """The response's numbers; ρ and the overlaps on the sample (its values are ranked in place)."""
        values = self.sample.values()
        n = values.shape[1]
        means = self.sums.value() / self.seen if self.seen else [None] * len(self.names)
        overlap = hardest_overlap(values, fraction) if n else None  # before ranking overwrites the values
        rho = spearman(values, overwrite=True) if n > 1 else None
        return {"definitions": self.names, "n_tokens": self.seen, "sampled": self.sample.sampled, "n_sampled": n,
                "means": {name: None if mean is None else float(mean) for name, mean in zip(self.names, means)},
                "spearman": rho, "spearman_standard_error": self._standard_errors(rho, n),
                "hardest_overlap": overlap}

    def _standard_errors(self, rho: list[list[float | None]] | None, n: int) -> list[list[float | None]] | None:
        """(1 − ρ²)·√(1.06 / (n − 3))·√(1 − n/N) per ρ of a sample (the delta method on Fisher's z, and the
        finite-population correction of a sample without replacement); None on every token."""
        if not self.sample.sampled or rho is None or n <= 3:
            return None
        scale = math.sqrt(SPEARMAN_VARIANCE_FACTOR / (n - 3)) * math.sqrt(1 - n / self.seen)
        return [[None if r is None else (1 - r * r) * scale for r in row] for row in rho]
