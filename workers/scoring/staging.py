"""Host buffers a batch's inputs go up from and its results come back into, allocated once and reused.

Allocating page-locked (pinned) memory per batch — `tensor.pin_memory()`, `torch.empty(...,
pin_memory=True)` — hands every new size to PyTorch's caching host allocator, which keeps pinned
blocks for the life of the process; with batch shapes that change all the time that is memory that
only grows (and each new block is a slow `cudaHostAlloc`). A scorer instead takes a slot per batch
in flight — one int64 buffer for every input array, one float32 and one int32 buffer for the
results — and gives it back once the batch's results are read. On a GPU the slots are pinned, so
copies both ways are asynchronous; on a CPU they are plain memory and the same code runs, which is
what lets the CPU test suite cover it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Slot:
    inputs: torch.Tensor  # int64 [capacity]: every input array of a batch, back to back
    floats: torch.Tensor  # float32 [rows, 3 + k]
    ints: torch.Tensor  # int32 [rows, 1 + k]


class Staging:
    """A free list of slots; `acquire` grows a slot that is too small (rare: capacity starts at
    what `max_batch_tokens` needs) and makes a new one when all are in flight."""

    def __init__(self, *, top_k: int, max_batch_tokens: int, pin: bool):
        self.top_k, self.pin = top_k, pin
        # Inputs: ids (+ position ids when packed) for every padded token, plus index and target per scored one.
        self.input_capacity, self.row_capacity = 4 * max_batch_tokens, max_batch_tokens
        self._free: list[Slot] = []
        self.allocated = 0  # slots made so far (tests and benchmarks read it)

    def acquire(self, input_elements: int, rows: int) -> Slot:
        slot = self._free.pop() if self._free else None
        if slot is None or slot.inputs.numel() < input_elements or slot.floats.shape[0] < rows:
            slot = self._new(max(input_elements, self.input_capacity), max(rows, self.row_capacity))
        return slot

    def release(self, slot: Slot) -> None:
        self._free.append(slot)

    @property
    def free(self) -> int:
        return len(self._free)

    def _new(self, input_elements: int, rows: int) -> Slot:
        self.allocated += 1
        self.input_capacity, self.row_capacity = input_elements, rows
        empty = lambda *shape, dtype: torch.empty(shape, dtype=dtype, pin_memory=self.pin)  # noqa: E731
        return Slot(empty(input_elements, dtype=torch.int64), empty(rows, 3 + self.top_k, dtype=torch.float32),
                    empty(rows, 1 + self.top_k, dtype=torch.int32))


def pack_inputs(slot: Slot, arrays: list[np.ndarray]) -> tuple[torch.Tensor, list[tuple[int, int, tuple[int, ...]]]]:
    """Copy int arrays back to back into the slot; returns the filled view and (start, end, shape)
    of each, to cut the same views out of its device copy."""
    host = slot.inputs.numpy()
    layout, at = [], 0
    for array in arrays:
        end = at + array.size
        host[at:end] = array.reshape(-1)
        layout.append((at, end, array.shape))
        at = end
    return slot.inputs[:at], layout


def unpack_inputs(flat: torch.Tensor, layout: list[tuple[int, int, tuple[int, ...]]]) -> list[torch.Tensor]:
    return [flat[start:end].view(shape) for start, end, shape in layout]
