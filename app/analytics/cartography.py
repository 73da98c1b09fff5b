"""Dataset cartography (Swayamdipta et al. 2020) and forgetting events (Toneva et al. 2019) per token.

Per token occurrence over the S checkpoints of a series (p = exp(logprob) of the true token):
- confidence = mean of p over the steps;
- variability = standard deviation of p over the steps, the *population* std (ddof = 0: divided by S,
  as the paper's σ divides by the number of epochs);
- correctness = share of steps at which the true token is the top-1 (rank 0);
- forgetting events = number of steps i with rank 0 at step i and not at step i + 1 (Toneva et al.'s
  "learned, then forgotten" between consecutive evaluations). A token never ranked first has none;
  correctness tells those apart from the never-forgotten ones.
Per token type: the mean of each over the type's occurrences, with the occurrence count.

Regions. The paper draws them on the map (easy-to-learn: high confidence, low variability; hard-to-learn:
low confidence, low variability; ambiguous: high variability) and picks its subsets by ranking the whole
dataset (the top third by variability, by confidence...). Ranking needs every point first; a streamed
corpus gets fixed, adjustable thresholds instead, which split the map into three parts:
- ambiguous: variability ≥ 0.2. A std of p ≥ 0.2 implies p moved by at least 0.4 between two
  checkpoints (std ≤ range / 2), a real change of mind; the largest possible std is 0.5.
- otherwise easy-to-learn when confidence ≥ 0.5 (the true token held the majority of the mass on average,
  the line learned_at and transitions use), else hard-to-learn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.analytics.token_types import TypeTable
from app.analytics.trajectories import SeriesDocument, series_steps

DEFAULT_VARIABILITY_THRESHOLD = 0.2
DEFAULT_CONFIDENCE_THRESHOLD = 0.5
REGIONS = ("easy-to-learn", "ambiguous", "hard-to-learn")  # region codes index this tuple
EASY, AMBIGUOUS, HARD = range(len(REGIONS))


@dataclass(frozen=True)
class Cartography:
    """Cartography per token occurrence of a document, or per token type (then with `count`)."""

    token_id: np.ndarray
    confidence: np.ndarray
    variability: np.ndarray
    correctness: np.ndarray
    forgetting: np.ndarray  # events per occurrence; per type, their mean
    count: np.ndarray | None = None  # occurrences per type; None for occurrences


def occurrence_cartography(document: SeriesDocument) -> Cartography:
    series_steps(document.steps)
    p = document.p()
    top1 = document.rank == 0
    return Cartography(
        token_id=document.token_id,
        confidence=p.mean(axis=0),
        variability=p.std(axis=0, ddof=0),
        correctness=top1.mean(axis=0),
        forgetting=(top1[:-1] & ~top1[1:]).sum(axis=0),
    )


def regions(confidence: np.ndarray, variability: np.ndarray, *,
            confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
            variability_threshold: float = DEFAULT_VARIABILITY_THRESHOLD) -> np.ndarray:
    """Region code (EASY, AMBIGUOUS, HARD; names in REGIONS) of each point, by the module's rule."""
    for name, value in (("confidence_threshold", confidence_threshold),
                        ("variability_threshold", variability_threshold)):
        if not math.isfinite(value) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    confidence, variability = np.asarray(confidence), np.asarray(variability)
    if confidence.shape != variability.shape:
        raise ValueError(f"confidence {confidence.shape} and variability {variability.shape} differ in shape")
    code = np.where(confidence >= confidence_threshold, EASY, HARD)
    return np.where(variability >= variability_threshold, AMBIGUOUS, code).astype(np.int8)


class TypeCartographyTally:
    """Per-type cartography over a corpus streamed one document at a time (per-type sums only)."""

    _COLUMNS = ("count", "confidence", "variability", "correctness", "forgetting")

    def __init__(self, steps):
        self.steps = series_steps(steps)
        self._sums = TypeTable(len(self._COLUMNS))

    def add(self, document: SeriesDocument) -> Cartography:
        """Add a document; returns its per-occurrence cartography (for the scatter sample)."""
        document.require_steps(self.steps)
        occurrences = occurrence_cartography(document)
        values = np.column_stack([np.ones(document.n_tokens), occurrences.confidence, occurrences.variability,
                                  occurrences.correctness, occurrences.forgetting])
        self._sums.add(document.token_id, values)
        return occurrences

    def per_type(self, min_count: int = 1) -> Cartography:
        """Token types occurring at least `min_count` times, ascending by id, with mean values."""
        types, sums = self._sums.rows(present=0)
        count = sums[:, 0]
        keep = count >= min_count
        types, sums, count = types[keep], sums[keep], count[keep]
        mean = sums[:, 1:] / count[:, None]
        return Cartography(token_id=types, confidence=mean[:, 0], variability=mean[:, 1],
                           correctness=mean[:, 2], forgetting=mean[:, 3], count=count.astype(np.int64))
