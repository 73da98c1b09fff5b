"""Cartography, forgetting events, per-type aggregation, frequency buckets and the scatter sample,
against hand-computed answers (the 3-step, 4-token document of tests/series_documents.py)."""

import numpy as np
import pytest

from app.analytics.cartography import (AMBIGUOUS, EASY, HARD, REGIONS, TypeCartographyTally,
                                       occurrence_cartography, regions)
from app.analytics.scatter_sample import ScatterSample, point_hash
from app.analytics.summary import RunArrays, summarize
from app.analytics.token_types import frequency_buckets
from tests.support.series import P, RANK, STEPS, make_document


def test_occurrence_cartography():
    c = occurrence_cartography(make_document())
    assert c.token_id.tolist() == [7, 3, 7, 9]
    assert c.confidence == pytest.approx([0.9, 0.6, 0.5666667, 0.1333333], abs=1e-6)
    # Population std (ddof = 0): token 0 deviates by 0, −0.05, 0.05 → √(0.005 / 3).
    assert c.variability == pytest.approx([0.0408248, 0.2943920, 0.2054805, 0.0471405], abs=1e-6)
    assert c.correctness == pytest.approx([2 / 3, 2 / 3, 2 / 3, 0.0])
    assert c.forgetting.tolist() == [1, 0, 1, 0]
    assert c.count is None


@pytest.mark.parametrize("ranks, events", [
    ([0, 1, 0, 2, 0], 2),
    ([0, 0, 0, 0, 0], 0),
    ([3, 1, 1, 2, 1], 0),  # never top-1: nothing to forget
    ([0, 1, 1, 0, 0], 1),
    ([1, 0, 0, 0, 7], 1),
])
def test_forgetting_events(ranks, events):
    document = make_document(p=[[0.5]] * 5, rank=[[r] for r in ranks], token_id=[1], steps=[0, 10, 20, 30, 40])
    assert occurrence_cartography(document).forgetting.tolist() == [events]


def test_regions_default_rule_and_thresholds():
    c = occurrence_cartography(make_document())
    assert regions(c.confidence, c.variability).tolist() == [EASY, AMBIGUOUS, AMBIGUOUS, HARD]
    assert [REGIONS[code] for code in regions(c.confidence, c.variability)] == [
        "easy-to-learn", "ambiguous", "ambiguous", "hard-to-learn"]
    assert regions(c.confidence, c.variability, variability_threshold=0.3).tolist() == [EASY, EASY, EASY, HARD]
    assert regions(c.confidence, c.variability, variability_threshold=0.3,
                   confidence_threshold=0.7).tolist() == [EASY, HARD, HARD, HARD]
    # The boundaries belong to the upper side: variability 0.2 is ambiguous, confidence 0.5 easy.
    assert regions(np.array([0.5, 0.5]), np.array([0.2, 0.1])).tolist() == [AMBIGUOUS, EASY]


@pytest.mark.parametrize("kwargs, message", [
    ({"variability_threshold": float("nan")}, r"variability_threshold must be in \[0, 1\], got nan"),
    ({"confidence_threshold": 1.5}, r"confidence_threshold must be in \[0, 1\], got 1.5"),
])
def test_bad_region_thresholds_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        regions(np.array([0.5]), np.array([0.1]), **kwargs)


def test_region_inputs_must_match():
    with pytest.raises(ValueError, match=r"confidence \(2,\) and variability \(1,\) differ in shape"):
        regions(np.array([0.5, 0.6]), np.array([0.1]))


def test_per_type_cartography():
    tally = TypeCartographyTally(STEPS)
    tally.add(make_document())
    per_type = tally.per_type()
    assert per_type.token_id.tolist() == [3, 7, 9]
    assert per_type.count.tolist() == [1, 2, 1]
    # Type 7 is tokens 0 and 2: the mean of their occurrence values.
    assert per_type.confidence == pytest.approx([0.6, 0.7333333, 0.1333333], abs=1e-6)
    assert per_type.variability == pytest.approx([0.2943920, 0.1231526, 0.0471405], abs=1e-6)
    assert per_type.correctness == pytest.approx([2 / 3, 2 / 3, 0.0])
    assert per_type.forgetting == pytest.approx([0.0, 1.0, 0.0])
    frequent = tally.per_type(min_count=2)
    assert (frequent.token_id.tolist(), frequent.count.tolist()) == ([7], [2])


def test_per_type_cartography_over_two_documents_and_a_large_id():
    tally = TypeCartographyTally(STEPS)
    tally.add(make_document())
    tally.add(make_document(token_id=[7, 50_000, 50_000, 3]))
    per_type = tally.per_type()
    assert per_type.token_id.tolist() == [3, 7, 9, 50_000]
    assert per_type.count.tolist() == [2, 3, 1, 2]
    # Type 3: token 1 of the first document (0.6) and token 3 of the second (0.1333).
    assert per_type.confidence[0] == pytest.approx((0.6 + 0.1333333) / 2, abs=1e-6)
    assert per_type.forgetting[1] == pytest.approx(1.0)  # tokens 0, 2 and 0 forgot once each


def test_type_with_zero_sums_is_still_listed():
    # p ≈ 0, never top-1: confidence, variability, correctness and forgetting all sum to 0, count 1.
    document = make_document(p=[[1e-30]] * 3, rank=[[4]] * 3, token_id=[0])
    tally = TypeCartographyTally(STEPS)
    tally.add(document)
    assert (tally.per_type().token_id.tolist(), tally.per_type().count.tolist()) == ([0], [1])


def test_frequency_buckets_by_hand():
    # Types by id with counts 1, 2, 1 → rarest first: ids 0, 2, 1; token shares 1/4, 2/4, 4/4.
    assert frequency_buckets(np.array([1, 2, 1])).tolist() == [2, 9, 4]
    assert frequency_buckets(np.array([1, 2, 1]), n_buckets=2).tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="at least once"):
        frequency_buckets(np.array([1, 0, 3]))


def test_frequency_buckets_follow_the_run_summary_rule():
    rng = np.random.default_rng(3)
    token_id = rng.zipf(1.3, size=3000) % 500
    logprob = -rng.exponential(2.0, size=token_id.size)
    n = token_id.size
    summary = summarize(RunArrays(token_id=token_id, logprob=logprob, entropy=np.ones(n), rank=np.zeros(n, int),
                                  top1_logprob=np.zeros(n), sum_p2=np.ones(n)), {})
    types, inverse, counts = np.unique(token_id, return_inverse=True, return_counts=True)
    token_bucket = frequency_buckets(counts)[inverse]
    expected = [b["tokens"] for b in summary["stats"]["vocabulary"]["frequency_buckets"]]
    assert np.bincount(token_bucket, minlength=10).tolist() == expected
    mean_loss = [b["mean_loss"] for b in summary["stats"]["vocabulary"]["frequency_buckets"] if b["tokens"]]
    ours = [(-logprob[token_bucket == b]).mean() for b in range(10) if (token_bucket == b).any()]
    assert ours == pytest.approx(mean_loss)


# --- scatter sample --------------------------------------------------------------------------------

def _documents(count, n, seed=0):
    rng = np.random.default_rng(seed)
    docs = []
    for document_id in range(count):
        p = rng.uniform(0.01, 1.0, size=(3, n))
        rank = rng.integers(0, 3, size=(3, n))
        docs.append((document_id + 100, make_document(p=p, rank=rank, token_id=rng.integers(0, 50, n))))
    return docs


def test_scatter_keeps_everything_under_the_limit_in_document_order():
    sample = ScatterSample(limit=10)
    sample.add(2, occurrence_cartography(make_document()))
    sample.add(1, occurrence_cartography(make_document(p=P[::-1], rank=RANK[::-1])))
    points = sample.points()
    assert points.document_id.tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
    assert points.position.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert points.token_id.tolist() == [7, 3, 7, 9, 7, 3, 7, 9]
    assert points.confidence[4:] == pytest.approx([0.9, 0.6, 0.5666667, 0.1333333], abs=1e-6)
    assert points.variability[4:] == pytest.approx([0.0408248, 0.2943920, 0.2054805, 0.0471405], abs=1e-6)
    assert points.correctness[4:] == pytest.approx([2 / 3, 2 / 3, 2 / 3, 0.0])
    assert points.forgetting.tolist() == [1, 1, 0, 0, 1, 0, 1, 0]
    assert sample.seen == 8


def test_scatter_keeps_the_smallest_hashes_whatever_the_order():
    docs = _documents(6, 40)
    forward, backward = ScatterSample(limit=25, seed=7), ScatterSample(limit=25, seed=7)
    for document_id, document in docs:
        forward.add(document_id, occurrence_cartography(document))
    for document_id, document in reversed(docs):
        backward.add(document_id, occurrence_cartography(document))
    every = [(h, d, pos) for d, _ in docs for pos, h in enumerate(point_hash(7, d, np.arange(40)))]
    expected = sorted((d, pos) for _, d, pos in sorted(every)[:25])
    for sample in (forward, backward):
        points = sample.points()
        assert list(zip(points.document_id.tolist(), points.position.tolist())) == expected
        assert sample.seen == 240
    other_seed = ScatterSample(limit=25, seed=8)
    for document_id, document in docs:
        other_seed.add(document_id, occurrence_cartography(document))
    assert other_seed.points().position.tolist() != forward.points().position.tolist()


def test_scatter_sample_is_spread_evenly_over_documents():
    sample = ScatterSample(limit=4000)
    for document_id in range(4):
        sample.add(document_id, occurrence_cartography(make_document(p=[[0.5] * 10_000] * 3,
                                                                     rank=[[0] * 10_000] * 3,
                                                                     token_id=[1] * 10_000)))
    per_document = np.bincount(sample.points().document_id, minlength=4)
    assert per_document.sum() == 4000
    assert per_document.min() > 900 and per_document.max() < 1100  # 1000 expected; sd ≈ 27


@pytest.mark.parametrize("limit", [0, -3, 2.5])
def test_bad_scatter_limit_is_refused(limit):
    with pytest.raises(ValueError, match="scatter limit must be a positive integer"):
        ScatterSample(limit=limit)
