"""Definitions of a hard token and their agreement, a run's token types and their occurrences, and the
tokens endpoint's g(p, γ) and GLTR bucket: hand-computed, through the API on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.analytics.hardness import average_ranks, definitions, hardest, hardest_overlap, spearman
from app.models import ModelSeries
from app.services import corpora
from tests.support.api import API, error_of
from tests.support.scored_runs import add_scored_run

TEXTS = ["the cat sat", "the dog"]
# (span start, span end, token id, p, rank); "the" (id 1) occurs twice.
A = [[(0, 3, 1, 0.5, 0), (3, 7, 2, 0.25, 3), (7, 11, 3, 0.8, 12)], [(0, 3, 1, 0.1, 0), (3, 7, 5, 0.9, 0)]]
A_TOP1 = [[0.5, 0.5, 0.9], [0.6, 0.9]]
B = [[(0, 3, 1, 0.5, 0), (3, 7, 2, 0.5, 0), (7, 11, 3, 0.4, 1)], [(0, 3, 1, 0.3, 0), (3, 7, 5, 0.9, 0)]]
OTHER_TOKENS = [[(0, 5, 8, 0.5, 0), (5, 11, 9, 0.5, 0)], [(0, 7, 8, 0.5, 0)]]
LN2, LN3 = math.log(2), math.log(3)


def test_definitions_and_agreement_by_hand():
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    found = definitions(np.log([0.5, 0.2]), np.array([0.25, 3.0]), np.array([0, 4]), np.log([0.5, 0.5]))
    assert found["margin"] == pytest.approx([0.0, 0.3]) and found["one_minus_p"] == pytest.approx([0.5, 0.8])
    assert found["surprise"] == pytest.approx([LN2 - 0.25, math.log(5) - 3.0])
    # ρ = 1 − 6Σd²/(n(n²−1)) without ties: d = (0, 1, 1, 0) → 1 − 12/60.
    rho = spearman(np.array([[1.0, 2, 3, 4], [1.0, 3, 2, 4], [5.0, 5, 5, 5]]))
    assert rho[0][1] == pytest.approx(0.8) and rho[0][0] == pytest.approx(1.0) and rho[0][2] is None
    # The hardest half: {3, 4} and {2, 4}.
    assert hardest_overlap(np.array([[1.0, 2, 3, 4], [1.0, 3, 2, 4]]), 0.5) == [[1.0, 0.5], [0.5, 1.0]]


@pytest.fixture
def runs(sessions) -> dict:
    with sessions() as session:
        corpus = corpora.create_corpus(session=session, name="lines", documents=[
            corpora.DocumentIn(text=text, source=f"d{i}.txt") for i, text in enumerate(TEXTS)])
        session.flush()
        documents = [d.id for d in corpus.documents]
        ce, reference = ModelSeries(name="ce"), ModelSeries(name="reference")
        made = {"documents": documents}
        for name, series, step, tokens, top1 in (("a", ce, 100, A, A_TOP1), ("later", ce, 200, B, None),
                                                 ("reference", reference, 0, B, None),
                                                 ("other_tokens", reference, 5, OTHER_TOKENS, None)):
            made[name] = add_scored_run(session, series=series, step=step, corpus_id=corpus.id, document_ids=documents,
                                        tokens=tokens, top1=top1)
        session.commit()
        return made


def test_agreement_types_and_token_fields(api, runs):
    agreement = api.get(f"{API}/runs/{runs['a']}/difficulty", params={"fraction": 0.4}).json()
    names = agreement["definitions"]
    assert names == ["loss", "one_minus_p", "rank", "entropy", "surprise", "margin"]
    rho = dict(zip(names, agreement["spearman"][0]))  # loss against each
    # Loss ranks (sat 2, cat 4, the 3 and 5, dog 1) against rank's average ranks (2, 4, 5, 2, 2): ρ = −1/√80;
    # against margin's (1.5, 4, 3, 5, 1.5): 8/√95. Entropy is 1 everywhere: no ρ.
    assert (rho["one_minus_p"], rho["surprise"], rho["entropy"]) == (pytest.approx(1.0), pytest.approx(1.0), None)
    assert rho["rank"] == pytest.approx(-1 / math.sqrt(80)) and rho["margin"] == pytest.approx(8 / math.sqrt(95))
    # Hardest 40% (2 tokens): loss {the (p 0.1), cat}, rank {sat, cat}, margin {the (0.6 − 0.1), cat}.
    overlap = dict(zip(names, agreement["hardest_overlap"][0]))
    assert (overlap["rank"], overlap["margin"], agreement["n_tokens"]) == (0.5, 1.0, 5)
    assert agreement["means"]["loss"] == pytest.approx(-math.log(0.5 * 0.25 * 0.8 * 0.1 * 0.9) / 5, rel=1e-6)

    # Against a reference model: excess loss (loss_A − loss_ref) 0, ln 2, −ln 2, ln 3, 0; the same
    # numbers as the loss drop from step 100 to step 200 of A's own series, asked from either end.
    for other, name in ((runs["reference"], "excess_loss"), (runs["later"], "loss_drop")):
        paired = api.get(f"{API}/runs/{runs['a']}/difficulty", params={"other": other}).json()
        assert (paired["definitions"][-1], paired["other_run_id"]) == (name, other)
        assert paired["means"][name] == pytest.approx(LN3 / 5, rel=1e-6)
    backwards = api.get(f"{API}/runs/{runs['later']}/difficulty", params={"other": runs["a"]}).json()
    assert backwards["means"]["loss_drop"] == pytest.approx(LN3 / 5, rel=1e-6)
    message = error_of(api.get(f"{API}/runs/{runs['a']}/difficulty", params={"other": runs["other_tokens"]}), 422,
                       "invalid_input")
    assert message.startswith(f"excess loss compares runs token by token, but runs {runs['a']} and {runs['other_tokens']}")

    types = api.get(f"{API}/runs/{runs['a']}/types", params={"sort": "mean_loss"}).json()
    assert (types["types"], types["total"]) == (4, 4)
    assert [(t["text"], t["count"], t["frequency_rank"]) for t in types["items"]] == \
        [("the", 2, 1), (" cat", 1, 2), (" sat", 1, 3), (" dog", 1, 4)]
    the = types["items"][0]
    assert (the["mean_loss"], the["mean_p"], the["mean_margin"]) == (1.498, 0.3, 0.25)  # 4 significant digits
    filtered = api.get(f"{API}/runs/{runs['a']}/types",
                       params={"text": "AT", "sort": "count", "descending": "false", "offset": 1, "limit": 1}).json()
    assert (filtered["total"], [t["text"] for t in filtered["items"]]) == (2, [" sat"])
    assert "sort must be one of" in error_of(api.get(f"{API}/runs/{runs['a']}/types", params={"sort": "wisdom"}), 422,
                                             "invalid_input")
    occurrences = api.get(f"{API}/runs/{runs['a']}/types/1/occurrences", params={"offset": 1}).json()
    assert occurrences["total"] == 2 and len(occurrences["items"]) == 1
    second = occurrences["items"][0]
    assert (second["document_id"], second["position"], second["context_after"]) == (runs["documents"][1], 0, " dog")
    assert second["loss"] == pytest.approx(math.log(10), rel=1e-6)

    tokens = api.get(f"{API}/runs/{runs['a']}/documents/{runs['documents'][0]}/tokens", params={"gamma": 2}).json()
    # g(½, 2) = ¼ − 2·½·½·ln ½ = ¼ + ½ ln 2; g(¼, 2) = 9/16 − 2·¼·¾·ln ¼.
    assert tokens["gradient_multiplier"][:2] == pytest.approx([0.25 + LN2 / 2, 9 / 16 + 0.375 * math.log(4)], rel=1e-6)
    assert tokens["gltr_bucket"] == [0, 0, 1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5]), min_size=1, max_size=40), st.floats(0.01, 1.0))
def test_hardest_set_is_the_stable_sort_prefix(values, fraction):
    values = np.array(values)
    expected = np.zeros(values.size, dtype=bool)
    expected[np.argsort(-values, kind="stable")[:math.ceil(fraction * values.size)]] = True
    assert hardest(values, fraction).tolist() == expected.tolist()
