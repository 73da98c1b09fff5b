"""Large responses leave the server gzipped for clients that accept it, and as plain JSON for those that
do not: a 4,580-token document (the size of the demo's Macbeth II.1) and its trajectory over 20 steps."""

from __future__ import annotations

import numpy as np
import pytest

from app.models import Checkpoint, Job, ModelSeries, Run
from app.schemas.run import RunOptions
from app.services import corpora
from app.services.scores import DocumentScores, store_scores
from app.services.series_output import round_significant
from app.vocab import DONE, KIND_SCORE, KIND_SUMMARIZE
from tests.support.api import API
from tests.support.data import macbeth_scenes

N_TOKENS = 4580
N_STEPS = 20
TOP_K = 5
VOCAB = 49_152  # SmolLM2's


def scores_at(document_id: int, n_chars: int, step: int) -> DocumentScores:
    """Plausible scores: log p mostly near 0 with a long tail, ranks mostly 0, sorted top-k."""
    rng = np.random.default_rng(step)
    ends = np.linspace(0, n_chars, N_TOKENS + 1).astype(np.int64)
    logprob = -rng.exponential(2.5, N_TOKENS).astype(np.float32)
    token_id = np.random.default_rng(0).integers(0, VOCAB, N_TOKENS)
    top_logprobs = np.sort(-rng.exponential(3.0, (N_TOKENS, TOP_K)), axis=1)[:, ::-1].astype(np.float32)
    return DocumentScores(document_id=document_id, top_k=TOP_K, arrays={
        "token_id": token_id, "char_start": ends[:-1], "char_end": ends[1:], "logprob": logprob,
        "entropy": rng.uniform(0, 6, N_TOKENS).astype(np.float32), "rank": rng.geometric(0.5, N_TOKENS) - 1,
        "top_ids": rng.integers(0, VOCAB, (N_TOKENS, TOP_K)), "top_logprobs": top_logprobs,
        "sum_p2": np.exp(logprob) ** 2, "context_len": np.arange(N_TOKENS)})


@pytest.fixture
def scored_scene(sessions) -> dict:
    """Macbeth II.1 as one document, scored by a series at N_STEPS steps (runs done)."""
    text = macbeth_scenes()[7]
    with sessions() as session:
        corpus = corpora.create_corpus(session=session, name="macbeth", documents=[corpora.DocumentIn(text, "II.1")])
        document_id = corpus.documents[0].id
        series = ModelSeries(name="smol")
        run_ids = []
        for step in range(N_STEPS):
            checkpoint = Checkpoint(series=series, step=step * 100, format="safetensors", path=f"/m/{step}",
                                    weights_sha256=f"{step:064d}", tokenizer_fingerprint="f" * 64)
            run = Run(checkpoint=checkpoint, corpus_id=corpus.id, options=RunOptions().model_dump(),
                      options_key=RunOptions().key())
            session.add(run)
            session.flush()
            store_scores(session=session, run_id=run.id, documents=[scores_at(document_id, len(text), step)])
            session.add_all([Job(kind=kind, status=DONE, run_id=run.id, payload={}) for kind in (KIND_SCORE, KIND_SUMMARIZE)])
            run_ids.append(run.id)
        session.commit()
        return {"corpus": corpus.id, "document": document_id, "series": series.id, "runs": run_ids}


def sizes(api, url: str) -> tuple[int, int, dict]:
    """(plain bytes, gzipped bytes on the wire, the decoded body) of one GET."""
    plain = api.get(url, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    zipped = api.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.status_code == 200 and zipped.headers["content-encoding"] == "gzip"
    assert zipped.json() == plain.json()
    return len(plain.content), zipped.num_bytes_downloaded, plain.json()


def test_large_responses_are_gzipped_for_clients_that_accept_it(api, scored_scene):
    tokens_url = f"{API}/runs/{scored_scene['runs'][0]}/documents/{scored_scene['document']}/tokens"
    plain, zipped, body = sizes(api, tokens_url)
    assert body["n_tokens"] == N_TOKENS
    # float32 numbers in their shortest exact form: 221 bytes a token here (334 printed as float64s,
    # 1.53 MB for the document); gzip halves it again (408 KB), whatever the zlib version.
    assert 150 * N_TOKENS < plain < 250 * N_TOKENS and zipped < plain / 2
    assert body["logprob"][:3] == [float(str(x)) for x in np.float32(body["logprob"][:3])]  # shortest float32 digits
    trajectory_url = (f"{API}/series/{scored_scene['series']}/corpora/{scored_scene['corpus']}/documents/"
                      f"{scored_scene['document']}/trajectory")
    trajectory_plain, trajectory_zipped, trajectory = sizes(api, trajectory_url)
    assert len(trajectory["steps"]) == N_STEPS and trajectory["n_tokens"] == N_TOKENS
    assert trajectory_zipped < trajectory_plain / 2
    # The top-1's log p (for the margin at every step) only where the true token is not the top-1:
    # half the tokens here, so the trajectory grows by about a quarter, not by half (1.87 MB plain).
    for step in (0, N_STEPS - 1):
        stored = scores_at(scored_scene["document"], len(macbeth_scenes()[7]), step).arrays
        ranked = stored["rank"] > 0
        assert trajectory["rank"][step] == stored["rank"].tolist()
        assert trajectory["top1_logprob"][step] == round_significant(stored["top_logprobs"][ranked, 0]).tolist()
    assert trajectory_plain < 21 * N_TOKENS * N_STEPS


def test_small_responses_stay_plain(api):
    small = api.get(f"{API}/series", headers={"Accept-Encoding": "gzip"})
    assert small.status_code == 200 and "content-encoding" not in small.headers
    assert len(small.content) < 1024 and small.json()["items"] == []


def test_a_documents_tokens_are_built_once_and_revalidated_by_etag(api, sessions, scored_scene, monkeypatch):
    from app.models.checkpoint import TokenizerVocab
    from app.services import scores

    builds = []
    build = scores.document_tokens
    monkeypatch.setattr(scores, "document_tokens", lambda **kw: builds.append(kw["gamma"]) or build(**kw))
    url = f"{API}/runs/{scored_scene['runs'][0]}/documents/{scored_scene['document']}/tokens"
    first = api.get(url, headers={"Accept-Encoding": "gzip"})
    again = api.get(url, headers={"Accept-Encoding": "identity"})
    assert first.json() == again.json() and builds == [2.0]  # the second came from the kept body
    etag = first.headers["etag"]
    unchanged = api.get(url, headers={"If-None-Match": etag})
    assert (unchanged.status_code, unchanged.content, unchanged.headers["etag"]) == (304, b"", etag)
    assert api.get(url, params={"gamma": 0.5}).json()["gamma"] == 0.5 and builds == [2.0, 0.5]
    # The tokenizer's vocabulary arrives (a worker stores it): the top-k texts appear, under a new ETag.
    assert set(first.json()["top_text"][0]) == {""}
    with sessions() as session:
        session.add(TokenizerVocab(fingerprint="f" * 64, tokens=[f"t{i}" for i in range(VOCAB)], size=VOCAB))
        session.commit()
    named = api.get(url, headers={"If-None-Match": etag})
    assert named.status_code == 200 and named.headers["etag"] != etag
    top_ids = np.asarray(named.json()["top_ids"])
    assert named.json()["top_text"][0] == [f"t{i}" for i in top_ids[0]]
