"""What makes a token "hard": several definitions from the stored fields, and how much they agree.

Per token (larger = harder): loss −log p; 1 − p; rank; entropy; surprise = loss − entropy (more
surprising than the model expected to be); margin = p(top-1) − p (how far the true token is from being
the model's first choice; 0 when it is). Against a second run with the same tokens: excess loss =
loss − loss of the other run (Rho-1's reference-model score), and across two checkpoints of a series
the loss drop = loss at the earlier step − loss at the later. Agreement: Spearman's ρ between every two
definitions (average ranks for ties) and the overlap of their hardest-fraction sets.
"""

from __future__ import annotations

import math

import numpy as np

from app.analytics import focal
from app.analytics.summary import GLTR_BUCKETS

DEFINITIONS = ("loss", "one_minus_p", "rank", "entropy", "surprise", "margin")
PAIR_DEFINITIONS = ("excess_loss", "loss_drop")
DEFAULT_HARDEST_FRACTION = 0.1
GLTR_EDGES = np.array([hi for _, hi in GLTR_BUCKETS if hi is not None])


def gltr_bucket(rank: np.ndarray) -> np.ndarray:
    """0 for rank < 10, 1 for < 100, 2 for < 1000, 3 beyond (GLTR's four buckets; rank 0-based)."""
    return np.searchsorted(GLTR_EDGES, rank, side="right")


def definitions(logprob: np.ndarray, entropy: np.ndarray, rank: np.ndarray, top1_logprob: np.ndarray) -> dict[str, np.ndarray]:
    """Each single-run definition per token, float64."""
    logprob = np.asarray(logprob, dtype=np.float64)
    loss = -logprob
    entropy = np.asarray(entropy, dtype=np.float64)
    return {
        "loss": loss,
        "one_minus_p": focal.one_minus_p(logprob),
        "rank": np.asarray(rank, dtype=np.float64),
        "entropy": entropy,
        "surprise": loss - entropy,
        # The true token is in the top-k when its rank < k; float32 rounding must not make p exceed top-1.
        "margin": np.maximum(np.exp(np.asarray(top1_logprob, dtype=np.float64)) - np.exp(logprob), 0.0),
    }


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their ranks (as Spearman's ρ needs)."""
    order = np.argsort(values)  # tied values get one mean rank, so the sort need not be stable
    ordered = values[order]
    edges = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1], [True]]))
    mean_rank = (edges[:-1] + edges[1:] + 1) / 2.0  # positions start..end-1 as ranks start+1..end
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, np.diff(edges))
    return ranks


def spearman(columns: np.ndarray, overwrite: bool = False) -> list[list[float | None]]:
    """ρ between every two rows of `columns` [definitions, tokens]; None where a row is constant.
    With `overwrite` (float64 columns) the ranks replace the values, saving a second matrix."""
    centred = columns if overwrite else np.empty(columns.shape, dtype=np.float64)
    for row, values in zip(centred, columns):
        row[:] = average_ranks(values)
        row -= (row.size + 1) / 2.0  # the mean of ranks 1 … n, ties or not
    norms = np.sqrt(np.einsum("ij,ij->i", centred, centred))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (centred @ centred.T) / np.outer(norms, norms)
    return [[None if not np.isfinite(v) else float(np.clip(v, -1.0, 1.0)) for v in row] for row in rho]


def hardest(values: np.ndarray, fraction: float) -> np.ndarray:
    """Mask of the ⌈fraction·n⌉ hardest tokens (largest values; ties at the cut go to the earlier tokens).
    O(n): the cut value by partition, not a sort."""
    k = math.ceil(fraction * values.size)
    mask = np.zeros(values.size, dtype=bool)
    if k == 0:
        return mask
    cut = np.partition(values, values.size - k)[values.size - k]
    mask = values > cut
    tied = np.flatnonzero(values == cut)
    mask[tied[: k - int(mask.sum())]] = True
    return mask


def hardest_overlap(columns: np.ndarray, fraction: float) -> list[list[float | None]]:
    """|H_i ∩ H_j| / |H_i| for the hardest-fraction sets H of every two definitions (all sets have the same size)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"the hardest fraction must be in (0, 1], got {fraction}")
    masks = np.stack([hardest(row, fraction) for row in columns]).astype(np.float32)
    k = masks[0].sum() if masks.size else 0
    if not k:
        return [[None] * len(columns) for _ in columns]
    return (masks @ masks.T / k).astype(np.float64).tolist()
