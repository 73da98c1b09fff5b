"""Window policies: rolling equals lm-evaluation-harness's windows; strided scores each token once."""

import pytest
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from workers.scoring.windows import rolling_windows, strided_windows

PREFIX = 1


@pytest.mark.parametrize("n_tokens", [0, 1, 2, 7, 8, 9, 16, 17, 40])
@pytest.mark.parametrize("max_length", [1, 2, 3, 8])
def test_rolling_matches_lm_eval(n_tokens, max_length):
    tokens = list(range(100, 100 + n_tokens))
    ours = rolling_windows(tokens, PREFIX, max_length)
    theirs = [make_disjoint_window(w) for w in get_rolling_token_windows(tokens, PREFIX, max_length, 1)]
    assert len(ours) == len(theirs)
    for window, (context, continuation) in zip(ours, theirs):
        assert window.input_ids == (context + continuation)[:-1]
        assert window.n_scored == len(continuation)
        assert tokens[window.doc_offset : window.doc_offset + window.n_scored] == continuation


@pytest.mark.parametrize("n_tokens", [0, 1, 5, 9, 30])
@pytest.mark.parametrize("max_length,stride", [(2, 1), (4, 1), (4, 2), (4, 3), (8, 5)])
def test_strided_scores_each_token_once_with_its_previous_token(n_tokens, max_length, stride):
    tokens = list(range(100, 100 + n_tokens))
    sequence = [PREFIX] + tokens
    scored = []
    for window in strided_windows(tokens, PREFIX, max_length, stride):
        assert 0 <= window.score_from < len(window.input_ids) <= max_length - 1
        for position in range(window.score_from, len(window.input_ids)):
            doc_index = window.doc_offset + position - window.score_from
            assert window.input_ids[position] == sequence[doc_index]  # the token just before the target
            scored.append(doc_index)
    assert scored == list(range(n_tokens))


def test_strided_rejects_stride_that_would_skip_tokens():
    with pytest.raises(ValueError):
        strided_windows([1, 2, 3], PREFIX, 4, 4)
