"""Batches without waste: place a pool of windows into model inputs and build their index arrays.

Two layouts, both restoring each token's place in its document through `dest`:

- buckets (default): windows sorted by length, one per row, right-padded to the longest in the
  batch; no attention mask is needed (causal attention never looks right), so the fastest causal
  kernels run. Sorting a pool of many windows makes neighbouring lengths nearly equal, and a batch
  takes no window more than BUCKET_SLACK shorter than its longest (a CPU pays for padding in full,
  so a few documents of very different lengths go one batch each).
- packed: windows placed best-fit-decreasing into rows as wide as the longest window, several per
  row, each with its own position ids 0, 1, ...; transformers turns restarting position ids into
  a block-diagonal causal mask, so no window sees another. Every batch has the same width (kind to
  torch.compile) and padding is near zero even for very short documents, at the price of a
  materialised mask (no flash kernel).

Everything here is integer numpy arithmetic on whole arrays: the Python cost per batch does not
grow with the number of tokens, so a background thread can keep a GPU fed.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

# A bucket's windows are at least (1 − BUCKET_SLACK) × its width long: padding ≤ 10% per batch.
BUCKET_SLACK = 0.1


@dataclass
class Placement:
    """Where each window of one batch goes: `items` (window indices), their `row` and first `col`."""

    rows: int
    width: int
    items: np.ndarray
    row: np.ndarray
    col: np.ndarray

    @property
    def padded_tokens(self) -> int:
        return self.rows * self.width


def plan_batches(lengths: np.ndarray, max_batch_tokens: int, *, pack: bool) -> list[Placement]:
    """Cut windows of the given input lengths into batches of at most max_batch_tokens padded tokens
    (a single window longer than that still gets a batch of its own). Longest first: an out-of-memory
    batch shows up at the start rather than after an hour."""
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    if not len(order):
        return []
    return _packed(lengths, order, max_batch_tokens) if pack else _buckets(lengths, order, max_batch_tokens)


def _buckets(lengths, order, budget) -> list[Placement]:
    batches, start = [], 0
    while start < len(order):
        width = int(lengths[order[start]])
        count = max(1, min(len(order) - start, budget // max(width, 1)))
        # Sorted descending: the windows long enough to share this batch form a prefix.
        long_enough = lengths[order[start : start + count]] >= (1 - BUCKET_SLACK) * width
        count = max(1, int(long_enough.sum()))
        items = order[start : start + count]
        batches.append(Placement(count, width, items, np.arange(count), np.zeros(count, np.int64)))
        start += count
    return batches


def _packed(lengths, order, budget) -> list[Placement]:
    width = int(lengths[order[0]])
    # Best fit decreasing: each window goes to the open row with the least room that still holds it.
    room: list[tuple[int, int]] = []  # (free columns, row), sorted
    used: list[int] = []
    row_of = np.empty(len(lengths), np.int64)
    col_of = np.empty(len(lengths), np.int64)
    for item in order.tolist():
        length = int(lengths[item])
        at = bisect.bisect_left(room, (length, -1))
        if at == len(room):
            row = len(used)
            used.append(0)
        else:
            row = room.pop(at)[1]
        row_of[item], col_of[item] = row, used[row]
        used[row] += length
        if width - used[row] > 0:
            bisect.insort(room, (width - used[row], row))
    rows_per_batch = max(1, budget // max(width, 1))
    batches = []
    by_row = order[np.argsort(row_of[order], kind="stable")]
    bounds = np.searchsorted(row_of[by_row], np.arange(0, len(used) + rows_per_batch, rows_per_batch))
    for first_row, (lo, hi) in zip(range(0, len(used), rows_per_batch), zip(bounds[:-1], bounds[1:])):
        items = by_row[lo:hi]
        rows = min(rows_per_batch, len(used) - first_row)
        batches.append(Placement(rows, width, items, row_of[items] - first_row, col_of[items]))
    return batches


def split(placement: Placement) -> list[Placement]:
    """Two halves of a batch by rows (for an out-of-memory retry); a one-row batch cannot split."""
    half = placement.rows // 2
    if half == 0:
        return [placement]
    lower = placement.row < half
    return [
        Placement(half, placement.width, placement.items[lower], placement.row[lower], placement.col[lower]),
        Placement(placement.rows - half, placement.width, placement.items[~lower], placement.row[~lower] - half, placement.col[~lower]),
    ]


def _ranges(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For consecutive ranges of the given lengths: each element's range index and offset in it."""
    owner = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.cumsum(lengths) - lengths
    return owner, np.arange(int(lengths.sum()), dtype=np.int64) - starts[owner]


@dataclass
class Windows:
    """A pool's windows as arrays: `sequence` holds every document's [prefix] + tokens back to back
    (document d from `seq_base[d]`), `dest_base[d]` is where d's tokens start in the pool's output
    arrays, and window w reads sequence[seq_base[doc] + start : ... + length] scoring from score_from."""

    sequence: np.ndarray
    seq_base: np.ndarray
    dest_base: np.ndarray
    doc: np.ndarray
    start: np.ndarray
    length: np.ndarray
    score_from: np.ndarray


@dataclass
class Batch:
    """Model inputs of one batch and where its scored predictions go."""

    input_ids: np.ndarray  # [rows, width] int64, 0 where padding
    position_ids: np.ndarray | None  # [rows, width], packed layout only
    flat_index: np.ndarray  # [N] row * width + column of each scored prediction
    targets: np.ndarray  # [N] the token each one predicts
    dest: np.ndarray  # [N] its index in the pool's output arrays
    context_len: np.ndarray  # [N] tokens of context it had
    real_tokens: int
    padded_tokens: int
    placement: Placement


def build(windows: Windows, placement: Placement, *, pack: bool) -> Batch:
    items = placement.items
    width = placement.width
    length = windows.length[items]
    owner, offset = _ranges(length)
    source = windows.seq_base[windows.doc[items]][owner] + windows.start[items][owner] + offset
    target = (placement.row * width + placement.col)[owner] + offset
    input_ids = np.zeros((placement.rows, width), np.int64)
    input_ids.reshape(-1)[target] = windows.sequence[source]
    position_ids = None
    if pack:
        position_ids = np.tile(np.arange(width, dtype=np.int64), (placement.rows, 1))
        position_ids.reshape(-1)[target] = offset
    scored = offset >= windows.score_from[items][owner]
    doc_start = windows.dest_base[windows.doc[items]][owner] + windows.start[items][owner]
    return Batch(
        input_ids=input_ids, position_ids=position_ids, flat_index=target[scored],
        targets=windows.sequence[source[scored] + 1], dest=(doc_start + offset)[scored],
        context_len=(offset + 1)[scored].astype(np.int32), real_tokens=int(length.sum()),
        padded_tokens=placement.padded_tokens, placement=placement,
    )
