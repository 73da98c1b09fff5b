"""The run summary folded from batches in two passes (app/analytics/summary.py, logprob_order.py) against
the whole-array implementation it replaced (bench/summary_naive.py): counts and histograms equal, loss
quantiles equal to the bit, sums equal to rounding, the focal Lorenz curves within their stated bound;
however the tokens are cut into batches. Through compute_summary on SQLite and PostgreSQL, no read asks
for more than a batch's worth of scores."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from sqlalchemy import select

from app.analytics.logprob_order import key_values, order_keys
from app.analytics.summary import (
    BUDGET_FRACTIONS,
    FOCAL_GAMMAS,
    LORENZ_POINTS,
    RunArrays,
    SummaryTally,
    gradient_norms,
    summarize,
)
from app.models import Checkpoint, ModelSeries, Run
from app.models.run import RunSummary
from app.schemas.run import RunOptions
from app.services import corpora, scores, series_stream, summaries
from app.vocab import TOKEN_FIELDS, TOP_K_FIELDS
from bench import summary_naive
from bench.series import step_scores, synthetic_documents


def _arrays(n: int, seed: int, ties: bool = False) -> RunArrays:
    """Tokens like a scored run's (float32 log p); with `ties`, log p on a coarse grid, so that many
    tokens share a value and Lorenz boundaries fall inside groups of equal log p."""
    rng = np.random.default_rng(seed)
    logprob = -rng.exponential(2.5, n)
    logprob = np.round(logprob, 1) if ties else logprob
    logprob[rng.random(n) < 0.02] = 0.0  # certain tokens: p = 1
    return RunArrays(token_id=(rng.zipf(1.3, n) % 700).astype(np.int32), logprob=logprob.astype(np.float32),
                     entropy=(rng.random(n) * 14).astype(np.float32), rank=(rng.geometric(0.2, n) - 1).astype(np.int32),
                     top1_logprob=np.maximum(logprob, -rng.exponential(0.7, n)).astype(np.float32),
                     sum_p2=np.clip(np.exp(2 * logprob) + rng.random(n) * 0.2, 0, 1).astype(np.float32))


def _streamed(arrays: RunArrays, cuts: list[int]) -> dict:
    """The summary with the tokens cut at `cuts`; pass 2 visits the batches in reverse (any order works)."""
    batches = [RunArrays(**{name: getattr(arrays, name)[a:b] for name in RunArrays.__dataclass_fields__})
               for a, b in zip([0, *cuts], [*cuts, arrays.logprob.size])]
    tally = SummaryTally()
    for batch in batches:
        tally.add(batch)
    for batch in reversed(batches):
        tally.refine(batch.logprob, batch.sum_p2)
    return tally.result({7: "seven"})


def _lorenz_bounds(arrays: RunArrays) -> np.ndarray:
    """[γ, boundary]: the stated bound — the gradient share of the tokens whose float32 log p agrees with
    the boundary's in the top 24 bits, where a boundary falls between two such tokens; else 0."""
    logprob = arrays.logprob.astype(np.float64)
    order = np.argsort(logprob, kind="stable")
    group = (order_keys(arrays.logprob) >> 8)[order]
    gradients = gradient_norms(logprob, arrays.sum_p2.astype(np.float64))[order]
    n = logprob.size
    boundaries = [*np.linspace(0, n, LORENZ_POINTS).astype(np.int64), *(round(f * n) for f in BUDGET_FRACTIONS)]
    bounds = np.zeros((len(FOCAL_GAMMAS), len(boundaries)))
    for k, i in enumerate(boundaries):
        if 0 < i < n and group[i - 1] == group[i]:
            bounds[:, k] = gradients[group == group[i]].sum(axis=0) / gradients.sum(axis=0)
    return bounds


def _assert_agrees(ours: dict, naive: dict, bounds: np.ndarray) -> None:
    for key in ("n_tokens", "top1_accuracy"):
        assert ours[key] == pytest.approx(naive[key], rel=1e-12)
    for key in ("mean_loss", "perplexity", "ece", "brier"):
        assert ours[key] == pytest.approx(naive[key], rel=1e-9)
    stats, expected = ours["stats"], naive["stats"]
    assert list(stats) == list(expected)
    for key in ("loss_histogram", "entropy_histogram", "p_histogram", "gltr", "loss_quantiles"):
        assert stats[key] == expected[key], key  # quantiles too: exact, not approximately
    assert stats["calibration"]["counts"] == expected["calibration"]["counts"]
    for key in ("confidence", "accuracy"):
        assert [v is None for v in stats["calibration"][key]] == [v is None for v in expected["calibration"][key]]
        assert [v for v in stats["calibration"][key] if v is not None] == pytest.approx(
            [v for v in expected["calibration"][key] if v is not None], rel=1e-9)
    vocabulary, naive_vocabulary = stats["vocabulary"], expected["vocabulary"]
    assert vocabulary["n_types"] == naive_vocabulary["n_types"]
    assert [b["tokens"] for b in vocabulary["frequency_buckets"]] == [
        b["tokens"] for b in naive_vocabulary["frequency_buckets"]]
    for side in ("hardest", "easiest"):
        assert [(r["token_id"], r["count"], r["text"]) for r in vocabulary[side]] == [
            (r["token_id"], r["count"], r["text"]) for r in naive_vocabulary[side]]
        assert [r["mean_loss"] for r in vocabulary[side]] == pytest.approx(
            [r["mean_loss"] for r in naive_vocabulary[side]], rel=1e-9)
    for g, (focal, naive_focal) in enumerate(zip(stats["focal"], expected["focal"])):
        for key in ("effective_tokens", "effective_fraction", "mean_focal_loss"):
            assert focal[key] == pytest.approx(naive_focal[key], rel=1e-9)
        ours_curve = np.array([*focal["lorenz"], *focal["budget_share"].values()])
        naive_curve = np.array([*naive_focal["lorenz"], *naive_focal["budget_share"].values()])
        assert (np.abs(ours_curve - naive_curve) <= bounds[g] + 1e-12).all(), g


@pytest.mark.parametrize(("n", "ties"), [(1, False), (2, False), (5, True), (1000, False), (30_000, False),
                                         (30_000, True)])
def test_every_batching_gives_the_whole_array_summary(n, ties):
    arrays = _arrays(n, seed=n, ties=ties)
    naive = summary_naive.summarize(arrays, {7: "seven"})
    bounds = _lorenz_bounds(arrays)
    rng = np.random.default_rng(0)
    batchings = [[], sorted(set(rng.integers(1, n, 7).tolist())) if n > 1 else [], list(range(1, min(n, 40)))]
    results = [_streamed(arrays, cuts) for cuts in batchings]
    for ours in results:
        _assert_agrees(ours, naive, bounds)
    assert all(r["stats"]["loss_quantiles"] == results[0]["stats"]["loss_quantiles"] for r in results)
    if ties and n > 100:  # the bound is really used: some boundaries fall inside groups of equal log p
        assert bounds.max() > 0


def test_inside_a_group_of_equal_tokens_the_curve_is_interpolated_exactly():
    """Tokens that share log p and Σp² share their gradient, so the share of a group that a boundary cuts
    is exact by count: the curves then equal the whole-array ones, bound or no bound."""
    arrays = _arrays(20_000, seed=3, ties=True)
    arrays.sum_p2 = np.exp(2 * arrays.logprob.astype(np.float64)).astype(np.float32)
    assert _lorenz_bounds(arrays).max() > 0.001
    _assert_agrees(_streamed(arrays, [5000, 12345]), summary_naive.summarize(arrays, {7: "seven"}),
                   np.zeros((len(FOCAL_GAMMAS), 1)))


def test_order_keys_sort_like_the_values_and_give_them_back():
    values = np.array([-1e30, -20.5, -3.0, -1.0000001, -1.0, -1e-40, -0.0, 0.0, 1e-40, 0.5, 7.0], dtype=np.float32)
    keys = order_keys(values)
    assert (np.diff(keys.astype(np.int64)) >= 0).all() and keys[6] == keys[7]  # −0.0 counts as +0.0
    assert key_values(keys).tolist() == [float(v) + 0.0 for v in values]


def test_an_empty_run_and_an_empty_batch():
    empty = _arrays(0, seed=1)
    assert summarize(empty, {}) == summary_naive.summarize(empty, {})
    arrays = _arrays(50, seed=2)
    assert _streamed(arrays, [0, 0, 50]) == _streamed(arrays, [])


def _stored_run(session, n_tokens: int) -> tuple[int, list[np.ndarray]]:
    """A corpus of synthetic documents (bench.series' generator, ≤ 300 tokens each, plus one with no
    tokens) and a run with their scores written straight to the store; (run id, documents' token ids)."""
    rng = np.random.default_rng(5)
    documents = [ids[:300] for ids in synthetic_documents(n_tokens, rng)] + [np.zeros(0, np.int32)]
    corpus = corpora.create_corpus(session=session, name="stream", documents=[
        corpora.DocumentIn(text="".join(f" w{t}" for t in ids.tolist()), source=f"{i}.txt")
        for i, ids in enumerate(documents)])
    series = ModelSeries(name="stream")
    checkpoint = Checkpoint(series=series, step=1, format="safetensors", path="/m/stream",
                            tokenizer_fingerprint="a" * 64, weights_sha256=hashlib.sha256(b"stream").hexdigest())
    run = Run(checkpoint=checkpoint, corpus_id=corpus.id, options=RunOptions().model_dump(),
              options_key=RunOptions().key())
    session.add(run)
    session.flush()
    stored = [step_scores(ids, document.id, 1, rng)[0] for ids, document in zip(documents[:-1], corpus.documents)]
    empty = {name: np.zeros((0, 5) if name in TOP_K_FIELDS else 0) for name in TOKEN_FIELDS}
    stored.append(scores.DocumentScores(document_id=corpus.documents[-1].id, top_k=5, arrays=empty))
    scores.store_scores(session=session, run_id=run.id, documents=stored)
    return run.id, documents


def test_compute_summary_reads_a_batch_at_a_time(sessions, monkeypatch):
    batch = 400
    monkeypatch.setattr(series_stream, "BATCH_SCORES", batch)
    read = series_stream.read_scores
    sizes = []

    def counted(**kwargs):
        rows = read(**kwargs)
        sizes.append(sum(next(iter(by_run.values()))[kwargs["columns"][0]].size for by_run in rows.values()))
        return rows

    monkeypatch.setattr(series_stream, "read_scores", counted)
    with sessions() as session:
        run_id, documents = _stored_run(session, 8000)
        summaries.compute_summary(session=session, run_id=run_id)
        session.commit()
    with sessions() as session:  # as the API reads it back
        arrays = summary_naive.read_run_arrays(session=session, run_id=run_id)
        stored = session.scalar(select(RunSummary).where(RunSummary.run_id == run_id))
        ours = {"n_tokens": stored.n_tokens, "mean_loss": stored.mean_loss, "perplexity": stored.perplexity,
                "ece": stored.ece, "brier": stored.brier, "top1_accuracy": stored.top1_accuracy, "stats": stored.stats}
        assert stored.n_documents == len(documents)
    assert sum(sizes) == 2 * arrays.logprob.size and len(sizes) >= 2 * (arrays.logprob.size // batch)
    assert max(sizes) <= batch  # every document is smaller than a batch, so no read needs more
    _assert_agrees(ours, summary_naive.summarize(arrays, {}), _lorenz_bounds(arrays))
