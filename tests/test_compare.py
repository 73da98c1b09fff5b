"""GET /compare and /compare/documents/{id} on SQLite and PostgreSQL, against numbers computed by hand
from the scores written here: two documents, runs A and B with one tokenizer, run C with another."""

from __future__ import annotations

import math

import pytest

from app.models import ModelSeries
from app.services import corpora
from app.vocab import DONE, RUNNING
from tests.support.api import API, error_of
from tests.support.scored_runs import add_scored_run

TEXTS = ["the cat sat", "a dog"]
# Per run: per document (span start, span end, token id, p, rank) of each token.
A = [[(0, 3, 1, 0.5, 0), (3, 7, 2, 0.25, 3), (7, 11, 3, 0.8, 12)], [(0, 1, 4, 0.1, 0), (1, 5, 5, 0.9, 0)]]
B = [[(0, 3, 1, 0.5, 0), (3, 7, 2, 0.5, 0), (7, 11, 3, 0.4, 1)], [(0, 1, 4, 0.3, 0), (1, 5, 5, 0.9, 0)]]
# Another tokenizer: "the c|at| s|at" and "a d|og"; common boundaries with A: 0, 7, 11 and 0, 5.
C = [[(0, 5, 10, 0.5, 0), (5, 7, 11, 0.5, 0), (7, 9, 12, 0.5, 0), (9, 11, 11, 0.5, 0)],
     [(0, 3, 13, 0.5, 0), (3, 5, 14, 0.5, 0)]]
LN2 = math.log(2)


@pytest.fixture
def runs(sessions) -> dict:
    with sessions() as session:
        corpus = corpora.create_corpus(session=session, name="lines", documents=[
            corpora.DocumentIn(text=text, source=f"d{i}.txt") for i, text in enumerate(TEXTS)])
        other = corpora.create_corpus(session=session, name="other", documents=[corpora.DocumentIn("the cat sat", "x.txt")])
        session.flush()
        documents = [d.id for d in corpus.documents]
        made = {"documents": documents, "foreign": other.documents[0].id}
        foreign = [other.documents[0].id]
        for name, scores, corpus_id, document_ids, status, fingerprint in (
                ("a", A, corpus.id, documents, DONE, "a" * 64), ("b", B, corpus.id, documents, DONE, "a" * 64),
                ("c", C, corpus.id, documents, DONE, "c" * 64), ("elsewhere", A[:1], other.id, foreign, DONE, "a" * 64),
                ("live", B, corpus.id, documents, RUNNING, "a" * 64)):
            made[name] = add_scored_run(session, series=ModelSeries(name=name), step=7, corpus_id=corpus_id,
                                        document_ids=document_ids, tokens=scores, status=status, fingerprint=fingerprint)
        made["corpus"] = corpus.id
        session.commit()
        return made


def test_same_tokenizer_per_token_deltas_and_aggregates(api, runs):
    summary = api.get(f"{API}/compare", params={"a": runs["a"], "b": runs["b"], "extremes": 2}).json()
    assert (summary["alignment"], summary["documents"]) == ("token", {"token": 2, "segment": 0})
    assert (summary["tokens_a"], summary["tokens_b"], summary["units"], summary["n_chars"]) == (5, 5, 5, 16)
    # Δ per token: the 0, cat ln 2, sat −ln 2, a ln 3, dog 0.
    assert summary["total_delta"] == pytest.approx(math.log(3), rel=1e-6)
    assert summary["mean_delta_p"] == pytest.approx((0 + 0.25 - 0.4 + 0.2 + 0) / 5, rel=1e-5)
    assert summary["bits_per_char_a"] == pytest.approx(-math.log(0.5 * 0.25 * 0.8 * 0.1 * 0.9) / (16 * LN2), rel=1e-6)
    wins = [(u["document_id"], u["unit"], u["text"]) for u in summary["b_wins_most"]]
    assert wins == [(runs["documents"][1], 0, "a"), (runs["documents"][0], 1, " cat")]
    cat = summary["b_wins_most"][1]
    assert (cat["delta"], cat["context_before"], cat["context_after"]) == (pytest.approx(LN2, rel=1e-6), "the", " sat")
    assert summary["b_loses_most"][0]["text"] == " sat" and summary["b_loses_most"][0]["delta"] == pytest.approx(-LN2, rel=1e-6)
    # GLTR buckets of A's rank: the, cat, a, dog rank < 10; sat 12.
    first, second = summary["rank_buckets"][:2]
    assert (first["label"], first["tokens"], second["tokens"]) == ("<10", 4, 1)
    assert first["mean_delta"] == pytest.approx((LN2 + math.log(3)) / 4, rel=1e-6) and first["b_wins"] == 0.5
    assert (second["mean_loss_a"], second["mean_loss_b"]) == (pytest.approx(-math.log(0.8), rel=1e-6), pytest.approx(-math.log(0.4), rel=1e-6))
    # Five types seen once: each holds a fifth of the tokens, buckets 1, 3, 5, 7, 9 in id order.
    by_bucket = {b["bucket"]: b["mean_delta"] for b in summary["frequency_buckets"] if b["tokens"]}
    assert by_bucket == pytest.approx({1: 0.0, 3: LN2, 5: -LN2, 7: math.log(3), 9: 0.0}, abs=1e-6)
    for side in ("a", "b"):
        calibration, stored = summary[f"calibration_{side}"], api.get(f"{API}/runs/{runs[side]}/summary").json()
        assert (calibration["ece"], calibration["brier"]) == (stored["ece"], stored["brier"])
        assert calibration["reliability"]["counts"] == stored["stats"]["calibration"]["counts"]

    document = api.get(f"{API}/compare/documents/{runs['documents'][0]}", params={"a": runs["a"], "b": runs["b"]}).json()
    assert (document["alignment"], document["n_units"]) == ("token", 3)
    assert document["units"]["text"] == ["the", " cat", " sat"]
    assert document["units"]["delta"] == pytest.approx([0, LN2, -LN2], abs=1e-6)
    assert document["units"]["delta_p"] == pytest.approx([0, 0.25, -0.4], abs=1e-6)
    assert (document["a"]["rank"], document["b"]["rank"], document["a"]["unit"]) == ([0, 3, 12], [0, 0, 1], [0, 1, 2])
    assert document["b"]["logprob"] == [-0.6931, -0.6931, -0.9163] and document["b"]["top_ids"] == [[1], [2], [3]]


def test_different_tokenizers_align_on_segments_and_bad_pairs_are_named(api, runs):
    summary = api.get(f"{API}/compare", params={"a": runs["a"], "b": runs["c"]}).json()
    assert (summary["alignment"], summary["documents"], summary["units"]) == ("segment", {"token": 0, "segment": 2}, 3)
    assert (summary["tokens_a"], summary["tokens_b"], summary["mean_delta_p"]) == (5, 6, None)
    total = 6 * math.log(0.5) - math.log(0.5 * 0.25 * 0.8 * 0.1 * 0.9)
    assert summary["total_delta"] == pytest.approx(total, rel=1e-6)
    # Segment Δs: "the cat" ln 2, " sat" ln(0.25/0.8), "a dog" ln(0.25/0.09); A's tokens share them equally.
    assert [u["text"] for u in summary["b_wins_most"]] == ["a dog", "the cat", " sat"]
    assert summary["rank_buckets"][0]["mean_delta"] == pytest.approx((LN2 + math.log(0.25 / 0.09)) / 4, rel=1e-6)

    document = api.get(f"{API}/compare/documents/{runs['documents'][0]}", params={"a": runs["a"], "b": runs["c"]}).json()
    assert (document["alignment"], document["units"]["text"], document["units"]["delta_p"]) == ("segment", ["the cat", " sat"], None)
    assert (document["units"]["char_start"], document["units"]["char_end"]) == ([0, 7], [7, 11])
    assert document["units"]["delta"] == pytest.approx([LN2, math.log(0.25 / 0.8)], rel=1e-6)
    assert (document["a"]["unit"], document["b"]["unit"]) == ([0, 0, 1], [0, 0, 1, 1])
    assert document["b"]["text"] == ["the c", "at", " s", "at"]
    assert sum(document["units"]["delta"]) == pytest.approx(document["total_delta"], abs=1e-12)

    # Bad pairs are named (in this test: a fresh database per test costs a second on PostgreSQL).
    message = error_of(api.get(f"{API}/compare", params={"a": runs["a"], "b": runs["elsewhere"]}), 422, "invalid_input")
    assert message == (f"run {runs['a']} scored corpus 'lines' and run {runs['elsewhere']} corpus 'other': "
                       f"a comparison needs two runs on the same corpus")
    message = error_of(api.get(f"{API}/compare", params={"a": runs["live"], "b": runs["a"]}), 409, "conflict")
    assert message.startswith(f"run {runs['live']} is running;")
    assert error_of(api.get(f"{API}/compare", params={"a": runs["a"], "b": 999}), 404, "not_found") == "run 999 not found"
    assert "b:" in error_of(api.get(f"{API}/compare", params={"a": runs["a"]}), 422, "invalid_input")
    message = error_of(api.get(f"{API}/compare/documents/{runs['foreign']}", params={"a": runs["a"], "b": runs["b"]}),
                       404, "not_found")
    assert message == f"document {runs['foreign']} is not in corpus {runs['corpus']}"
