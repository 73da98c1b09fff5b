"""Aggregates of model A against model B over a corpus, summed one aligned document at a time.

Per unit (a token, or a segment across tokenizers; app/analytics/alignment.py) Δ = log p_B − log p_A.
Per A token, its share of its unit's Δ (alignment.token_shares) feeds the buckets: GLTR rank buckets of
A's rank, and frequency buckets of A's token types (the run summary's rule). Memory: the per-type
table (grows with A's vocabulary) and the N most extreme units, never the corpus.
"""

from __future__ import annotations

import numpy as np

from app.analytics.alignment import ALIGN_SEGMENT, ALIGN_TOKEN, Alignment, token_shares
from app.analytics.summary import FREQUENCY_BUCKETS, GLTR_BUCKETS
from app.analytics.hardness import gltr_bucket
from app.analytics.token_types import TypeTable, frequency_buckets

# How many units each of the "B wins most" and "B loses most" lists keeps.
DEFAULT_EXTREMES = 20

class Extremes:
    """The `size` units with the largest Δ (largest=True: where B wins most) or the smallest (where B
    loses most) seen so far: per unit its document id, index, Δ, span and both runs' log p."""

    COLUMNS = ("document_id", "unit", "delta", "char_start", "char_end", "logprob_a", "logprob_b")

    def __init__(self, size: int, largest: bool):
        self.size, self.largest = size, largest
        self.columns = {name: np.zeros(0) for name in self.COLUMNS}

    def add(self, document_id: int, alignment: Alignment) -> None:
        delta = alignment.delta
        key = delta if self.largest else -delta
        kept = self.columns["delta"] if self.largest else -self.columns["delta"]
        if not key.size or (kept.size == self.size and key.max() <= kept.min()):
            return  # nothing here beats the kept units (a tie goes to the earlier document anyway)
        units = _top(key, self.size)
        found = {"document_id": np.full(units.size, document_id), "unit": units, "delta": delta[units],
                 "char_start": alignment.char_start[units], "char_end": alignment.char_end[units],
                 "logprob_a": alignment.logprob_a[units], "logprob_b": alignment.logprob_b[units]}
        merged = {name: np.concatenate([self.columns[name], found[name]]) for name in self.COLUMNS}
        key = merged["delta"] if self.largest else -merged["delta"]
        # Ties go to the earlier document and unit.
        keep = np.lexsort((merged["unit"], merged["document_id"], -key))[: self.size]
        self.columns = {name: values[keep] for name, values in merged.items()}

    def items(self) -> list[dict]:
        """The kept units, most extreme first, as dicts of Python numbers."""
        ints = ("document_id", "unit", "char_start", "char_end")
        return [{name: int(self.columns[name][i]) if name in ints else float(self.columns[name][i])
                 for name in self.COLUMNS} for i in range(self.columns["delta"].size)]


def _top(key: np.ndarray, size: int) -> np.ndarray:
    if key.size <= size:
        return np.arange(key.size)
    return np.argpartition(-key, size - 1)[:size]


class CompareTally:
    """Sums over the aligned documents of a corpus (add one at a time), then `result()`."""

    # TypeTable columns per A token type: occurrences, Σ loss_A, Σ Δ share, occurrences where B wins.
    COUNT, LOSS_A, DELTA, WINS = range(4)

    def __init__(self, extremes: int = DEFAULT_EXTREMES):
        self.tokens_a = self.tokens_b = self.units = 0
        self.logprob_a = self.logprob_b = 0.0
        self.documents = {ALIGN_TOKEN: 0, ALIGN_SEGMENT: 0}
        self.delta_p_sum = 0.0  # Σ (p_B − p_A) over token-aligned tokens
        self.rank_buckets = np.zeros((len(GLTR_BUCKETS), 4))
        self.types = TypeTable(4)
        self.wins, self.losses = Extremes(extremes, largest=True), Extremes(extremes, largest=False)

    def add(self, document_id: int, alignment: Alignment, token_id_a: np.ndarray, rank_a: np.ndarray,
            logprob_a: np.ndarray, n_tokens_b: int) -> None:
        self.documents[alignment.kind] += 1
        self.tokens_a += token_id_a.size
        self.tokens_b += n_tokens_b
        self.units += alignment.n_units
        self.logprob_a += float(alignment.logprob_a.sum())
        self.logprob_b += float(alignment.logprob_b.sum())
        if alignment.kind == ALIGN_TOKEN:
            self.delta_p_sum += float(np.sum(np.exp(alignment.logprob_b) - np.exp(alignment.logprob_a)))
        share = token_shares(alignment, token_id_a.size)
        values = np.stack([np.ones_like(share), -logprob_a.astype(np.float64), share, share > 0], axis=1)
        self.rank_buckets += np.stack([np.bincount(gltr_bucket(rank_a), weights=values[:, c], minlength=len(GLTR_BUCKETS))
                                       for c in range(4)], axis=1)
        self.types.add(token_id_a.astype(np.int64), values)
        self.wins.add(document_id, alignment)
        self.losses.add(document_id, alignment)

    def result(self) -> dict:
        n_a, n_b = max(self.tokens_a, 1), max(self.tokens_b, 1)
        _, per_type = self.types.rows(present=self.COUNT)
        buckets = frequency_buckets(per_type[:, self.COUNT]) if per_type.size else np.zeros(0, np.int64)
        by_frequency = np.stack([np.bincount(buckets, weights=per_type[:, c], minlength=FREQUENCY_BUCKETS)
                                 for c in range(4)], axis=1) if per_type.size else np.zeros((FREQUENCY_BUCKETS, 4))
        token_aligned = self.documents[ALIGN_TOKEN] and not self.documents[ALIGN_SEGMENT]
        return {
            "documents": dict(self.documents), "tokens_a": self.tokens_a, "tokens_b": self.tokens_b, "units": self.units,
            "total_logprob_a": self.logprob_a, "total_logprob_b": self.logprob_b,
            "total_delta": self.logprob_b - self.logprob_a,
            "mean_loss_a": -self.logprob_a / n_a, "mean_loss_b": -self.logprob_b / n_b,
            "mean_delta_p": self.delta_p_sum / n_a if token_aligned else None,
            "rank_buckets": [{"label": label, **_bucket(row)} for label, row in zip(gltr_labels(), self.rank_buckets)],
            "frequency_buckets": [{"bucket": b, **_bucket(row)} for b, row in enumerate(by_frequency)],
        }


def gltr_labels() -> list[str]:
    return [f"≥{lo}" if hi is None else f"<{hi}" for lo, hi in GLTR_BUCKETS]


def _bucket(row: np.ndarray) -> dict:
    """A bucket's A tokens: count, mean loss under A, mean Δ share, mean loss under B (loss_A − Δ),
    and the share of them where B wins."""
    count = int(row[CompareTally.COUNT])
    if not count:
        return {"tokens": 0, "mean_loss_a": None, "mean_loss_b": None, "mean_delta": None, "b_wins": None}
    loss_a, delta = row[CompareTally.LOSS_A] / count, row[CompareTally.DELTA] / count
    return {"tokens": count, "mean_loss_a": float(loss_a), "mean_loss_b": float(loss_a - delta),
            "mean_delta": float(delta), "b_wins": float(row[CompareTally.WINS] / count)}
