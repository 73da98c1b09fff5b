"""Loss transitions between two checkpoint steps (Rho-1, Lin et al. 2024, arXiv 2404.07965, §2).

At a step a token occurrence is H (high loss) when its loss −log p is above τ, else L. Between steps
a < b each occurrence falls in one of four cells: H→H (persistently hard), L→H (got worse), H→L
(learned), L→L (already easy).

Default τ = ln 2 ≈ 0.693 nats, i.e. L ⇔ p ≥ 1/2. The reason: a fixed threshold, unlike a quantile of the
losses at step a, means the same thing in every document, so per-document counts add up to the
corpus's counts in one streaming pass; and p ≥ 1/2 is the point where the true token holds the majority
of the probability mass, so an L token is necessarily the model's top-1 prediction. It is the same line
as learned_at's default τ_easy = 1/2, so "L" and "easy" agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.analytics.trajectories import SeriesDocument, series_steps

DEFAULT_LOSS_THRESHOLD = math.log(2.0)
CELLS = ("HH", "LH", "HL", "LL")  # the state at step a, then at step b


@dataclass(frozen=True)
class TransitionCounts:
    step_a: int
    step_b: int
    tau: float
    counts: dict[str, int]  # one entry per name in CELLS

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def shares(self) -> dict[str, float]:
        total = self.total
        return {cell: (count / total if total else 0.0) for cell, count in self.counts.items()}

    def matrix(self) -> list[list[int]]:
        """Rows: H, L at step a; columns: H, L at step b."""
        c = self.counts
        return [[c["HH"], c["HL"]], [c["LH"], c["LL"]]]


@dataclass(frozen=True)
class DocumentTransitions:
    counts: TransitionCounts
    positions: dict[str, np.ndarray] | None  # token positions per cell, ascending, when asked for


def validate_transition(steps, step_a: int, step_b: int, tau: float) -> None:
    """ValueError with the reason when (step_a, step_b, τ) is not a valid question for these steps."""
    steps = series_steps(steps)
    if not isinstance(tau, (int, float)) or not math.isfinite(tau) or tau < 0:
        raise ValueError(f"the loss threshold τ must be a finite number ≥ 0 (nats), got {tau!r}")
    for step in (step_a, step_b):
        if step not in steps:
            raise ValueError(f"step {step} is not a checkpoint of this series (steps: {steps.tolist()})")
    if not step_a < step_b:
        raise ValueError(f"transitions need step a < step b, got a = {step_a}, b = {step_b}")


def transitions(document: SeriesDocument, step_a: int, step_b: int,
                tau: float = DEFAULT_LOSS_THRESHOLD, *, with_positions: bool = False) -> DocumentTransitions:
    """Counts (and optionally the positions) of one document's tokens in each H/L cell."""
    validate_transition(document.steps, step_a, step_b, tau)
    loss = document.loss()
    high_a = loss[document.step_index(step_a)] > tau
    high_b = loss[document.step_index(step_b)] > tau
    masks = {
        "HH": high_a & high_b,
        "LH": ~high_a & high_b,
        "HL": high_a & ~high_b,
        "LL": ~high_a & ~high_b,
    }
    counts = TransitionCounts(step_a, step_b, float(tau), {cell: int(masks[cell].sum()) for cell in CELLS})
    positions = {cell: np.flatnonzero(masks[cell]) for cell in CELLS} if with_positions else None
    return DocumentTransitions(counts, positions)


class TransitionTally:
    """Sums transition counts over the documents of a corpus, one document at a time."""

    def __init__(self, steps, step_a: int, step_b: int, tau: float = DEFAULT_LOSS_THRESHOLD):
        validate_transition(steps, step_a, step_b, tau)
        self.steps = np.asarray(steps)
        self.step_a, self.step_b, self.tau = step_a, step_b, float(tau)
        self._counts = dict.fromkeys(CELLS, 0)

    def add(self, document: SeriesDocument) -> TransitionCounts:
        """Add a document; returns its own counts (a service may keep them per document for paging)."""
        document.require_steps(self.steps)
        counts = transitions(document, self.step_a, self.step_b, self.tau).counts
        for cell in CELLS:
            self._counts[cell] += counts.counts[cell]
        return counts

    @property
    def counts(self) -> TransitionCounts:
        return TransitionCounts(self.step_a, self.step_b, self.tau, dict(self._counts))
