"""Aligning two runs' tokens of a document: hand-computed segments, hypothesis properties (segments
partition the text, each token lies in exactly one, segment Δs sum to the total, one tokenization
against itself gives the token alignment), and two real tokenizers of different vocabularies."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.assets import smollm2_gguf
from tests.support.gguf_tokenizer import smollm2_bpe
from app.analytics.alignment import (ALIGN_SEGMENT, ALIGN_TOKEN, Tokenization, align, common_cuts,
                                     segment_alignment, token_alignment, token_shares)

FAST = settings(max_examples=80, deadline=None)


def tokens(spans, p) -> Tokenization:
    spans = np.array(spans, dtype=np.int64).reshape(-1, 2)
    return Tokenization(spans[:, 0], spans[:, 1], np.log(np.array(p, dtype=np.float64)).astype(np.float32))


def test_segments_of_two_tokenizations_by_hand():
    # "the cat sat": A = the| cat| sat, B = the c|at| s|at. Common boundaries: 0, 7, 11.
    a = tokens([(0, 3), (3, 7), (7, 11)], [0.5, 0.25, 0.8])
    b = tokens([(0, 5), (5, 7), (7, 9), (9, 11)], [0.5] * 4)
    assert common_cuts(a, b).tolist() == [0, 7, 11]
    aligned = segment_alignment(a, b)
    assert aligned.kind == ALIGN_SEGMENT
    assert (aligned.char_start.tolist(), aligned.char_end.tolist()) == ([0, 7], [7, 11])
    assert (aligned.segment_a.tolist(), aligned.segment_b.tolist()) == ([0, 0, 1], [0, 0, 1, 1])
    # Segment 1: B's 0.5·0.5 against A's 0.5·0.25 → Δ = ln 2; segment 2: 0.25 against 0.8.
    assert aligned.delta == pytest.approx([math.log(2), math.log(0.25 / 0.8)], rel=1e-6)
    # A's tokens share their segment's Δ equally: the, cat ln 2 / 2 each; sat all of segment 2's.
    assert token_shares(aligned, 3) == pytest.approx([math.log(2) / 2, math.log(2) / 2, math.log(0.3125)], rel=1e-6)


def test_a_token_across_a_boundary_of_the_other_and_uncovered_characters():
    # A skips the space at 3 (a tokenizer that drops whitespace); B's " cat" starts there.
    a = tokens([(0, 3), (4, 7)], [0.5, 0.5])
    b = tokens([(0, 3), (3, 7)], [0.25, 0.5])
    aligned = segment_alignment(a, b)
    assert (aligned.char_start.tolist(), aligned.char_end.tolist()) == ([0, 3], [3, 7])
    assert aligned.delta == pytest.approx([math.log(0.5), 0.0], abs=1e-6)
    # Two pieces of one multi-byte character share its span; both stay in one unit.
    c = tokens([(0, 1), (0, 1), (1, 2)], [0.5, 0.5, 0.5])
    d = tokens([(0, 2)], [0.125])
    one = segment_alignment(c, d)
    assert (one.n_units, one.segment_a.tolist()) == (1, [0, 0, 0]) and one.delta == pytest.approx([0.0], abs=1e-6)


def test_the_same_token_ids_align_token_by_token():
    a = tokens([(0, 3), (3, 7)], [0.5, 0.25])
    b = tokens([(0, 3), (3, 7)], [0.25, 0.5])
    aligned = align(a, b, np.array([1, 2]), np.array([1, 2]))
    assert aligned.kind == ALIGN_TOKEN and aligned.delta == pytest.approx([-math.log(2), math.log(2)], rel=1e-6)
    assert align(a, b, np.array([1, 2]), np.array([1, 3])).kind == ALIGN_SEGMENT


@st.composite
def tokenizations(draw, length: int):
    """A tokenization of `length` characters: consecutive spans, some characters skipped (gaps), some
    spans repeated (pieces of one multi-byte character), log p in [−20, 0]."""
    cuts = sorted(draw(st.sets(st.integers(1, max(length - 1, 1)), max_size=length)) - {length})
    edges = [0, *[c for c in cuts if c < length], length]
    spans = []
    for start, end in zip(edges[:-1], edges[1:]):
        if draw(st.integers(0, 9)) == 0 and end - start > 1:
            start += 1  # a skipped character
        spans.extend([(start, end)] * draw(st.sampled_from([1, 1, 1, 2])))
    logprob = draw(st.lists(st.floats(-20, 0, width=32), min_size=len(spans), max_size=len(spans)))
    array = np.array(spans, dtype=np.int64).reshape(-1, 2)
    return Tokenization(array[:, 0], array[:, 1], np.array(logprob, dtype=np.float32))


@st.composite
def two_tokenizations(draw):
    length = draw(st.integers(1, 40))
    return draw(tokenizations(length)), draw(tokenizations(length))


@FAST
@given(two_tokenizations())
def test_segments_partition_the_text_and_hold_each_token_once(pair):
    a, b = pair
    aligned = segment_alignment(a, b)
    # Segments are disjoint, in text order, and together span every token of both runs.
    assert (aligned.char_start[1:] >= aligned.char_end[:-1]).all()
    assert (aligned.char_start < aligned.char_end).all() or (aligned.char_start <= aligned.char_end).all()
    for run, segment in ((a, aligned.segment_a), (b, aligned.segment_b)):
        assert segment.shape == (run.n_tokens,) and (np.diff(segment) >= 0).all()  # one unit each, in order
        assert (aligned.char_start[segment] <= run.char_start).all() and (run.char_end <= aligned.char_end[segment]).all()
    used = np.union1d(aligned.segment_a, aligned.segment_b)
    assert used.tolist() == list(range(aligned.n_units))  # no empty unit
    total = float(np.sum(b.logprob, dtype=np.float64) - np.sum(a.logprob, dtype=np.float64))
    assert float(aligned.delta.sum()) == pytest.approx(total, abs=1e-9 * (1 + abs(total)) + 1e-9)


@FAST
@given(st.integers(1, 40).flatmap(tokenizations), st.data())
def test_a_tokenization_against_itself_segments_into_its_tokens(a, data):
    distinct = np.r_[True, (np.diff(a.char_start) != 0) | (np.diff(a.char_end) != 0)] if a.n_tokens else np.zeros(0, bool)
    a = Tokenization(a.char_start[distinct], a.char_end[distinct], a.logprob[distinct])  # one token per span
    logprob_b = np.array(data.draw(st.lists(st.floats(-20, 0, width=32), min_size=a.n_tokens, max_size=a.n_tokens)),
                         dtype=np.float32)
    b = Tokenization(a.char_start, a.char_end, logprob_b)
    by_segment, by_token = segment_alignment(a, b), token_alignment(a, b)
    for name in ("segment_a", "segment_b", "char_start", "char_end", "logprob_a", "logprob_b"):
        assert getattr(by_segment, name).tolist() == getattr(by_token, name).tolist(), name


@pytest.fixture(scope="module")
def real_tokenizers():
    """A byte-level BPE trained here on a small text (300 types), and SmolLM2's (49,152 types, from its GGUF)."""
    from workers.training.tokenizer import train_bpe

    text = ("Is this a dagger which I see before me, the handle toward my hand? Come, let me clutch thee. "
            "I have thee not, and yet I see thee still. ") * 20
    return train_bpe([text], 300, model_max_length=512).backend_tokenizer, smollm2_bpe(smollm2_gguf())


def test_two_real_tokenizers_align_on_words(real_tokenizers):
    text = "Thou marshall'st me the way that I was going; naïve café — 😀 and such an instrument I was to use."
    runs = []
    for k, tokenizer in enumerate(real_tokenizers):
        encoded = tokenizer.encode(text, add_special_tokens=False)
        spans = np.array(encoded.offsets, dtype=np.int64)
        rng = np.random.default_rng(k)
        runs.append((Tokenization(spans[:, 0], spans[:, 1], -rng.exponential(2.0, len(spans)).astype(np.float32)),
                     np.array(encoded.ids)))
    (a, ids_a), (b, ids_b) = runs
    assert a.n_tokens != b.n_tokens  # the two vocabularies cut the text differently
    aligned = align(a, b, ids_a, ids_b)
    assert aligned.kind == ALIGN_SEGMENT
    # Both tokenizers put a boundary before every space-led word, so each word boundary is a cut.
    cuts = set(common_cuts(a, b).tolist())
    assert {i for i, c in enumerate(text) if c == " "} <= cuts
    assert aligned.n_units >= text.count(" ") + 1
    assert float(aligned.delta.sum()) == pytest.approx(float(b.logprob.sum(dtype=np.float64) - a.logprob.sum(dtype=np.float64)), abs=1e-6)
    assert "".join(text[s:e] for s, e in zip(aligned.char_start, aligned.char_end)) == text
