"""Calibration of the whole predicted distribution, not only of its top label: nucleus coverage,
expected entropy vs realised loss, post-hoc temperature scaling. Pure numpy, float64.

Sampling with top-p draws from the smallest set of tokens whose probabilities sum to at least p. For a
calibrated model the true next token falls inside that set with probability ≈ p (a little more: the
set overshoots p by less than its last token's probability). The true token y is inside iff the mass
of the tokens ranked above it, Σ_{v: p_v > p_y} p_v, is below p — so a token needs one number, its
"mass above", and coverage is a count. Formulas: docs/formulas.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

NUCLEUS_LEVELS = (0.5, 0.8, 0.9, 0.95)
# Temperature scaling searches T in [1/8, 8] (log-spaced golden section): beyond that a model is
# broken rather than mis-calibrated.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.125, 8.0
TEMPERATURE_TOLERANCE = 1e-3  # in log T: T to 0.1%
ENTROPY_BINS = 10


def mass_above(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per row, the probability mass of the tokens with a larger probability than the true token's."""
    probs = np.asarray(probs, dtype=np.float64)
    p_true = probs[np.arange(len(targets)), targets]
    return np.where(probs > p_true[:, None], probs, 0.0).sum(axis=1)


def nucleus_coverage(above: np.ndarray, levels: tuple[float, ...] = NUCLEUS_LEVELS) -> dict[str, float | None]:
    """Share of tokens whose true token lies inside the smallest top-p set, for each p in `levels`."""
    above = np.asarray(above, dtype=np.float64)
    if not above.size:
        return {f"{level:g}": None for level in levels}
    return {f"{level:g}": float(np.mean(above < level)) for level in levels}


def entropy_vs_loss(entropy: np.ndarray, loss: np.ndarray, n_bins: int = ENTROPY_BINS) -> dict:
    """Mean predicted entropy and mean realised loss (equal in expectation for a calibrated model), and
    per entropy bin (equal-count bins) the mean entropy and mean loss, for a reliability-style chart."""
    entropy, loss = np.asarray(entropy, np.float64), np.asarray(loss, np.float64)
    if not entropy.size:
        return {"mean_entropy": None, "mean_loss": None, "bins": []}
    order = np.argsort(entropy, kind="stable")
    bins = [chunk for chunk in np.array_split(order, min(n_bins, entropy.size)) if chunk.size]
    return {
        "mean_entropy": float(entropy.mean()), "mean_loss": float(loss.mean()),
        "bins": [{"tokens": int(c.size), "entropy": float(entropy[c].mean()), "loss": float(loss[c].mean())}
                 for c in bins],
    }


def temperature_nll(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    """Mean −log softmax(z / T)_y over rows, float64."""
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(targets)), targets]))


def fit_temperature(nll_at: Callable[[float], float]) -> tuple[float, float]:
    """(T, NLL at T) minimising the held-out NLL over T in [MIN_TEMPERATURE, MAX_TEMPERATURE].
    NLL(T) of a softmax is convex in 1/T, hence unimodal in log T: golden-section search finds it."""
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    lo, hi = math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE)
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll_at(math.exp(a)), nll_at(math.exp(b))
    while hi - lo > TEMPERATURE_TOLERANCE:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll_at(math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll_at(math.exp(b))
    best = math.exp((lo + hi) / 2.0)
    return best, nll_at(best)
