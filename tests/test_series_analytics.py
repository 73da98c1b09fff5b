"""Statistics across the checkpoints of a series, through the API on SQLite and PostgreSQL, against
numbers computed by hand from the arrays written here: 3 documents (9 tokens) scored at 3 steps.

The hand computations use L ⇔ p ≥ 1/2 (τ = ln 2) and easy ⇔ p ≥ 1/2; no p is exactly 1/2, whose
float32 log p is a hair below ln 1/2."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.models import Checkpoint, Job, ModelSeries, Run
from app.schemas.run import RunOptions
from app.services import corpora, series_stream
from app.services.checkpoints import store_vocabulary
from app.services.scores import DocumentScores, store_scores, token_texts
from app.services.series_cache import ResultCache
from app.services.series_output import display_texts_at, round_significant
from app.vocab import DONE, KIND_SCORE, KIND_SUMMARIZE, RUNNING
from tests.support.api import API, error_of

STEPS = [100, 200, 300]
TEXTS = ["the cat sat", "a dog ran far", "the end"]
# Per document: its tokens as (text, token id); "the" (id 1) occurs twice.
TOKENS = [[("the", 1), (" cat", 2), (" sat", 3)], [("a", 4), (" dog", 5), (" ran", 6), (" far", 7)],
          [("the", 1), (" end", 8)]]
# Per document: p of the true token and its rank, rows are the steps.
P = [[[0.9, 0.2, 0.6], [0.8, 0.7, 0.3], [0.95, 0.9, 0.1]],
     [[0.1, 0.4, 0.7, 0.05], [0.6, 0.3, 0.9, 0.05], [0.7, 0.6, 0.4, 0.2]],
     [[0.45, 0.3], [0.9, 0.2], [0.55, 0.8]]]
RANK = [[[0, 2, 0], [0, 0, 1], [0, 0, 3]],
        [[5, 1, 0, 9], [0, 1, 0, 8], [0, 0, 1, 4]],
        [[0, 1], [0, 2], [0, 0]]]
ENTROPY = [1.23456, 2.23456, 3.23456]  # every token's entropy at each step


@pytest.fixture
def corpus(sessions) -> dict:
    """The corpus, and the ids of its documents (in TEXTS order) and of a document of another corpus."""
    with sessions() as session:
        documents = [corpora.DocumentIn(text=text, source=f"d{i}.txt") for i, text in enumerate(TEXTS)]
        corpus = corpora.create_corpus(session=session, name="lines", documents=documents)
        other = corpora.create_corpus(session=session, name="other", documents=[corpora.DocumentIn("x", "x.txt")])
        session.commit()
        return {"id": corpus.id, "documents": [d.id for d in corpus.documents], "foreign": other.documents[0].id}


def add_series(sessions, corpus: dict, name: str, steps=STEPS, *, options=None, fingerprints=None, statuses=None,
               token_id_changes=None) -> dict:
    """A series with one checkpoint per step, each scored on the corpus (P, RANK, ENTROPY); per step
    optionally other options, tokenizer fingerprint, status, or token ids {(document, position): id}."""
    run_ids = []
    with sessions() as session:
        series = ModelSeries(name=name)
        for k, step in enumerate(steps):
            checkpoint = Checkpoint(series=series, step=step, format="safetensors", path=f"/m/{name}-{step}",
                                    weights_sha256=f"{k:064d}", tokenizer_fingerprint=(fingerprints or {}).get(step, "f" * 64))
            run_options = (options or {}).get(step, RunOptions())
            run = Run(checkpoint=checkpoint, corpus_id=corpus["id"], options=run_options.model_dump(),
                      options_key=run_options.key())
            session.add(run)
            session.flush()
            store_scores(session=session, run_id=run.id, documents=[
                _scores(document_id, i, STEPS.index(step), (token_id_changes or {}).get(step, {}))
                for i, document_id in enumerate(corpus["documents"])])
            _mark(session, run.id, (statuses or {}).get(step, DONE))
            run_ids.append(run.id)
        session.commit()
        return {"id": series.id, "run_ids": run_ids}


def _scores(document_id: int, i: int, k: int, token_id_changes: dict) -> DocumentScores:
    texts = [text for text, _ in TOKENS[i]]
    ends = np.cumsum([len(t) for t in texts])
    token_id = np.array([token_id_changes.get((i, j), token) for j, (_, token) in enumerate(TOKENS[i])])
    logprob = np.log(np.array(P[i][k])).astype(np.float32)
    n = len(texts)
    return DocumentScores(document_id=document_id, top_k=1, arrays={
        "token_id": token_id, "char_start": ends - [len(t) for t in texts], "char_end": ends, "logprob": logprob,
        "entropy": np.full(n, ENTROPY[k]), "rank": np.array(RANK[i][k]), "top_ids": token_id[:, None],
        "top_logprobs": logprob[:, None], "sum_p2": np.exp(logprob) ** 2, "context_len": np.arange(n)})


def _mark(session, run_id: int, status: str) -> None:
    """The jobs from which runs.run_progress derives a run's status."""
    session.add(Job(kind=KIND_SCORE, status=status, run_id=run_id, payload={}, progress_total=3))
    if status == DONE:
        session.add(Job(kind=KIND_SUMMARIZE, status=DONE, run_id=run_id, payload={}))


def url(series: dict, corpus: dict, tail: str) -> str:
    return f"{API}/series/{series['id']}/corpora/{corpus['id']}/{tail}"


def test_checkpoints_and_trajectories(api, sessions, corpus):
    series = add_series(sessions, corpus, "ce")
    listed = api.get(url(series, corpus, "checkpoints")).json()
    assert (listed["aligned"], listed["problem"], listed["options"]) == (True, None, RunOptions().model_dump())
    assert [(c["step"], c["run_id"], c["status"]) for c in listed["items"]] == list(zip(STEPS, series["run_ids"], [DONE] * 3))

    second = corpus["documents"][1]
    trajectory = api.get(url(series, corpus, f"documents/{second}/trajectory")).json()
    assert (trajectory["steps"], trajectory["run_ids"], trajectory["n_tokens"]) == (STEPS, series["run_ids"], 4)
    assert trajectory["text"] == ["a", " dog", " ran", " far"] and trajectory["token_id"] == [4, 5, 6, 7]
    assert (trajectory["char_start"], trajectory["char_end"]) == ([0, 1, 5, 9], [1, 5, 9, 13])
    # log p to 4 significant digits: ln 0.1 = −2.302585…, ln 0.4 = −0.9162907…, ln 0.05 = −2.995732…
    assert trajectory["logprob"][0] == [-2.303, -0.9163, -0.3567, -2.996]
    assert trajectory["rank"] == RANK[1]
    assert trajectory["entropy"] == [[1.235] * 4, [2.235] * 4, [3.235] * 4]
    assert "not in corpus" in error_of(api.get(url(series, corpus, f"documents/{corpus['foreign']}/trajectory")), 404, "not_found")

    with sessions() as session:  # as the first worker to load the tokenizer does
        store_vocabulary(session=session, fingerprint="f" * 64, tokens=[f"<{i}>" for i in range(10)])
        session.commit()
    ran = api.get(url(series, corpus, f"documents/{second}/tokens/2")).json()
    assert (ran["text"], ran["token_id"], ran["steps"], ran["rank"]) == (" ran", 6, STEPS, [0, 0, 1])
    assert (ran["p"], ran["loss"], ran["entropy"]) == ([0.7, 0.9, 0.4], [0.3567, 0.1054, 0.9163], [1.235, 2.235, 3.235])
    assert (ran["top_ids"], ran["top_text"]) == ([[6], [6], [6]], [["<6>"], ["<6>"], ["<6>"]])
    assert ran["top_logprobs"] == [[-0.3567], [-0.1054], [-0.9163]]
    assert (ran["context_before"], ran["context_after"]) == ("a dog", " far")  # the text "a dog ran far"
    message = error_of(api.get(url(series, corpus, f"documents/{second}/tokens/4")), 422, "invalid_input")
    assert message == "position 4 is outside the document's 4 tokens"


def test_transitions_and_their_occurrences(api, sessions, corpus, monkeypatch):
    series = add_series(sessions, corpus, "ce")
    first_last = api.get(url(series, corpus, "transitions")).json()
    # H→L: cat, a, dog, the (3rd document), end; L→H: sat, ran; H→H: far; L→L: the (1st document).
    assert first_last["counts"] == {"HH": 1, "LH": 2, "HL": 5, "LL": 1}
    assert (first_last["step_a"], first_last["step_b"], first_last["total"], first_last["documents"]) == (100, 300, 9, 3)
    assert first_last["matrix"] == [[1, 5], [2, 1]] and first_last["shares"]["HL"] == pytest.approx(5 / 9)
    assert (first_last["run_a"], first_last["run_b"], first_last["tau"]) == (series["run_ids"][0], series["run_ids"][2], math.log(2))
    assert api.get(url(series, corpus, "transitions"), params={"a": 100, "b": 200}).json()["counts"] == \
        {"HH": 3, "LH": 1, "HL": 3, "LL": 2}
    # τ = 2 nats: L ⇔ p ≥ e^−2 ≈ 0.135; H→L: a (0.1 → 0.7), far (0.05 → 0.2); L→H: sat (0.6 → 0.1).
    assert api.get(url(series, corpus, "transitions"), params={"tau": 2}).json()["counts"] == \
        {"HH": 0, "LH": 1, "HL": 2, "LL": 6}

    page = api.get(url(series, corpus, "transitions/occurrences"),
                      params={"a": 100, "b": 300, "cell": "HL", "offset": 1, "limit": 3}).json()
    assert (page["total"], page["cell"], page["offset"]) == (5, "HL", 1)
    second, third = corpus["documents"][1:]
    assert [(o["document_id"], o["position"], o["text"]) for o in page["items"]] == \
        [(second, 0, "a"), (second, 1, " dog"), (third, 0, "the")]
    dog = page["items"][1]
    assert (dog["context_before"], dog["context_after"], dog["char_start"], dog["char_end"]) == ("a", " ran far", 1, 5)
    assert (dog["loss_a"], dog["loss_b"], dog["token_id"]) == (0.9163, 0.5108, 5)  # −ln 0.4, −ln 0.6
    everything = api.get(url(series, corpus, "transitions/occurrences"), params={"cell": "HL", "limit": 500}).json()
    assert len(everything["items"]) == 5 and everything["items"][1:4] == page["items"]

    # Documents read one per batch give the same answer (no result cache: a fresh app).
    monkeypatch.setattr(series_stream, "BATCH_SCORES", 1)
    api.app.state.series_results = ResultCache()
    assert api.get(url(series, corpus, "transitions")).json() == first_last


def test_learned_at_histogram(api, sessions, corpus):
    series = add_series(sessions, corpus, "ce")
    histogram = api.get(url(series, corpus, "learned-at")).json()
    # Learned at: the 100, cat 200, sat never | a 200, dog 300, ran never, far never | the 200, end 300.
    assert histogram["overall"] == {"counts": [1, 3, 2], "never": 3, "tokens": 9}
    assert (histogram["steps"], histogram["tau_easy"]) == (STEPS, 0.5)
    # Ten buckets of ≈ equal token mass: the seven types seen once take buckets 1–7 in id order, "the"
    # (2 of 9 tokens) bucket 9.
    by_bucket = {b["bucket"]: (b["counts"], b["never"]) for b in histogram["by_bucket"] if b["tokens"]}
    assert by_bucket == {1: ([0, 1, 0], 0), 2: ([0, 0, 0], 1), 3: ([0, 1, 0], 0), 4: ([0, 0, 1], 0),
                         5: ([0, 0, 0], 1), 6: ([0, 0, 0], 1), 7: ([0, 0, 1], 0), 9: ([1, 1, 0], 0)}
    # τ_easy = 0.09: every occurrence is easy from the first step on, but "far" (p 0.05 until step 300).
    low = api.get(url(series, corpus, "learned-at"), params={"tau_easy": 0.09}).json()["overall"]
    assert low == {"counts": [8, 0, 1], "never": 0, "tokens": 9}


def test_cartography_regions_points_and_types(api, sessions, corpus):
    series = add_series(sessions, corpus, "ce")
    chart = api.get(url(series, corpus, "cartography"), params={"min_count": 1}).json()
    # easy: the (1st and 3rd documents); ambiguous: cat, sat, a, ran, end; hard: dog, far.
    assert chart["regions"] == [{"region": "easy-to-learn", "occurrences": 2, "types": 1},
                                {"region": "ambiguous", "occurrences": 5, "types": 5},
                                {"region": "hard-to-learn", "occurrences": 2, "types": 2}]
    points = chart["points"]
    assert (points["occurrences"], points["shown"]) == (9, 9)
    assert points["text"] == ["the", " cat", " sat", "a", " dog", " ran", " far", "the", " end"]
    assert points["position"] == [0, 1, 2, 0, 1, 2, 3, 0, 1]
    assert points["confidence"] == pytest.approx([0.8833, 0.6, 0.3333, 0.4667, 0.4333, 0.6667, 0.1, 0.6333, 0.4333], abs=2e-4)
    assert points["variability"] == pytest.approx([0.06236, 0.2944, 0.2055, 0.2625, 0.1247, 0.2055, 0.07071, 0.1929, 0.2625], abs=2e-4)
    assert points["correctness"] == pytest.approx([1, 2 / 3, 1 / 3, 2 / 3, 1 / 3, 2 / 3, 0, 1, 1 / 3], abs=1e-4)
    assert points["forgetting"] == [0, 0, 1, 0, 0, 1, 0, 0, 0]
    assert [chart["region_names"][r] for r in points["region"]][:3] == ["easy-to-learn", "ambiguous", "ambiguous"]

    types = chart["types"]
    assert types["total"] == 8 and types["items"][0]["token_id"] == 1  # "the", twice, comes first
    the = types["items"][0]
    assert (the["text"], the["count"], the["region"], the["correctness"], the["forgetting"]) == ("the", 2, "easy-to-learn", 1.0, 0.0)
    assert (the["confidence"], the["variability"]) == pytest.approx((0.7583, 0.1276), abs=2e-4)
    assert [t["token_id"] for t in types["items"][1:]] == [2, 3, 4, 5, 6, 7, 8]
    frequent = api.get(url(series, corpus, "cartography"), params={"min_count": 2}).json()
    assert [t["text"] for t in frequent["types"]["items"]] == ["the"] and frequent["regions"][1]["types"] == 0
    hard = api.get(url(series, corpus, "cartography"),
                      params={"min_count": 1, "region": "hard-to-learn", "types_offset": 1, "types_limit": 1}).json()
    assert (hard["types"]["total"], [t["text"] for t in hard["types"]["items"]]) == (2, [" far"])
    sampled = api.get(url(series, corpus, "cartography"), params={"max_points": 4}).json()["points"]
    assert sampled["shown"] == 4 and sampled["occurrences"] == 9
    # Stricter thresholds move "the" of the 3rd document (confidence 0.633, variability 0.193).
    strict = api.get(url(series, corpus, "cartography"), params={"variability_threshold": 0.19}).json()
    assert strict["regions"][0]["occurrences"] == 1


BAD_PARAMETERS = [
    ("transitions", {"tau": -1}, "query.tau"),
    ("transitions", {"tau": 1000}, "query.tau"),
    ("transitions", {"tau": "nan"}, "query.tau"),
    ("transitions", {"a": 150}, "step 150 is not a checkpoint of this series (steps: [100, 200, 300])"),
    ("transitions", {"a": 300, "b": 100}, "step a < step b, got a = 300, b = 100"),
    ("transitions", {"a": 200, "b": 200}, "step a < step b"),
    ("transitions", {"a": -5}, "query.a"),
    ("transitions/occurrences", {"cell": "XY"}, "query.cell"),
    ("transitions/occurrences", {}, "query.cell"),
    ("learned-at", {"tau_easy": 0}, "query.tau_easy"),
    ("learned-at", {"tau_easy": 1.5}, "query.tau_easy"),
    ("cartography", {"max_points": 0}, "query.max_points"),
    ("cartography", {"confidence_threshold": 2}, "query.confidence_threshold"),
    ("cartography", {"region": "middling"}, "query.region"),
    ("cartography", {"types_limit": 100000}, "query.types_limit"),
    ("transitions", {"options": "{not json"}, "options: Invalid JSON"),
    ("transitions", {"options": '{"window": "sideways"}'}, "options.window"),
    ("transitions", {"options": '{"colour": "red"}'}, "options.colour"),
]


def test_bad_parameters_are_422(api, sessions, corpus):
    series = add_series(sessions, corpus, "ce")
    for tail, params, fragment in BAD_PARAMETERS:
        assert fragment in error_of(api.get(url(series, corpus, tail), params=params), 422, "invalid_input"), (tail, params)


def test_runs_that_cannot_be_compared(api, sessions, corpus):
    bf16 = RunOptions(dtype="bfloat16")
    mixed = add_series(sessions, corpus, "mixed", options={300: bf16})
    message = error_of(api.get(url(mixed, corpus, "transitions")), 422, "invalid_input")
    assert "different options" in message and f"runs {mixed['run_ids'][2]}" in message
    assert api.get(url(mixed, corpus, "checkpoints")).json()["problem"] == message
    defaults = api.get(url(mixed, corpus, "transitions"), params={"options": "{}", "b": 200}).json()
    assert defaults["counts"] == {"HH": 3, "LH": 1, "HL": 3, "LL": 2}
    alone = error_of(api.get(url(mixed, corpus, "learned-at"), params={"options": '{"dtype": "bfloat16"}'}), 422, "invalid_input")
    assert "has 1 scored checkpoint(s)" in alone and "at least 2" in alone

    tokenizers = add_series(sessions, corpus, "tokenizers", fingerprints={200: "e" * 64})
    assert "different tokenizers" in error_of(api.get(url(tokenizers, corpus, "cartography")), 422, "invalid_input")

    running = add_series(sessions, corpus, "running", statuses={200: RUNNING})
    message = error_of(api.get(url(running, corpus, "learned-at")), 409, "conflict")
    assert f"run {running['run_ids'][1]} (step 200) is running" in message
    listed = api.get(url(running, corpus, "checkpoints")).json()
    assert listed["aligned"] is False and [c["status"] for c in listed["items"]] == [DONE, RUNNING, DONE]

    single = add_series(sessions, corpus, "single", steps=[100])
    assert "at least 2" in error_of(api.get(url(single, corpus, "cartography")), 422, "invalid_input")

    second = corpus["documents"][1]
    misaligned = add_series(sessions, corpus, "misaligned", token_id_changes={300: {(1, 2): 99}})
    assert api.get(url(misaligned, corpus, "checkpoints")).json()["aligned"] is True  # options and tokenizer agree
    message = error_of(api.get(url(misaligned, corpus, "cartography")), 422, "invalid_input")
    assert message.startswith(f"run {misaligned['run_ids'][2]} is not aligned with run {misaligned['run_ids'][0]} "
                              f"on document {second}: token 2 is id 99 there and id 6")
    # Transitions between the two aligned steps do not read the third run.
    assert api.get(url(misaligned, corpus, "transitions"), params={"b": 200}).status_code == 200

    assert "series 999 not found" in error_of(api.get(f"{API}/series/999/corpora/{corpus['id']}/transitions"), 404, "not_found")
    assert "corpus 999 not found" in error_of(api.get(f"{API}/series/{mixed['id']}/corpora/999/transitions"), 404, "not_found")


def test_display_texts_at_chosen_positions_match_the_document_view():
    # Two tokens share "é" (bytes of one character); a later token overlaps an earlier one.
    text = "café au lait"
    starts, ends = np.array([0, 3, 3, 4, 7, 6]), np.array([3, 4, 4, 7, 12, 9])
    everything = token_texts(text, starts, ends)
    assert everything == ["caf", "é", "", " au", " lait", ""]
    positions = np.array([5, 1, 2, 4])
    assert display_texts_at(text, starts, ends, positions) == [everything[i] for i in positions]


def test_round_significant():
    values = np.array([-2.302585, 0.00012345678, 12345.678, 0.0, -0.99996, 0.5108256])
    assert round_significant(values).tolist() == [-2.303, 0.0001235, 12346.0, 0.0, -1.0, 0.5108]


def test_result_cache_keeps_recent_results_within_its_bytes():
    cache, calls = ResultCache(max_bytes=15_000), []

    def result(tag):
        calls.append(tag)
        return (np.zeros(100), tag)  # ~4,950 bytes by nbytes: an entry's overhead, 800 of array, the tag

    for tag in ("a", "b", "a", "c", "d"):
        assert cache.get_or_compute(tag, lambda tag=tag: result(tag))[1] == tag
    assert calls == ["a", "b", "c", "d"] and len(cache) == 3  # "b" was the least recently used
    cache.get_or_compute("b", lambda: result("b"))
    assert calls[-1] == "b"
