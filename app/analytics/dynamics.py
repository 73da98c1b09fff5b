"""Training dynamics: collapse detection on a run's held-out loss and its training loss / gradient norm.

A run is flagged as collapsed at the first checkpoint whose held-out loss is more than HELDOUT_RISE
nats above the best held-out loss before it, and it has a spike at the first logged step whose
training CE exceeds LOSS_SPIKE_FACTOR × the median of the previous SPIKE_WINDOW logged values (for the
gradient norm, GRAD_SPIKE_FACTOR ×). Thresholds are named here so that the report can state them.
"""

from __future__ import annotations

import numpy as np

HELDOUT_RISE = 0.1  # nats: far above seed noise of a tiny model's held-out CE (~0.01)
# The training-batch CE of a tiny model moves by a few % between batches; a 30% jump is an event.
LOSS_SPIKE_FACTOR = 1.3
# The gradient norm of small batches (8 × 64 tokens) swung 2–10× between steps in every run of our
# first study, cross-entropy's included: only an order of magnitude is called a spike.
GRAD_SPIKE_FACTOR = 10.0
SPIKE_WINDOW = 20
MIN_SPIKE_HISTORY = 10  # the first steps fall fast from the uniform start: no median to compare with yet


def heldout_collapse(steps: list[int], heldout: list[float | None], rise: float = HELDOUT_RISE) -> int | None:
    """The first step whose held-out loss exceeds the best earlier one by more than `rise`, else None."""
    best = None
    for step, value in zip(steps, heldout):
        if value is None:
            continue
        if best is not None and value > best + rise:
            return step
        best = value if best is None else min(best, value)
    return None


def first_spike(steps: list[int], values: list[float | None], factor: float,
                window: int = SPIKE_WINDOW) -> int | None:
    """The first step whose value exceeds `factor` × the median of the `window` values before it."""
    history: list[float] = []
    for step, value in zip(steps, values):
        if value is None:
            continue
        if len(history) >= MIN_SPIKE_HISTORY and value > factor * float(np.median(history[-window:])):
            return step
        history.append(value)
    return None


def collapse_flags(*, checkpoint_steps: list[int], heldout: list[float | None], curve_steps: list[int],
                   train_loss: list[float | None], grad_norm: list[float | None]) -> dict[str, int | None]:
    """{heldout_rise, loss_spike, grad_spike}: the step each was first seen at, or None."""
    return {
        "heldout_rise": heldout_collapse(checkpoint_steps, heldout),
        "loss_spike": first_spike(curve_steps, train_loss, LOSS_SPIKE_FACTOR),
        "grad_spike": first_spike(curve_steps, grad_norm, GRAD_SPIKE_FACTOR),
    }
