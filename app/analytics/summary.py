"""A run's precomputed aggregates: what the overview pages show without reading token arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.analytics import calibration, focal

SUMMARY_VERSION = "1"
LOSS_EDGES = np.linspace(0.0, 20.0, 81)  # 0.25 nats per bin; everything above 20 nats is overflow
ENTROPY_EDGES = np.linspace(0.0, 12.0, 49)
P_EDGES = np.linspace(0.0, 1.0, 51)
QUANTILES = (0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99)
GLTR_BUCKETS = ((0, 10), (10, 100), (100, 1000), (1000, None))  # rank ranges [lo, hi)
FOCAL_GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)
BUDGET_FRACTIONS = (0.01, 0.05, 0.10, 0.25, 0.50)
LORENZ_POINTS = 101
VOCAB_MIN_COUNT = 5  # a type's mean loss over fewer occurrences is mostly noise
VOCAB_TOP = 30
FREQUENCY_BUCKETS = 10


@dataclass
class RunArrays:
    """The per-token columns a summary needs, concatenated over a run's documents."""

    token_id: np.ndarray
    logprob: np.ndarray
    entropy: np.ndarray
    rank: np.ndarray
    top1_logprob: np.ndarray
    sum_p2: np.ndarray


def summarize(arrays: RunArrays, token_text: dict[int, str]) -> dict:
    n = int(arrays.logprob.size)
    if n == 0:
        return {"n_tokens": 0, "mean_loss": 0.0, "perplexity": 1.0, "ece": 0.0, "brier": 0.0,
                "top1_accuracy": 0.0, "stats": {"empty": True}}
    logprob = arrays.logprob.astype(np.float64)
    loss = -logprob
    p = np.exp(logprob)
    correct = arrays.rank == 0
    reliability = calibration.reliability(np.exp(arrays.top1_logprob.astype(np.float64)), correct)
    brier = calibration.brier(logprob, arrays.sum_p2)
    mean_loss = float(loss.mean())
    stats = {
        "loss_histogram": _histogram(loss, LOSS_EDGES),
        "entropy_histogram": _histogram(arrays.entropy.astype(np.float64), ENTROPY_EDGES),
        "p_histogram": _histogram(p, P_EDGES),
        "loss_quantiles": {str(q): float(v) for q, v in zip(QUANTILES, np.quantile(loss, QUANTILES))},
        "gltr": _gltr(arrays.rank),
        "calibration": reliability,
        "focal": _focal_budget(logprob, arrays.sum_p2.astype(np.float64)),
        "vocabulary": _vocabulary(arrays.token_id, loss, p, token_text),
    }
    return {
        "n_tokens": n,
        "mean_loss": mean_loss,
        "perplexity": float(np.exp(min(mean_loss, 700.0))),
        "ece": reliability["ece"],
        "brier": float(brier.mean()),
        "top1_accuracy": float(correct.mean()),
        "stats": stats,
    }


def _histogram(values: np.ndarray, edges: np.ndarray) -> dict:
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return {"edges": edges.tolist(), "counts": counts.tolist(), "overflow": int((values > edges[-1]).sum())}


def _gltr(rank: np.ndarray) -> list[dict]:
    buckets = []
    for lo, hi in GLTR_BUCKETS:
        mask = rank >= lo if hi is None else (rank >= lo) & (rank < hi)
        label = f"≥{lo}" if hi is None else f"<{hi}"
        buckets.append({"label": label, "lo": lo, "hi": hi, "count": int(mask.sum())})
    return buckets


def _focal_budget(logprob: np.ndarray, sum_p2: np.ndarray) -> list[dict]:
    """For each γ: the share of the total gradient norm held by the hardest x% of tokens (a Lorenz
    curve, tokens sorted hardest first), and the effective number of tokens (Σw)²/Σw²."""
    order = np.argsort(logprob, kind="stable")  # lowest log p (hardest) first
    ce_norm = focal.ce_gradient_norm(logprob, sum_p2)[order]
    sorted_logprob = logprob[order]
    n = logprob.size
    curve_at = np.linspace(0, n, LORENZ_POINTS).astype(np.int64)
    result = []
    for gamma in FOCAL_GAMMAS:
        weight = focal.focal_weight(sorted_logprob, gamma)
        grad = np.abs(focal.gradient_multiplier(sorted_logprob, gamma)) * ce_norm
        cumulative = np.concatenate([[0.0], np.cumsum(grad)])
        total = cumulative[-1] if cumulative[-1] > 0 else 1.0
        result.append({
            "gamma": gamma,
            "effective_tokens": focal.effective_tokens(weight),
            "effective_fraction": focal.effective_tokens(weight) / n,
            "mean_focal_loss": float(focal.focal_loss(sorted_logprob, gamma).mean()),
            "budget_share": {str(f): float(cumulative[int(round(f * n))] / total) for f in BUDGET_FRACTIONS},
            "lorenz": [float(cumulative[i] / total) for i in curve_at],
        })
    return result


def _vocabulary(token_id: np.ndarray, loss: np.ndarray, p: np.ndarray, token_text: dict[int, str]) -> dict:
    """Per token type: count, mean loss, mean p; the hardest and easiest frequent types; and mean
    loss by frequency bucket (does difficulty follow rarity, as the class-imbalance story says?)."""
    types, inverse, counts = np.unique(token_id, return_inverse=True, return_counts=True)
    mean_loss = np.bincount(inverse, weights=loss) / counts
    mean_p = np.bincount(inverse, weights=p) / counts

    def row(i: int) -> dict:
        tid = int(types[i])
        return {"token_id": tid, "text": token_text.get(tid, ""), "count": int(counts[i]),
                "mean_loss": float(mean_loss[i]), "mean_p": float(mean_p[i])}

    frequent = np.flatnonzero(counts >= VOCAB_MIN_COUNT)
    by_loss = frequent[np.argsort(-mean_loss[frequent], kind="stable")]
    # Frequency buckets over tokens (not types): each bucket holds ~1/10 of the corpus's tokens,
    # from the rarest types to the most frequent ones.
    type_order = np.argsort(counts, kind="stable")
    token_share = np.cumsum(counts[type_order]) / counts.sum()
    bucket_of_type = np.empty_like(type_order)
    bucket_of_type[type_order] = np.minimum((token_share * FREQUENCY_BUCKETS - 1e-12).astype(np.int64), FREQUENCY_BUCKETS - 1)
    token_bucket = bucket_of_type[inverse]
    bucket_counts = np.bincount(token_bucket, minlength=FREQUENCY_BUCKETS)
    bucket_loss = np.bincount(token_bucket, weights=loss, minlength=FREQUENCY_BUCKETS)
    buckets = [
        {"bucket": b, "tokens": int(bucket_counts[b]),
         "mean_loss": float(bucket_loss[b] / bucket_counts[b]) if bucket_counts[b] else None}
        for b in range(FREQUENCY_BUCKETS)
    ]
    return {
        "n_types": int(types.size),
        "hardest": [row(i) for i in by_loss[:VOCAB_TOP]],
        "easiest": [row(i) for i in by_loss[::-1][:VOCAB_TOP]],
        "frequency_buckets": buckets,
    }
