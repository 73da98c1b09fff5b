"""Two runs' tokens of one document lined up: token by token when both stored the same token ids, else
on character spans (segments where both tokenizations have a boundary). Formulas: docs/formulas.md.

Δ is always B − A in log p: Δ > 0 where model B gives the text more probability than model A.
A segment's Δ is Σ log p of B's tokens in it − Σ log p of A's; every token lies in exactly one
segment, so a document's segment Δs sum to its total Δ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALIGN_TOKEN = "token"
ALIGN_SEGMENT = "segment"


@dataclass(frozen=True)
class Tokenization:
    """One run's tokens of a document: character spans [start, end) and log p of each."""

    char_start: np.ndarray
    char_end: np.ndarray
    logprob: np.ndarray

    @property
    def n_tokens(self) -> int:
        return int(self.char_start.size)


@dataclass(frozen=True)
class Alignment:
    """Units (tokens or segments) of a document. segment_a[i] is the unit of A's token i (ascending),
    segment_b likewise; each unit's span covers its tokens of both runs."""

    kind: str
    segment_a: np.ndarray
    segment_b: np.ndarray
    char_start: np.ndarray  # per unit
    char_end: np.ndarray
    logprob_a: np.ndarray  # per unit: Σ log p of A's tokens in it (float64)
    logprob_b: np.ndarray

    @property
    def n_units(self) -> int:
        return int(self.char_start.size)

    @property
    def delta(self) -> np.ndarray:
        return self.logprob_b - self.logprob_a


def straddled(tokens: Tokenization, length: int) -> np.ndarray:
    """[length + 1] booleans: position x lies strictly inside some token's span (start < x < end)."""
    long = tokens.char_end - tokens.char_start > 1
    # +1 where a span's inside begins, −1 where it ends: the running sum counts spans covering x.
    inside = (np.bincount(tokens.char_start[long] + 1, minlength=length + 2)
              - np.bincount(tokens.char_end[long], minlength=length + 2))
    return np.cumsum(inside)[: length + 1] > 0


def common_cuts(a: Tokenization, b: Tokenization) -> np.ndarray:
    """Ascending character positions where both tokenizations have a boundary: a token of each starts or
    ends there and no token of either spans across it."""
    length = int(max(a.char_end.max(initial=0), b.char_end.max(initial=0)))
    free = ~(straddled(a, length) | straddled(b, length))
    in_a = np.zeros(length + 1, dtype=bool)
    in_b = np.zeros(length + 1, dtype=bool)
    in_a[a.char_start] = in_a[a.char_end] = True
    in_b[b.char_start] = in_b[b.char_end] = True
    return np.flatnonzero(free & in_a & in_b)


def segment_alignment(a: Tokenization, b: Tokenization) -> Alignment:
    """Segments between consecutive common cuts that hold a token of A or B. A token belongs to the
    segment its start falls in; it cannot reach past the next cut, since no token straddles one."""
    cuts = common_cuts(a, b)
    raw_a = np.searchsorted(cuts, a.char_start, side="right")
    raw_b = np.searchsorted(cuts, b.char_start, side="right")
    # Renumber the segments that hold a token 0, 1, … (a mark per segment, not a sort).
    held = np.zeros(cuts.size + 1, dtype=bool)
    held[raw_a] = held[raw_b] = True
    number = np.cumsum(held) - 1
    segment_a, segment_b = number[raw_a], number[raw_b]
    n = int(held.sum())
    return Alignment(
        kind=ALIGN_SEGMENT, segment_a=segment_a, segment_b=segment_b,
        char_start=np.minimum(_per_segment(np.minimum, n, segment_a, a.char_start, np.iinfo(np.int64).max),
                              _per_segment(np.minimum, n, segment_b, b.char_start, np.iinfo(np.int64).max)),
        char_end=np.maximum(_per_segment(np.maximum, n, segment_a, a.char_end, 0),
                            _per_segment(np.maximum, n, segment_b, b.char_end, 0)),
        logprob_a=np.bincount(segment_a, weights=a.logprob.astype(np.float64), minlength=n),
        logprob_b=np.bincount(segment_b, weights=b.logprob.astype(np.float64), minlength=n),
    )


def token_alignment(a: Tokenization, b: Tokenization) -> Alignment:
    """Token i of A is token i of B (the caller checked the stored token ids agree)."""
    if a.n_tokens != b.n_tokens:
        raise ValueError(f"token alignment needs as many tokens in both runs ({a.n_tokens} and {b.n_tokens})")
    units = np.arange(a.n_tokens)
    return Alignment(kind=ALIGN_TOKEN, segment_a=units, segment_b=units, char_start=a.char_start.astype(np.int64),
                     char_end=a.char_end.astype(np.int64), logprob_a=a.logprob.astype(np.float64),
                     logprob_b=b.logprob.astype(np.float64))


def align(a: Tokenization, b: Tokenization, token_id_a: np.ndarray, token_id_b: np.ndarray) -> Alignment:
    """Token by token when both runs stored the same token ids and spans, else by segments."""
    same = (np.array_equal(token_id_a, token_id_b) and np.array_equal(a.char_start, b.char_start)
            and np.array_equal(a.char_end, b.char_end))
    return token_alignment(a, b) if same else segment_alignment(a, b)


def token_shares(alignment: Alignment, n_tokens_a: int) -> np.ndarray:
    """Each of A's tokens' share of its unit's Δ: the unit's Δ divided equally among A's tokens in it
    (so per-token shares sum to the document's total Δ, up to B-only units, which no A token holds)."""
    per_unit = np.bincount(alignment.segment_a, minlength=alignment.n_units)
    return alignment.delta[alignment.segment_a] / per_unit[alignment.segment_a] if n_tokens_a else np.zeros(0)


def _per_segment(ufunc, n: int, segment: np.ndarray, values: np.ndarray, empty) -> np.ndarray:
    """ufunc reduced over each segment's values (`segment` ascending), `empty` where a segment has none."""
    out = np.full(n, empty, dtype=np.int64)
    if segment.size:
        firsts = np.flatnonzero(np.concatenate([[True], segment[1:] != segment[:-1]]))
        out[segment[firsts]] = ufunc.reduceat(values.astype(np.int64), firsts)
    return out
