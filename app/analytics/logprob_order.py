"""A run's tokens ordered by log p (hardest first) in two streamed passes and bounded memory.

The summary needs two things that look like a sort of every token: exact loss quantiles (np.quantile's
"linear" method) and the focal Lorenz curve (Σ of per-token gradients over the i hardest tokens). Neither
needs the sort. A float32's bit pattern, with the sign handled, is an unsigned key whose order is the
value's, so:

- pass 1 counts tokens (and sums their weights, one column per γ) in 65,536 bins of the key's high 16 bits;
- pass 2 revisits only the bins that hold a wanted order statistic, counting the low 16 bits there, which
  gives the exact value of each wanted order statistic; and it splits each bin that a Lorenz boundary
  falls inside into 256 sub-bins by the next 8 bits, with their counts and weight sums.

Loss quantiles are therefore exact (np.quantile's interpolation between order statistics k and k + 1,
bit for bit). A Lorenz point is exact where its boundary falls between two sub-bins; inside a sub-bin
the weight is interpolated by count, so the point is within the share of the total weight held by that
sub-bin's tokens (whose float32 log p agree in sign, exponent and the top 15 mantissa bits, a relative
width under 2⁻¹⁵ ≈ 3·10⁻⁵). Memory: 65,536 × (1 + weights) numbers, plus up to 65,536 counts per
quantile bin and 256 × (1 + weights) per boundary bin, whatever the run's size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

HIGH_BINS = 1 << 16
SUB_BITS = 8
SUB_BINS = 1 << SUB_BITS
SIGN = np.uint32(0x80000000)


def order_keys(logprob: np.ndarray) -> np.ndarray:
    """uint32 keys whose order is the float32 values' (−0.0 counted as +0.0)."""
    bits = (np.asarray(logprob, dtype=np.float32) + np.float32(0.0)).view(np.uint32)
    return np.where(bits & SIGN, ~bits, bits | SIGN)


def key_values(keys: np.ndarray) -> np.ndarray:
    """The float32 values of keys from `order_keys`, as float64."""
    keys = np.asarray(keys, dtype=np.uint32)
    bits = np.where(keys & SIGN, keys & ~SIGN, ~keys)
    return bits.view(np.float32).astype(np.float64)


def quantile_positions(n: int, quantiles: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """np.quantile's "linear" method on n sorted values: (previous, next, gamma) per quantile."""
    virtual = (n - 1) * np.asarray(quantiles, dtype=np.float64)
    previous = np.floor(virtual)
    gamma = virtual - previous
    previous = previous.astype(np.int64)
    following = np.minimum(previous + 1, n - 1)
    return np.minimum(previous, n - 1), following, gamma


def interpolate(a: np.ndarray, b: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """np.quantile's lerp, operation for operation (so that results agree to the bit)."""
    difference = b - a
    result = a + difference * gamma
    return np.where(gamma >= 0.5, b - difference * (1 - gamma), result)


class LogprobOrder:
    """Fold batches of (log p, weights[n, columns]) twice: `add` in pass 1, `refine` in pass 2."""

    def __init__(self, columns: int):
        self.columns = columns
        self.counts = np.zeros(HIGH_BINS, dtype=np.int64)
        self.sums = np.zeros((columns, HIGH_BINS), dtype=np.float64)
        self._plan: _Plan | None = None

    @property
    def planned(self) -> bool:
        return self._plan is not None

    def add(self, logprob: np.ndarray, weights: np.ndarray) -> None:
        high = (order_keys(logprob) >> 16).astype(np.int64)
        counts = np.bincount(high)  # up to the highest bin used: log p ≤ 0 keeps to the lower half
        self.counts[:counts.size] += counts
        for c in range(self.columns):
            self.sums[c, :counts.size] += np.bincount(high, weights=weights[:, c], minlength=counts.size)

    def plan(self, order_indices: np.ndarray, boundaries: np.ndarray) -> None:
        """After pass 1: the sorted positions whose values are wanted, and the boundaries i whose
        weight sums over the i first tokens are wanted; pass 2 then collects what they need."""
        self._plan = _Plan(self.counts, order_indices, boundaries, self.columns)

    def refine(self, logprob: np.ndarray, weights_of: Callable[[np.ndarray], np.ndarray]) -> None:
        """Pass 2 over the same tokens; weights_of(indices) gives the weights of the batch's tokens at
        `indices` (only those in bins that a boundary falls inside are asked for)."""
        plan = self._require_plan()
        keys = order_keys(logprob)
        high = (keys >> 16).astype(np.int64)
        # Only the tokens of the planned bins are counted, so a batch costs what they hold, not the tables' size.
        chosen = np.flatnonzero(plan.value_slot[high] >= 0)
        if chosen.size:
            plan.count_values((plan.value_slot[high[chosen]] << 16) | (keys[chosen] & 0xFFFF).astype(np.int64))
        chosen = np.flatnonzero(plan.boundary_slot[high] >= 0)
        if chosen.size:
            at = (plan.boundary_slot[high[chosen]], (keys[chosen] >> 8) & (SUB_BINS - 1))
            np.add.at(plan.sub_counts, at, 1)
            np.add.at(plan.sub_sums, at, weights_of(chosen))

    def values(self, order_indices: np.ndarray) -> np.ndarray:
        """The exact log p at sorted positions (ascending log p) named in `plan`."""
        plan = self._require_plan()
        order_indices = np.asarray(order_indices, dtype=np.int64)
        high = np.searchsorted(plan.starts, order_indices, side="right") - 1
        rank = order_indices - plan.starts[high]  # within its bin
        # The (slot, low bits) keys are sorted: a bin's tokens are a stretch of the running count.
        running = np.concatenate([[0], np.cumsum(plan.value_counts)])
        before = running[np.searchsorted(plan.value_keys, plan.value_slot[high] << 16)]
        at = np.searchsorted(running[1:], before + rank, side="right")
        return key_values(((high << 16) | (plan.value_keys[at] & 0xFFFF)).astype(np.uint32))

    def prefix_sums(self, boundaries: np.ndarray) -> np.ndarray:
        """[boundaries, columns]: the weights summed over the i tokens of lowest log p, per boundary i
        named in `plan` (interpolated by count inside a sub-bin; see the module's note)."""
        plan = self._require_plan()
        boundaries = np.asarray(boundaries, dtype=np.int64)
        high = np.searchsorted(plan.starts, boundaries, side="right") - 1
        cumulative = np.zeros((self.columns, HIGH_BINS + 1))
        np.cumsum(self.sums, axis=1, out=cumulative[:, 1:])
        result = cumulative[:, high].T.copy()
        for k in np.flatnonzero(high < HIGH_BINS):
            inside = boundaries[k] - plan.starts[high[k]]
            if inside:
                result[k] += _within_bin(plan, plan.boundary_slot[high[k]], inside)
        return result

    def _require_plan(self) -> _Plan:
        if self._plan is None:
            raise RuntimeError("plan() must follow pass 1 before pass 2 or any answer")
        return self._plan


class _Plan:
    """What pass 2 collects: per quantile bin the low 16 bits' counts, per boundary bin its sub-bins'."""

    def __init__(self, counts: np.ndarray, order_indices: np.ndarray, boundaries: np.ndarray, columns: int):
        self.starts = np.concatenate([[0], np.cumsum(counts)])  # first sorted position of each bin
        value_bins = np.unique(np.searchsorted(self.starts, np.asarray(order_indices, np.int64), side="right") - 1)
        boundaries = np.asarray(boundaries, dtype=np.int64)
        holding = np.searchsorted(self.starts, boundaries, side="right") - 1
        inside = (holding < HIGH_BINS) & (boundaries > self.starts[np.minimum(holding, HIGH_BINS)])
        boundary_bins = np.unique(holding[inside])
        self.value_slot = _slots(value_bins)
        self.boundary_slot = _slots(boundary_bins)
        self.value_keys = np.zeros(0, dtype=np.int64)  # slot << 16 | low 16 bits, ascending
        self.value_counts = np.zeros(0, dtype=np.int64)
        self.sub_counts = np.zeros((boundary_bins.size, SUB_BINS), dtype=np.int64)
        self.sub_sums = np.zeros((boundary_bins.size, SUB_BINS, columns), dtype=np.float64)

    def count_values(self, keys: np.ndarray) -> None:
        """Count (slot << 16 | low bits) keys: a sorted sparse table, at most 65,536 entries per slot."""
        keys, counts = np.unique(keys, return_counts=True)
        self.value_keys, inverse = np.unique(np.concatenate([self.value_keys, keys]), return_inverse=True)
        self.value_counts = np.bincount(inverse, weights=np.concatenate([self.value_counts, counts])).astype(np.int64)


def _slots(bins: np.ndarray) -> np.ndarray:
    """bin → its row in pass 2's tables, −1 for bins pass 2 ignores."""
    slot = np.full(HIGH_BINS, -1, dtype=np.int64)
    slot[bins] = np.arange(bins.size)
    return slot


def _within_bin(plan: _Plan, slot: int, inside: int) -> np.ndarray:
    """The weights of the `inside` lowest tokens of one bin: whole sub-bins, then a share by count."""
    counts, sums = plan.sub_counts[slot], plan.sub_sums[slot]
    starts = np.concatenate([[0], np.cumsum(counts)])
    sub = int(np.searchsorted(starts, inside, side="right")) - 1
    whole = sums[:sub].sum(axis=0)
    partial = inside - starts[sub]
    return whole + (sums[sub] * (partial / counts[sub]) if partial else 0.0)
