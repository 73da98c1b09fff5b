"""Learned-at step: the first checkpoint after which a token occurrence stays easy.

A token occurrence is easy at a step when p ≥ τ_easy there. Its learned-at step is the first checkpoint
step s such that it is easy at s and at every later step of the series; `NEVER` (−1; steps are ≥ 0)
when it is not easy at the last step. Default τ_easy = 1/2: the true token then holds the majority of
the probability mass and is necessarily the top-1 prediction; it is the same line as the transitions'
default τ = ln 2 (L ⇔ p ≥ 1/2).

The histogram of learned-at steps, overall and by token-frequency bucket, asks whether frequent tokens
are learned first. Buckets follow the run summary's rule (token_types.frequency_buckets) over the
token types' counts in the documents streamed, so one pass suffices: per-type histograms are summed,
and the buckets are drawn at the end.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from app.analytics.summary import FREQUENCY_BUCKETS
from app.analytics.token_types import TypeTable, frequency_buckets
from app.analytics.trajectories import SeriesDocument, series_steps

NEVER = -1
DEFAULT_EASY_P = 0.5


def validate_easy_p(tau_easy: float) -> None:
    if not isinstance(tau_easy, numbers.Real) or not math.isfinite(tau_easy) or not 0 < tau_easy <= 1:
        raise ValueError(f"τ_easy is a probability in (0, 1], got {tau_easy!r}")


def learned_at_index(document: SeriesDocument, tau_easy: float = DEFAULT_EASY_P) -> np.ndarray:
    """Per token occurrence: the index into document.steps of its learned-at step, or S for never."""
    series_steps(document.steps)
    validate_easy_p(tau_easy)
    easy = document.p() >= tau_easy
    # stays_easy[k]: easy at each of the last k + 1 steps; its count of True is the trailing easy run.
    stays_easy = np.logical_and.accumulate(easy[::-1], axis=0)
    return document.n_steps - stays_easy.sum(axis=0)


def learned_at(document: SeriesDocument, tau_easy: float = DEFAULT_EASY_P) -> np.ndarray:
    """Per token occurrence: its learned-at step, or NEVER."""
    return _step_or_never(document.steps, learned_at_index(document, tau_easy))


@dataclass(frozen=True)
class StepHistogram:
    counts: list[int]  # token occurrences learned at each step, aligned with the series' steps
    never: int

    @property
    def tokens(self) -> int:
        return sum(self.counts) + self.never


@dataclass(frozen=True)
class LearnedAtHistogram:
    steps: list[int]
    tau_easy: float
    overall: StepHistogram
    by_bucket: list[StepHistogram]  # frequency bucket b at index b, 0 = rarest types


class LearnedAtTally:
    """Accumulates learned-at histograms over documents, one document at a time."""

    def __init__(self, steps, tau_easy: float = DEFAULT_EASY_P):
        self.steps = series_steps(steps)
        validate_easy_p(tau_easy)
        self.tau_easy = float(tau_easy)
        # Per token type: occurrences learned at each step, then never (the last column).
        self._per_type = TypeTable(self.steps.size + 1, dtype=np.int64)

    def add(self, document: SeriesDocument) -> np.ndarray:
        """Add a document; returns its learned-at steps (NEVER for never)."""
        document.require_steps(self.steps)
        index = learned_at_index(document, self.tau_easy)
        one_hot = np.zeros((index.size, self.steps.size + 1), dtype=np.int64)
        one_hot[np.arange(index.size), index] = 1
        self._per_type.add(document.token_id, one_hot)
        return _step_or_never(self.steps, index)

    def histogram(self, n_buckets: int = FREQUENCY_BUCKETS) -> LearnedAtHistogram:
        _, per_type = self._per_type.rows()
        bucket = frequency_buckets(per_type.sum(axis=1), n_buckets)
        by_bucket = np.zeros((n_buckets, self.steps.size + 1), dtype=np.int64)
        np.add.at(by_bucket, bucket, per_type)
        return LearnedAtHistogram(
            steps=self.steps.tolist(),
            tau_easy=self.tau_easy,
            overall=_step_histogram(by_bucket.sum(axis=0)),
            by_bucket=[_step_histogram(row) for row in by_bucket],
        )


def _step_or_never(steps: np.ndarray, index: np.ndarray) -> np.ndarray:
    return np.r_[steps.astype(np.int64), NEVER][index]


def _step_histogram(row: np.ndarray) -> StepHistogram:
    return StepHistogram(counts=[int(c) for c in row[:-1]], never=int(row[-1]))
