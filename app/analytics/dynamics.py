"""Training dynamics: collapse detection on a run's held-out loss and its training loss / gradient norm.

A run is flagged as collapsed at the first checkpoint whose held-out loss is more than HELDOUT_RISE
nats above the best held-out loss before it, and it has a spike at the first logged step whose
training loss exceeds SPIKE_FACTOR × the median of the previous SPIKE_WINDOW logged values (the same
rule, separately, for the gradient norm). Thresholds are named here so that the report can state them.
"""

from __future__ import annotations

import numpy as np

HELDOUT_RISE = 0.1  # nats: far above seed noise of a tiny model's held-out CE (~0.01)
SPIKE_FACTOR = 2.0
SPIKE_WINDOW = 20
# No spike is called before a full window of history: early in training the gradient norm rises as
# the loss falls out of its uniform start, which is not a spike.
MIN_SPIKE_HISTORY = SPIKE_WINDOW


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


def first_spike(steps: list[int], values: list[float | None], factor: float = SPIKE_FACTOR,
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
        "loss_spike": first_spike(curve_steps, train_loss),
        "grad_spike": first_spike(curve_steps, grad_norm),
    }
