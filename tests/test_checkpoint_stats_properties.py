"""Properties of the checkpoint-axis statistics on arbitrary series documents (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from app.analytics.cartography import TypeCartographyTally, occurrence_cartography
from app.analytics.learned_at import NEVER, LearnedAtTally, learned_at, learned_at_index
from app.analytics.scatter_sample import ScatterSample, point_hash
from app.analytics.trajectories import NotAligned, SeriesDocument, check_aligned
from app.analytics.transitions import TransitionTally, transitions

FAST = settings(max_examples=60, deadline=None)


@st.composite
def steps(draw, min_size=2, max_size=6):
    return np.array(sorted(draw(st.sets(st.integers(0, 10**6), min_size=min_size, max_size=max_size))))


@st.composite
def series_documents(draw, series_steps=None, max_tokens=24):
    steps_ = draw(steps()) if series_steps is None else series_steps
    n = draw(st.integers(0, max_tokens))
    shape = (steps_.size, n)
    logprob = draw(hnp.arrays(np.float32, shape, elements=st.floats(-20, 0, width=32)))
    rank = draw(hnp.arrays(np.int32, shape, elements=st.sampled_from([0, 0, 1, 2, 50])))
    token_id = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 40)))
    return SeriesDocument(steps_, logprob, rank, token_id)


@st.composite
def corpora(draw):
    """A few documents scored at the same steps."""
    steps_ = draw(steps())
    return draw(st.lists(series_documents(series_steps=steps_), min_size=1, max_size=4))


def concatenate(documents: list[SeriesDocument]) -> SeriesDocument:
    return SeriesDocument(documents[0].steps, np.concatenate([d.logprob for d in documents], axis=1),
                          np.concatenate([d.rank for d in documents], axis=1),
                          np.concatenate([d.token_id for d in documents]))


@FAST
@given(series_documents(), st.data(), st.floats(0, 25))
def test_transition_counts_sum_to_the_token_count(document, data, tau):
    a, b = sorted(data.draw(st.lists(st.sampled_from(document.steps.tolist()), min_size=2, max_size=2, unique=True)))
    result = transitions(document, a, b, tau, with_positions=True)
    assert result.counts.total == document.n_tokens
    every = np.sort(np.concatenate(list(result.positions.values())))
    assert every.tolist() == list(range(document.n_tokens))  # each occurrence in exactly one cell


@FAST
@given(series_documents())
def test_cartography_bounds(document):
    c = occurrence_cartography(document)
    assert ((c.confidence >= 0) & (c.confidence <= 1)).all()
    assert ((c.variability >= 0) & (c.variability <= 0.5 + 1e-12)).all()  # std of values in [0, 1]
    assert ((c.correctness >= 0) & (c.correctness <= 1)).all()
    # A forgetting event needs a top-1 step before it, so there are at most ⌊S/2⌋ ≤ S − 1.
    assert ((c.forgetting >= 0) & (c.forgetting <= document.n_steps // 2)).all()
    always_top1 = (document.rank == 0).all(axis=0)
    assert (c.forgetting[always_top1] == 0).all()
    assert (c.correctness[always_top1] == 1).all()


@FAST
@given(series_documents(), st.floats(0.001, 1), st.floats(0.001, 1))
def test_learned_at_is_monotone_in_the_easy_threshold(document, tau_1, tau_2):
    low, high = sorted((tau_1, tau_2))
    as_order = lambda steps: np.where(steps == NEVER, np.iinfo(np.int64).max, steps)  # noqa: E731
    assert (as_order(learned_at(document, low)) <= as_order(learned_at(document, high))).all()


@FAST
@given(series_documents(), st.floats(0.001, 1))
def test_learned_at_is_the_first_step_of_the_final_easy_run(document, tau_easy):
    index = learned_at_index(document, tau_easy)
    easy = document.p() >= tau_easy
    for i, first in enumerate(index.tolist()):
        assert easy[first:, i].all()
        assert first == 0 or not easy[first - 1, i]


@FAST
@given(corpora(), st.floats(0, 10), st.floats(0.01, 1))
def test_accumulating_documents_equals_their_concatenation(documents, tau, tau_easy):
    steps_ = documents[0].steps
    a, b = int(steps_[0]), int(steps_[-1])
    whole = concatenate(documents)
    transition_tally, learned_tally = TransitionTally(steps_, a, b, tau), LearnedAtTally(steps_, tau_easy)
    type_tally, whole_tally = TypeCartographyTally(steps_), TypeCartographyTally(steps_)
    for document in documents:
        transition_tally.add(document)
        learned_tally.add(document)
        type_tally.add(document)
    whole_tally.add(whole)
    assert transition_tally.counts == transitions(whole, a, b, tau).counts
    learned_whole = LearnedAtTally(steps_, tau_easy)
    learned_whole.add(whole)
    assert learned_tally.histogram() == learned_whole.histogram()
    streamed, at_once = type_tally.per_type(), whole_tally.per_type()
    assert streamed.token_id.tolist() == at_once.token_id.tolist()
    assert streamed.count.tolist() == at_once.count.tolist()
    for name in ("confidence", "variability", "correctness", "forgetting"):
        assert getattr(streamed, name) == pytest.approx(getattr(at_once, name), rel=1e-9, abs=1e-12)
    # Per-type means are means over occurrences: the count-weighted mean is the overall mean.
    if whole.n_tokens:
        overall = occurrence_cartography(whole).confidence.mean()
        assert (streamed.confidence * streamed.count).sum() / streamed.count.sum() == pytest.approx(overall)


@FAST
@given(corpora(), st.integers(1, 30), st.integers(0, 2**32), st.randoms(use_true_random=False))
def test_scatter_sample_is_the_bottom_k_in_any_order(documents, limit, seed, random):
    ids = list(range(len(documents)))
    samples = []
    for order in (ids, random.sample(ids, len(ids))):
        sample = ScatterSample(limit=limit, seed=seed)
        for i in order:
            sample.add(i, occurrence_cartography(documents[i]))
        samples.append(sample.points())
    every = sorted((int(h), i, pos) for i, d in enumerate(documents)
                   for pos, h in enumerate(point_hash(seed, i, np.arange(d.n_tokens))))
    expected = sorted((i, pos) for _, i, pos in every[:limit])
    for points in samples:
        assert list(zip(points.document_id.tolist(), points.position.tolist())) == expected


@FAST
@given(hnp.arrays(np.int64, st.integers(0, 12), elements=st.integers(0, 5)),
       hnp.arrays(np.int64, st.integers(0, 12), elements=st.integers(0, 5)))
def test_alignment_fails_exactly_when_token_ids_differ(first, second):
    if np.array_equal(first, second):
        assert check_aligned({"a": first, "b": second}, document_id=1) is None
        return
    with pytest.raises(NotAligned) as caught:
        check_aligned({"a": first, "b": second}, document_id=1)
    position = caught.value.position
    common = min(first.size, second.size)
    assert (first[:position] == second[:position]).all()
    assert position == common or first[position] != second[position]


@FAST
@given(st.lists(st.integers(0, 50), min_size=2, max_size=6).filter(lambda s: any(a >= b for a, b in zip(s, s[1:]))))
def test_steps_not_strictly_ascending_are_refused(bad_steps):
    n = len(bad_steps)
    with pytest.raises(ValueError, match="steps must be strictly ascending"):
        SeriesDocument(np.array(bad_steps), np.zeros((n, 1), np.float32), np.zeros((n, 1), np.int32), np.zeros(1, int))
