"""The definitions' agreement in bounded memory: means over every token, ρ and the hardest-set overlaps on
a sample of SAMPLE_CAP tokens above it (app/analytics/hardness_sample.py) — the sample is the cap
smallest hashes of (document, position) however the tokens arrive, ρ stays within its stated standard
error of the whole run's, pair definitions keep the same tokens in both runs, and a run under the cap
gets the old whole-run answer."""

from __future__ import annotations

import numpy as np
import pytest

from app.analytics import hardness_sample
from app.analytics.hardness_sample import SAMPLE_SEED, AgreementTally, TokenSample
from app.analytics.scatter_sample import point_hash
from app.models import ModelSeries, Run
from app.services import corpora, hardness
from bench import agreement_naive
from tests.support.api import API
from tests.support.scored_runs import add_scored_run

NAMES = ("a", "b", "c", "d", "e", "ranked")


def synthetic(n_documents: int, size: int, seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """[6, tokens] values of documents 1000, 1001, … of `size` tokens: rows correlated with a common
    factor at strengths from none to nearly perfect, and one of small integers (ties, like rank)."""
    generator = np.random.default_rng(seed)
    base = generator.normal(size=n_documents * size)
    rows = [base + generator.normal(size=base.size) * noise for noise in (0.1, 0.5, 1.0, 3.0)]
    rows += [generator.normal(size=base.size), np.floor(np.clip(base * 2 + 4, 0, 8))]
    return np.stack(rows), [(1000 + d, size) for d in range(n_documents)]


def bottom_hashes(documents: list[tuple[int, int]], cap: int) -> np.ndarray:
    """Token indices (in order) of the cap smallest hashes over all the documents, by a full sort."""
    hashes = np.concatenate([point_hash(SAMPLE_SEED, d, np.arange(size)) for d, size in documents])
    return np.sort(np.argsort(hashes)[:cap])


def feed(sample, values: np.ndarray, documents: list[tuple[int, int]], per_batch: int) -> None:
    at = 0
    for first in range(0, len(documents), per_batch):
        batch = documents[first:first + per_batch]
        size = sum(s for _, s in batch)
        sample.add(values[:, at:at + size], batch)
        at += size


def test_sample_is_the_smallest_hashes_however_the_tokens_arrive():
    values, documents = synthetic(200, 500)
    expected = values[:, bottom_hashes(documents, 3000)]
    for per_batch, counted in ((200, values.shape[1]), (1, values.shape[1]), (7, 5000)):
        # counted < the tokens offered: the threshold lets far too many through, so the buffer prunes often.
        sample = TokenSample(len(values), counted, 3000)
        feed(sample, values, documents, per_batch)
        assert sample.sampled and np.array_equal(sample.values(), expected), (per_batch, counted)
    whole = TokenSample(len(values), values.shape[1], values.shape[1])
    feed(whole, values, documents, 13)
    assert not whole.sampled and np.array_equal(whole.values(), values)


def test_sampled_rho_within_its_standard_error_and_means_over_every_token():
    values, documents = synthetic(200, 500)

    def tally(cap: int) -> dict:
        found = AgreementTally(NAMES, values.shape[1], cap)
        feed(found, values, documents, 40)
        return found.result(0.1)

    exact, sampled = tally(values.shape[1]), tally(10_000)
    assert (exact["sampled"], exact["n_sampled"], exact["spearman_standard_error"]) == (False, 100_000, None)
    assert (sampled["sampled"], sampled["n_sampled"], sampled["n_tokens"]) == (True, 10_000, 100_000)
    # Means are streamed over every token, sampled or not: numpy's over the whole matrix to 1e-12.
    assert exact["means"] == sampled["means"] == pytest.approx(dict(zip(NAMES, values.mean(axis=1))), rel=1e-12)
    for i in range(len(NAMES)):
        for j in range(len(NAMES)):
            error = sampled["spearman_standard_error"][i][j]
            # 5 standard errors (≤ 0.035 here): a sample this far off would happen ~once in 10⁶.
            assert abs(sampled["spearman"][i][j] - exact["spearman"][i][j]) <= 5 * error + 1e-12, (i, j)
            # The hardest 10 % of the sample holds 1,000 tokens: an overlap's binomial SE is ≤ 0.016.
            assert sampled["hardest_overlap"][i][j] == pytest.approx(exact["hardest_overlap"][i][j], abs=0.08)
    assert max(e for row in sampled["spearman_standard_error"] for e in row) < 0.01


@pytest.fixture
def series_runs(sessions) -> dict[str, int]:
    """Two checkpoints of one series scored on 24 documents of 50 tokens (1,200 tokens), p varying by token."""
    generator = np.random.default_rng(1)
    with sessions() as session:
        corpus = corpora.create_corpus(session=session, name="long", documents=[
            corpora.DocumentIn(text="x" * 50, source=f"{i}.txt") for i in range(24)])
        session.flush()
        documents = [d.id for d in corpus.documents]
        series = ModelSeries(name="s")

        token_ids = generator.integers(0, 9, (len(documents), 50)).tolist()  # one tokenization for both runs

        def tokens() -> list:
            return [[(t, t + 1, token_id, float(generator.uniform(0.01, 1.0)), int(generator.geometric(0.3)) - 1)
                     for t, token_id in enumerate(ids)] for ids in token_ids]

        made = {name: add_scored_run(session, series=series, step=step, corpus_id=corpus.id, document_ids=documents,
                                     tokens=tokens()) for name, step in (("early", 100), ("late", 200))}
        session.commit()
        return made


def test_runs_of_one_corpus_keep_the_same_tokens(sessions, series_runs, monkeypatch):
    monkeypatch.setattr(hardness_sample, "SAMPLE_CAP", 300)
    with sessions() as session:
        early, late = (session.get(Run, series_runs[name]) for name in ("early", "late"))

        def kept(run, other=None) -> np.ndarray:
            return hardness.run_definitions(session=session, run=run, other=other).sample.values()

        alone_early, alone_late = kept(early), kept(late)
        forward, backward = kept(early, late), kept(late, early)
        assert forward.shape == (7, 300)
        # The loss drop (early − late) is the same per token from either end, and it is the difference
        # of the runs' own losses on their own samples: every sample holds the same (document, position)s.
        assert np.array_equal(forward[-1], backward[-1])
        assert np.array_equal(forward[-1], alone_early[0] - alone_late[0])
        assert np.array_equal(forward[:6], alone_early) and np.array_equal(backward[:6], alone_late)
        answers = [hardness.agreement(session=session, run=early, other=late, fraction=0.2) for _ in range(2)]
    assert answers[0] == answers[1] and answers[0]["sampled"] and answers[0]["n_sampled"] == 300


def test_under_the_cap_the_old_answer_and_the_api_says_what_it_sampled(sessions, api, series_runs, monkeypatch):
    with sessions() as session:
        early, late = (session.get(Run, series_runs[name]) for name in ("early", "late"))
        for other in (None, late):
            new = hardness.agreement(session=session, run=early, other=other, fraction=0.1)
            old = agreement_naive.agreement(session=session, run=early, other=other, fraction=0.1)
            assert (new["n_tokens"], new["n_sampled"], new["sampled"]) == (1200, 1200, False)
            assert (new["spearman"], new["hardest_overlap"], new["definitions"]) == \
                (old["spearman"], old["hardest_overlap"], old["definitions"])
            # The means are summed in another order (batch sums, compensated): equal to ~1 ulp, not to the bit.
            assert new["means"] == pytest.approx(old["means"], rel=1e-12)
    monkeypatch.setattr(hardness_sample, "SAMPLE_CAP", 500)
    answer = api.get(f"{API}/runs/{series_runs['early']}/difficulty").json()
    assert (answer["sampled"], answer["n_sampled"], answer["n_tokens"]) == (True, 500, 1200)
    errors = dict(zip(answer["definitions"], answer["spearman_standard_error"][0]))  # loss against each
    assert (errors["loss"], errors["one_minus_p"]) == (0.0, 0.0) and 0 < errors["rank"] < 0.05
