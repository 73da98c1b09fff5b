"""A run's precomputed aggregates: what the overview pages show without reading token arrays.

They are folded from batches of tokens in two passes, so that a run of any size is summarised in bounded
memory: pass 1 (`SummaryTally.add`) takes every sum, count and histogram, exact; pass 2
(`SummaryTally.refine`, which reads only log p and Σp²) gives the exact loss quantiles and the focal
Lorenz curves (app/analytics/logprob_order.py: exact but for an interpolation inside the few 2⁻¹⁵-wide
log p sub-bins a curve point falls in, bound stated there). Sums may differ from a one-shot numpy sum in
the last bits (the order of additions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.analytics import calibration, focal
from app.analytics.logprob_order import LogprobOrder, interpolate, quantile_positions
from app.analytics.token_types import FREQUENCY_BUCKETS, TypeTable, frequency_buckets

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
HISTOGRAMS = {"loss_histogram": LOSS_EDGES, "entropy_histogram": ENTROPY_EDGES, "p_histogram": P_EDGES}


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
    """The summary of tokens already in memory: both passes over the one batch."""
    tally = SummaryTally()
    tally.add(arrays)
    tally.refine(arrays.logprob, arrays.sum_p2)
    return tally.result(token_text)


class SummaryTally:
    """A summary folded from batches of a run's tokens (in document order): `add` every batch, then
    `refine` every batch again, then `result`. Its size is fixed but for per-type sums (by vocabulary)."""

    def __init__(self):
        self.n = 0
        self.loss_sum = self.brier_sum = 0.0
        self.correct = 0
        self.histograms = {name: np.zeros(edges.size, np.int64) for name, edges in HISTOGRAMS.items()}  # + overflow
        self.gltr = np.zeros(len(GLTR_BUCKETS), np.int64)
        self.reliability = [np.zeros(calibration.N_BINS, dtype) for dtype in (np.int64, np.float64, np.float64)]
        self.focal_sums = np.zeros((3, len(FOCAL_GAMMAS)))  # Σw, Σw², Σ focal loss per γ
        self.types = TypeTable(3)  # count, Σ loss, Σ p per token type
        self.order = LogprobOrder(len(FOCAL_GAMMAS))  # per γ: |focal gradient|, for the Lorenz curves

    def add(self, arrays: RunArrays) -> None:
        logprob = np.asarray(arrays.logprob, np.float32).astype(np.float64)  # the store's float32
        sum_p2 = np.asarray(arrays.sum_p2, np.float64)
        loss, p, rank = -logprob, np.exp(logprob), np.asarray(arrays.rank)
        correct = rank == 0
        self.n += logprob.size
        self.loss_sum += float(loss.sum())
        self.brier_sum += float(calibration.brier(logprob, sum_p2).sum())
        self.correct += int(correct.sum())
        for name, values in zip(HISTOGRAMS, (loss, np.asarray(arrays.entropy, np.float64), p)):
            self.histograms[name] += _histogram(values, HISTOGRAMS[name])
        self.gltr += [int(((rank >= lo) & (rank < (hi or np.inf))).sum()) for lo, hi in GLTR_BUCKETS]
        sums = calibration.reliability_sums(np.exp(np.asarray(arrays.top1_logprob, np.float64)), correct)
        for total, part in zip(self.reliability, sums):
            total += part
        for g, gamma in enumerate(FOCAL_GAMMAS):
            weight = focal.focal_weight(logprob, gamma)
            self.focal_sums[:, g] += [weight.sum(), np.square(weight).sum(), (weight * loss).sum()]
        self.types.add(np.asarray(arrays.token_id, np.int64), np.stack([np.ones_like(loss), loss, p], axis=1))
        self.order.add(logprob, gradient_norms(logprob, sum_p2))

    def refine(self, logprob: np.ndarray, sum_p2: np.ndarray) -> None:
        """Pass 2 over a batch (the same batches as pass 1, in any order)."""
        if self.n == 0:
            return
        if not self.order.planned:
            self.order.plan(self._quantile_indices()[0], self._boundaries())
        logprob = np.asarray(logprob, np.float32).astype(np.float64)
        self.order.refine(logprob, lambda at: gradient_norms(logprob[at], np.asarray(sum_p2[at], np.float64)))

    def _quantile_indices(self) -> tuple[np.ndarray, np.ndarray]:
        """(ascending-log-p positions of each quantile's two loss order statistics, their gamma)."""
        previous, following, gamma = quantile_positions(self.n, QUANTILES)
        return self.n - 1 - np.concatenate([previous, following]), gamma

    def _boundaries(self) -> np.ndarray:
        """The Lorenz curve's points, then the budget fractions' (as counts of hardest tokens)."""
        curve = np.linspace(0, self.n, LORENZ_POINTS).astype(np.int64)
        return np.concatenate([curve, [round(f * self.n) for f in BUDGET_FRACTIONS]])

    def result(self, token_text: dict[int, str]) -> dict:
        if self.n == 0:
            return {"n_tokens": 0, "mean_loss": 0.0, "perplexity": 1.0, "ece": 0.0, "brier": 0.0,
                    "top1_accuracy": 0.0, "stats": {"empty": True}}
        indices, gamma = self._quantile_indices()
        loss_at = -self.order.values(indices)
        quantiles = interpolate(loss_at[: len(QUANTILES)], loss_at[len(QUANTILES):], gamma)
        reliability = calibration.reliability_from_sums(*self.reliability)
        mean_loss = self.loss_sum / self.n
        stats = {
            **{name: {"edges": edges.tolist(), "counts": self.histograms[name][:-1].tolist(),
                      "overflow": int(self.histograms[name][-1])} for name, edges in HISTOGRAMS.items()},
            "loss_quantiles": {str(q): float(v) for q, v in zip(QUANTILES, quantiles)},
            "gltr": [{"label": f"≥{lo}" if hi is None else f"<{hi}", "lo": lo, "hi": hi, "count": int(count)}
                     for (lo, hi), count in zip(GLTR_BUCKETS, self.gltr)],
            "calibration": reliability,
            "focal": self._focal_budget(),
            "vocabulary": self._vocabulary(token_text),
        }
        return {"n_tokens": self.n, "mean_loss": mean_loss, "perplexity": float(np.exp(min(mean_loss, 700.0))),
                "ece": reliability["ece"], "brier": self.brier_sum / self.n, "top1_accuracy": self.correct / self.n,
                "stats": stats}

    def _focal_budget(self) -> list[dict]:
        """For each γ: the share of the total gradient norm held by the hardest x% of tokens (a Lorenz
        curve, tokens sorted hardest first), and the effective number of tokens (Σw)²/Σw²."""
        prefix = self.order.prefix_sums(self._boundaries())
        curve, budget = prefix[:LORENZ_POINTS], prefix[LORENZ_POINTS:]
        result = []
        for g, gamma in enumerate(FOCAL_GAMMAS):
            total = curve[-1, g] if curve[-1, g] > 0 else 1.0
            weight_sum, weight_square_sum, focal_loss_sum = self.focal_sums[:, g]
            effective = float(weight_sum**2 / weight_square_sum) if weight_square_sum > 0 else 0.0
            result.append({
                "gamma": gamma, "effective_tokens": effective, "effective_fraction": effective / self.n,
                "mean_focal_loss": float(focal_loss_sum / self.n),
                "budget_share": {str(f): float(budget[k, g] / total) for k, f in enumerate(BUDGET_FRACTIONS)},
                "lorenz": [float(v / total) for v in curve[:, g]],
            })
        return result

    def _vocabulary(self, token_text: dict[int, str]) -> dict:
        """Per token type: count, mean loss, mean p; the hardest and easiest frequent types; and mean
        loss by frequency bucket (does difficulty follow rarity, as the class-imbalance story says?)."""
        types, sums = self.types.rows(present=0)
        counts = sums[:, 0]
        mean_loss, mean_p = sums[:, 1] / counts, sums[:, 2] / counts

        def row(i: int) -> dict:
            tid = int(types[i])
            return {"token_id": tid, "text": token_text.get(tid, ""), "count": int(counts[i]),
                    "mean_loss": float(mean_loss[i]), "mean_p": float(mean_p[i])}

        frequent = np.flatnonzero(counts >= VOCAB_MIN_COUNT)
        by_loss = frequent[np.argsort(-mean_loss[frequent], kind="stable")]
        bucket = frequency_buckets(counts)
        bucket_counts = np.bincount(bucket, weights=counts, minlength=FREQUENCY_BUCKETS)
        bucket_loss = np.bincount(bucket, weights=sums[:, 1], minlength=FREQUENCY_BUCKETS)
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


def _histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin (values beyond the edges clipped into the end bins), then the count above the top edge."""
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return np.append(counts, int((values > edges[-1]).sum()))


def gradient_norms(logprob: np.ndarray, sum_p2: np.ndarray) -> np.ndarray:
    """[tokens, γ]: each token's focal gradient norm |g(p, γ)|·‖∂CE/∂z‖, what the Lorenz curves share out."""
    ce_norm = focal.ce_gradient_norm(logprob, sum_p2)
    gradients = np.empty((logprob.size, len(FOCAL_GAMMAS)))
    for g, gamma in enumerate(FOCAL_GAMMAS):
        np.multiply(np.abs(focal.gradient_multiplier(logprob, gamma)), ce_norm, out=gradients[:, g])
    return gradients
