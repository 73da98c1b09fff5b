"""Checkpoint-axis statistics against hand-computed answers: alignment, trajectories, transitions,
learned-at, on the document of tests/series_documents.py. (Cartography and the scatter sample:
test_checkpoint_stats_cartography.py; properties: test_checkpoint_stats_properties.py.)"""

import numpy as np
import pytest

from app.analytics.learned_at import NEVER, LearnedAtTally, learned_at
from app.analytics.trajectories import NotAligned, SeriesDocument, check_aligned, trajectory
from app.analytics.transitions import DEFAULT_LOSS_THRESHOLD, TransitionTally, transitions
from tests.support.series import P, RANK, STEPS, TOKEN_ID, make_document


# --- alignment -------------------------------------------------------------------------------------

def test_aligned_runs_pass():
    check_aligned({1: np.array([5, 6, 7]), 2: np.array([5, 6, 7]), 3: np.array([5, 6, 7])}, document_id=4)
    check_aligned({1: np.array([5, 6, 7])}, document_id=4)


def test_first_disagreeing_run_and_position_are_named():
    runs = {"ce-100": np.array([1, 2, 3, 4]), "ce-200": np.array([1, 2, 3, 4]),
            "ce-300": np.array([1, 2, 9, 8]), "ce-400": np.array([0, 2, 3, 4])}
    with pytest.raises(NotAligned) as caught:
        check_aligned(runs, document_id=12)
    assert str(caught.value) == ("run ce-300 is not aligned with run ce-100 on document 12: "
                                 "token 2 is id 9 there and id 3 in run ce-100")
    assert (caught.value.run_id, caught.value.reference_run_id) == ("ce-300", "ce-100")
    assert (caught.value.document_id, caught.value.position) == (12, 2)
    assert isinstance(caught.value, ValueError)


def test_length_mismatch_is_named_with_the_first_missing_position():
    with pytest.raises(NotAligned, match=r"run 8 .* run 7 on document 3: 2 tokens there and 3 in run 7 "
                                         r"\(they first differ at token 2\)") as caught:
        check_aligned({7: np.array([1, 2, 3]), 8: np.array([1, 2])}, document_id=3)
    assert caught.value.position == 2


def test_no_runs_is_an_error():
    with pytest.raises(ValueError, match="document 3: no runs"):
        check_aligned({}, document_id=3)


# --- the document and its validation ---------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"steps": [200, 100, 300]}, "strictly ascending"),
    ({"steps": [100, 100, 300]}, "strictly ascending"),
    ({"steps": [-1, 100, 300]}, "≥ 0"),
    ({"steps": [100.0, 200.0, 300.0]}, "integers"),
    ({"steps": []}, "non-empty"),
    ({"token_id": [7, 3, 7]}, r"logprob has shape \(3, 4\), expected \(steps, tokens\) = \(3, 3\)"),
    ({"rank": [[0, 0, 0, 0], [0, 0, 0, 0]]}, r"rank has shape \(2, 4\)"),
    ({"rank": [[0, 0, 0, -1], [0, 0, 0, 0], [0, 0, 0, 0]]}, "rank must be ≥ 0"),
])
def test_bad_document_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_document(**kwargs)


def test_nan_logprob_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        make_document(p=[[0.5, np.nan, 0.5, 0.5], P[1], P[2]])


def test_trajectory_of_one_occurrence():
    t = trajectory(make_document(), 2)
    assert (t.position, t.token_id, t.steps, t.rank) == (2, 7, [100, 200, 300], [0, 0, 1])
    assert t.p == pytest.approx([0.6, 0.8, 0.3], abs=1e-7)
    assert t.loss == pytest.approx([0.5108256, 0.2231436, 1.2039728], abs=1e-6)
    assert trajectory(make_document(steps=[5], p=[P[0]], rank=[RANK[0]]), 0).steps == [5]
    with pytest.raises(ValueError, match="position 4 is outside the document's 4 tokens"):
        trajectory(make_document(), 4)


# --- transitions -----------------------------------------------------------------------------------

def test_default_threshold_is_p_one_half():
    assert DEFAULT_LOSS_THRESHOLD == pytest.approx(0.6931472)


@pytest.mark.parametrize("step_a, step_b, tau, expected", [
    (100, 300, DEFAULT_LOSS_THRESHOLD, {"HH": 1, "LH": 1, "HL": 1, "LL": 1}),
    (100, 200, DEFAULT_LOSS_THRESHOLD, {"HH": 1, "LH": 0, "HL": 1, "LL": 2}),
    (200, 300, DEFAULT_LOSS_THRESHOLD, {"HH": 1, "LH": 1, "HL": 0, "LL": 2}),
    (100, 300, 2.0, {"HH": 0, "LH": 0, "HL": 1, "LL": 3}),  # H ⇔ p < e^−2 ≈ 0.135
    (100, 300, 0.0, {"HH": 4, "LH": 0, "HL": 0, "LL": 0}),  # every p < 1 is above zero loss
])
def test_transition_counts(step_a, step_b, tau, expected):
    result = transitions(make_document(), step_a, step_b, tau)
    assert result.counts.counts == expected
    assert result.positions is None


def test_transition_positions_shares_and_matrix():
    result = transitions(make_document(), 100, 300, with_positions=True)
    assert {cell: pos.tolist() for cell, pos in result.positions.items()} == {
        "HH": [3], "LH": [2], "HL": [1], "LL": [0]}
    counts = transitions(make_document(), 100, 200).counts
    assert counts.matrix() == [[1, 1], [0, 2]]  # rows H, L at step a; columns H, L at step b
    assert counts.shares() == {"HH": 0.25, "LH": 0.0, "HL": 0.25, "LL": 0.5}
    assert (counts.step_a, counts.step_b, counts.total) == (100, 200, 4)


def test_loss_equal_to_tau_is_low():
    document = SeriesDocument(np.array(STEPS), np.full((3, 4), -1.0), np.zeros((3, 4), dtype=np.int32),
                              np.array(TOKEN_ID))
    assert transitions(document, 100, 300, tau=1.0).counts.counts["LL"] == 4


def test_transition_tally_sums_documents():
    tally = TransitionTally(STEPS, 100, 300)
    first = tally.add(make_document())
    tally.add(make_document(p=[[0.1, 0.1, 0.1, 0.1], P[1], [0.9, 0.9, 0.1, 0.1]]))
    assert first.counts == {"HH": 1, "LH": 1, "HL": 1, "LL": 1}
    assert tally.counts.counts == {"HH": 3, "LH": 1, "HL": 3, "LL": 1}
    with pytest.raises(ValueError, match=r"document steps \[1, 2, 3\] differ from the series' steps \[100, 200, 300\]"):
        tally.add(make_document(steps=[1, 2, 3]))


@pytest.mark.parametrize("step_a, step_b, tau, message", [
    (100, 300, float("nan"), "τ must be a finite number ≥ 0"),
    (100, 300, float("inf"), "τ must be a finite number ≥ 0"),
    (100, 300, -0.1, "τ must be a finite number ≥ 0"),
    (100, 150, 1.0, r"step 150 is not a checkpoint of this series \(steps: \[100, 200, 300\]\)"),
    (200, 200, 1.0, "step a < step b, got a = 200, b = 200"),
    (300, 100, 1.0, "step a < step b, got a = 300, b = 100"),
])
def test_bad_transition_question_is_refused(step_a, step_b, tau, message):
    with pytest.raises(ValueError, match=message):
        transitions(make_document(), step_a, step_b, tau)
    with pytest.raises(ValueError, match=message):
        TransitionTally(STEPS, step_a, step_b, tau)


def test_one_checkpoint_is_not_a_series():
    one_step = make_document(steps=[5], p=[P[0]], rank=[RANK[0]])
    with pytest.raises(ValueError, match="at least 2 steps, got 1"):
        transitions(one_step, 5, 5)
    with pytest.raises(ValueError, match="at least 2 steps, got 1"):
        learned_at(one_step)
    with pytest.raises(ValueError, match="at least 2 steps, got 1"):
        LearnedAtTally([5])


# --- learned-at ------------------------------------------------------------------------------------

@pytest.mark.parametrize("tau_easy, expected", [
    (0.5, [100, 200, NEVER, NEVER]),
    (0.88, [300, 300, NEVER, NEVER]),  # token 0 dips to 0.85 at step 200
    (0.15, [100, 100, 100, 300]),
    (1.0, [NEVER, NEVER, NEVER, NEVER]),
])
def test_learned_at(tau_easy, expected):
    assert learned_at(make_document(), tau_easy).tolist() == expected
    assert NEVER == -1


def test_learned_at_histogram_overall_and_by_frequency_bucket():
    tally = LearnedAtTally(STEPS)
    assert tally.add(make_document()).tolist() == [100, 200, NEVER, NEVER]
    histogram = tally.histogram()
    assert (histogram.steps, histogram.tau_easy) == ([100, 200, 300], 0.5)
    assert (histogram.overall.counts, histogram.overall.never) == ([1, 1, 0], 2)
    # Type counts 3:1, 7:2, 9:1 → rarest first 3, 9, 7 with token shares 1/4, 2/4, 4/4 → buckets 2, 4, 9.
    by_bucket = [(h.counts, h.never) for h in histogram.by_bucket]
    empty = ([0, 0, 0], 0)
    assert by_bucket == [empty, empty, ([0, 1, 0], 0), empty, ([0, 0, 0], 1),
                         empty, empty, empty, empty, ([1, 0, 0], 1)]
    two = tally.histogram(n_buckets=2)
    assert [(h.counts, h.never) for h in two.by_bucket] == [([0, 1, 0], 1), ([1, 0, 0], 1)]


def test_learned_at_tally_sums_documents():
    tally = LearnedAtTally(STEPS, tau_easy=0.15)
    tally.add(make_document())
    tally.add(make_document(token_id=[9, 9, 9, 9]))
    histogram = tally.histogram(n_buckets=2)
    assert (histogram.overall.counts, histogram.overall.never) == ([6, 0, 2], 0)
    # Type counts 3:1, 7:2, 9:5 → shares 1/8, 3/8, 8/8 → buckets 0, 0, 1.
    assert [(h.counts, h.never) for h in histogram.by_bucket] == [([3, 0, 0], 0), ([3, 0, 2], 0)]
    assert histogram.overall.tokens == 8


def test_empty_tally_has_empty_histograms():
    histogram = LearnedAtTally(STEPS).histogram(n_buckets=3)
    assert (histogram.overall.counts, histogram.overall.never) == ([0, 0, 0], 0)
    assert [h.tokens for h in histogram.by_bucket] == [0, 0, 0]


@pytest.mark.parametrize("tau_easy", [0.0, -0.5, 1.01, float("nan"), float("inf")])
def test_bad_easy_threshold_is_refused(tau_easy):
    with pytest.raises(ValueError, match=r"τ_easy is a probability in \(0, 1\]"):
        learned_at(make_document(), tau_easy)
    with pytest.raises(ValueError, match=r"τ_easy is a probability in \(0, 1\]"):
        LearnedAtTally(STEPS, tau_easy)
