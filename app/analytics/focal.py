"""Focal-family quantities derived from the stored log-probability of the true token.

All functions take float32/float64 arrays of log p (≤ 0) and return arrays of the same shape.
1 − p is computed as −expm1(log p) so that it stays exact for confident tokens (p → 1).
"""

from __future__ import annotations

import numpy as np


def prob(logprob: np.ndarray) -> np.ndarray:
    return np.exp(logprob)


def one_minus_p(logprob: np.ndarray) -> np.ndarray:
    return -np.expm1(logprob)


def focal_weight(logprob: np.ndarray, gamma: float) -> np.ndarray:
    """w = (1 − p)^γ: the factor focal loss puts on a token's cross-entropy."""
    if gamma == 0:
        return np.ones_like(logprob)
    return one_minus_p(logprob) ** gamma


def focal_loss(logprob: np.ndarray, gamma: float) -> np.ndarray:
    """−(1 − p)^γ · log p."""
    return focal_weight(logprob, gamma) * -logprob


def gradient_multiplier(logprob: np.ndarray, gamma: float) -> np.ndarray:
    """g(p, γ) = (1−p)^γ − γ·p·(1−p)^(γ−1)·log p, with ∂FL/∂z = g · ∂CE/∂z for softmax logits z.

    g > 1 for very hard tokens (p small): focal loss boosts them relative to cross-entropy.
    """
    if gamma == 0:
        return np.ones_like(logprob)
    q = one_minus_p(logprob)
    p = prob(logprob)
    with np.errstate(divide="ignore", invalid="ignore"):
        # γ < 1: (1−p)^(γ−1) diverges as p → 1, but p·(1−p)^(γ−1)·log p → 0 there (log p ≈ −(1−p)).
        second = np.where(q > 0, gamma * p * q ** (gamma - 1) * logprob, 0.0)
    return q**gamma - second


def poly1_loss(logprob: np.ndarray, epsilon: float) -> np.ndarray:
    """Poly-1: −log p + ε(1 − p)."""
    return -logprob + epsilon * one_minus_p(logprob)


def polyfocal_loss(logprob: np.ndarray, epsilon: float, gamma: float) -> np.ndarray:
    """Poly-1 focal (softmax form): (1−p)^γ·(−log p) + ε(1−p)^(γ+1)."""
    return focal_loss(logprob, gamma) + epsilon * one_minus_p(logprob) ** (gamma + 1)


def ce_gradient_norm(logprob: np.ndarray, sum_p2: np.ndarray) -> np.ndarray:
    """‖∂CE/∂z‖₂ = ‖p − e_y‖₂ = sqrt(Σ_v p_v² − 2 p_y + 1), exact from the stored Σp²."""
    p = prob(logprob)
    return np.sqrt(np.clip(sum_p2 - 2.0 * p + 1.0, 0.0, None))


def effective_tokens(weights: np.ndarray) -> float:
    """(Σw)² / Σw²: how many tokens the weighting effectively trains on."""
    total_sq = float(np.sum(np.square(weights, dtype=np.float64)))
    return float(np.sum(weights, dtype=np.float64) ** 2 / total_sq) if total_sq > 0 else 0.0
