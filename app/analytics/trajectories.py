"""A document as scored by every checkpoint of a series, and the checks that make that well defined.

Runs of one series' checkpoints on one corpus (same scoring options, same tokenizer) are *aligned*:
token i of a document is the same token in every run. `check_aligned` verifies that from the stored
token ids instead of assuming it. `SeriesDocument` stacks one document's per-run arrays along a
step axis; the statistics in `transitions`, `learned_at` and `cartography` take one at a time, so a
service streams a corpus document by document and never holds a whole series' arrays at once.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import numpy as np

MIN_STEPS = 2  # a statistic *across* checkpoints needs at least two of them


class NotAligned(ValueError):
    """Two runs disagree on a document's token ids: their token i are not the same token."""

    def __init__(self, message: str, *, run_id: Hashable, reference_run_id: Hashable,
                 document_id: Hashable, position: int | None):
        super().__init__(message)
        self.run_id = run_id
        self.reference_run_id = reference_run_id
        self.document_id = document_id
        self.position = position


def check_aligned(token_ids_by_run: Mapping[Hashable, np.ndarray], document_id: Hashable) -> None:
    """Raise `NotAligned` naming the first run whose token ids for `document_id` differ from the
    first run's (in the mapping's order), with the first differing position; return if all agree."""
    if not token_ids_by_run:
        raise ValueError(f"document {document_id}: no runs to check")
    runs = iter(token_ids_by_run.items())
    reference_run, reference = next(runs)
    reference = np.asarray(reference)
    for run_id, token_ids in runs:
        token_ids = np.asarray(token_ids)
        common = min(reference.size, token_ids.size)
        differing = np.flatnonzero(reference[:common] != token_ids[:common])
        if differing.size:
            i = int(differing[0])
            raise NotAligned(
                f"run {run_id} is not aligned with run {reference_run} on document {document_id}: "
                f"token {i} is id {int(token_ids[i])} there and id {int(reference[i])} in run {reference_run}",
                run_id=run_id, reference_run_id=reference_run, document_id=document_id, position=i)
        if token_ids.size != reference.size:
            raise NotAligned(
                f"run {run_id} is not aligned with run {reference_run} on document {document_id}: "
                f"{token_ids.size} tokens there and {reference.size} in run {reference_run} "
                f"(they first differ at token {common})",
                run_id=run_id, reference_run_id=reference_run, document_id=document_id, position=common)


@dataclass(frozen=True)
class SeriesDocument:
    """One document's per-token scores at S checkpoint steps (ascending) for its n tokens.

    steps[S] int, logprob[S, n] (log p of the true token), rank[S, n] (0 = the model's top-1),
    token_id[n]. p = exp(logprob) and loss = −logprob are derived in float64.
    """

    steps: np.ndarray
    logprob: np.ndarray
    rank: np.ndarray
    token_id: np.ndarray

    def __post_init__(self):
        # Coerce once here so every statistic can index plain arrays (frozen: hence object.__setattr__).
        for name in ("steps", "logprob", "rank", "token_id"):
            object.__setattr__(self, name, np.asarray(getattr(self, name)))
        _validate_steps(self.steps)
        if self.token_id.ndim != 1:
            raise ValueError(f"token_id must be 1-D, got shape {self.token_id.shape}")
        expected = (self.steps.size, self.token_id.size)
        for name in ("logprob", "rank"):
            shape = getattr(self, name).shape
            if shape != expected:
                raise ValueError(f"{name} has shape {shape}, expected (steps, tokens) = {expected}")
        if not np.issubdtype(self.rank.dtype, np.integer) or not np.issubdtype(self.token_id.dtype, np.integer):
            raise ValueError(f"rank and token_id must be integers, got {self.rank.dtype} and {self.token_id.dtype}")
        if np.isnan(self.logprob).any():
            raise ValueError("logprob contains NaN")
        if (self.rank < 0).any():
            raise ValueError("rank must be ≥ 0 (0 = the model's top-1)")

    @property
    def n_steps(self) -> int:
        return int(self.steps.size)

    @property
    def n_tokens(self) -> int:
        return int(self.token_id.size)

    def p(self) -> np.ndarray:
        return np.exp(self.logprob.astype(np.float64))

    def loss(self) -> np.ndarray:
        return -self.logprob.astype(np.float64)

    def step_index(self, step: int) -> int:
        """The row of `step`; ValueError naming the stored steps when it is not one of them."""
        found = np.flatnonzero(self.steps == step)
        if not found.size:
            raise ValueError(f"step {step} is not a checkpoint of this series (steps: {self.steps.tolist()})")
        return int(found[0])

    def require_steps(self, steps: np.ndarray) -> None:
        """An accumulator sums documents scored at the same steps; anything else is a caller's bug."""
        if not np.array_equal(self.steps, steps):
            raise ValueError(f"document steps {self.steps.tolist()} differ from "
                             f"the series' steps {np.asarray(steps).tolist()}")


def series_steps(steps) -> np.ndarray:
    """Validated steps of a series for a statistic across checkpoints (at least two, ascending)."""
    steps = np.asarray(steps)
    _validate_steps(steps)
    if steps.size < MIN_STEPS:
        raise ValueError(f"a statistic across checkpoints needs at least {MIN_STEPS} steps, got {steps.size}")
    return steps


@dataclass(frozen=True)
class TokenTrajectory:
    """One token occurrence followed across the steps: p, loss and rank per step."""

    position: int
    token_id: int
    steps: list[int]
    p: list[float]
    loss: list[float]
    rank: list[int]


def trajectory(document: SeriesDocument, position: int) -> TokenTrajectory:
    if not 0 <= position < document.n_tokens:
        raise ValueError(f"position {position} is outside the document's {document.n_tokens} tokens")
    logprob = document.logprob[:, position].astype(np.float64)
    return TokenTrajectory(
        position=position,
        token_id=int(document.token_id[position]),
        steps=document.steps.tolist(),
        p=np.exp(logprob).tolist(),
        loss=(-logprob).tolist(),
        rank=document.rank[:, position].tolist(),
    )


def _validate_steps(steps: np.ndarray) -> None:
    if steps.ndim != 1 or steps.size == 0:
        raise ValueError(f"steps must be a non-empty 1-D array, got shape {steps.shape}")
    if not np.issubdtype(steps.dtype, np.integer):
        raise ValueError(f"steps must be integers, got {steps.dtype}")
    # ≥ 0 keeps −1 free as learned_at's "never" sentinel.
    if (steps < 0).any():
        raise ValueError(f"steps must be ≥ 0, got {steps.tolist()}")
    if (np.diff(steps) <= 0).any():
        raise ValueError(f"steps must be strictly ascending, got {steps.tolist()}")
