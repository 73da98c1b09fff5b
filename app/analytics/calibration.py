"""Top-label calibration: reliability diagram, ECE and Brier score.

ECE uses 15 equal-width confidence bins, (lo, hi] with the first bin closed at 0 — the convention of
torchmetrics' `binary`/`multiclass` calibration error with norm="l1".
"""

from __future__ import annotations

import numpy as np

N_BINS = 15


def reliability(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS) -> dict:
    """Per-bin count, mean confidence and accuracy, and the ECE (Σ_b |acc_b − conf_b|·n_b / n)."""
    return reliability_from_sums(*reliability_sums(confidence, correct, n_bins))


def reliability_sums(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS) -> tuple[np.ndarray, ...]:
    """(count, Σ confidence, Σ correct) per bin: sums, so that batches of tokens add up."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # (lo, hi]: searchsorted on the right edges with side="left" puts x == hi into the bin below.
    index = np.clip(np.searchsorted(edges[1:], confidence, side="left"), 0, n_bins - 1)
    return (np.bincount(index, minlength=n_bins), np.bincount(index, weights=confidence, minlength=n_bins),
            np.bincount(index, weights=correct, minlength=n_bins))


def reliability_from_sums(counts: np.ndarray, conf_sum: np.ndarray, acc_sum: np.ndarray) -> dict:
    """The reliability diagram and ECE from the per-bin sums of `reliability_sums`."""
    edges = np.linspace(0.0, 1.0, counts.size + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(counts > 0, conf_sum / counts, np.nan)
        accuracy = np.where(counts > 0, acc_sum / counts, np.nan)
    n = counts.sum()
    ece = float(np.nansum(np.abs(accuracy - mean_conf) * counts) / n) if n else 0.0
    return {
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "confidence": [None if np.isnan(v) else float(v) for v in mean_conf],
        "accuracy": [None if np.isnan(v) else float(v) for v in accuracy],
        "ece": ece,
    }


def brier(logprob: np.ndarray, sum_p2: np.ndarray) -> np.ndarray:
    """Per-token multi-class Brier score Σ_v (p_v − 1[v=y])² = Σp² − 2p_y + 1, exact."""
    return np.clip(np.asarray(sum_p2, np.float64) - 2.0 * np.exp(np.asarray(logprob, np.float64)) + 1.0, 0.0, 2.0)
