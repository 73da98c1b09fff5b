"""Experiments: one training series per loss, and the comparison the experiment page plots."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy import func, select

from app.analytics.summary import RunArrays, summarize
from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.job import Job
from app.models.run import Run, RunSummary
from app.models.training import TrainingMetric
from app.schemas.run import RunOptions
from app.schemas.training import ExperimentCreate, TrainingRequest
from app.services.errors import Conflict, InvalidInput, NotFound
from app.services.experiments import describe_experiments, experiment_comparison, find_experiment, training_curve
from app.services.training import create_experiment, enqueue_training
from app.vocab import KIND_TRAIN


# --- experiments ----------------------------------------------------------------------------------

def test_create_experiment_enqueues_one_series_per_loss(settings, sessions, macbeth_corpora):
    train_id, eval_id, _ = macbeth_corpora
    with sessions() as session:
        experiment = create_experiment(session=session, settings=settings, request=ExperimentCreate(
            name="shake", corpus_id=train_id, eval_corpus_id=eval_id, losses=["ce", "focal:2", "focal-schedule:0->2"],
            preset="tiny", steps=30, save_every=10, seed=3))
        session.commit()
        series = session.scalars(select(ModelSeries).order_by(ModelSeries.id)).all()
        assert [s.name for s in series] == ["shake-ce", "shake-focal-2", "shake-focal-schedule-0-to-2"]
        assert {s.experiment_id for s in series} == {experiment.id}
        jobs = session.scalars(select(Job).order_by(Job.id)).all()
        assert [j.payload["loss"] for j in jobs] == ["ce", "focal:2", "focal-schedule:0->2"]
        assert {(j.kind, j.progress_total, j.payload["seed"], j.payload["experiment_id"]) for j in jobs} == {
            (KIND_TRAIN, 30, 3, experiment.id)}
        # The links are keys: each series knows its job, the experiment finds its jobs through them.
        assert [s.job_id for s in series] == [j.id for j in jobs]
        assert "job_id" not in series[0].meta and series[0].meta["training"]["loss"] == "ce"
        assert describe_experiments(session=session, experiments=[experiment])[0].job_ids == [j.id for j in jobs]
        assert experiment.config == {"steps": 30, "save_every": 10, "preset": "tiny", "seed": 3, "tokenizer": "bpe",
                                     "vocab_size": 2048, "lr": 3e-3, "batch_size": 16, "seq_len": 256,
                                     "losses": ["ce", "focal:2", "focal-schedule:0->2"]}

        with pytest.raises(Conflict, match="exists already"):
            create_experiment(session=session, settings=settings, request=ExperimentCreate(
                name="shake", corpus_id=train_id, eval_corpus_id=eval_id, losses=["poly1:1"]))
        with pytest.raises(NotFound, match="corpus 999 not found"):
            create_experiment(session=session, settings=settings, request=ExperimentCreate(
                name="other", corpus_id=999, losses=["ce"]))
        enqueue_training(session=session, settings=settings,
                         request=TrainingRequest(corpus_id=train_id, series="other-ce", steps=10, save_every=5))
        with pytest.raises(Conflict, match="'other-ce' is being trained already"):
            create_experiment(session=session, settings=settings, request=ExperimentCreate(
                name="other", corpus_id=train_id, losses=["poly1:1", "ce"]))
        # Every series is checked before anything is created: no experiment, no job for poly1:1.
        assert session.scalar(select(func.count(Job.id))) == 4
        assert find_experiment(session=session, ref="shake").id == experiment.id
        with pytest.raises(NotFound):
            find_experiment(session=session, ref="other")
        assert find_experiment(session=session, ref="shake").id == experiment.id
        assert find_experiment(session=session, ref=str(experiment.id)).name == "shake"
        with pytest.raises(NotFound):
            find_experiment(session=session, ref="nope")


def _fake_summary(run_id: int, rng: np.random.Generator, skill: float) -> tuple[RunSummary, RunArrays]:
    """A summary as the summarize job computes it, from synthetic token arrays."""
    n = 4000
    token_id = rng.zipf(1.3, n).clip(max=300).astype(np.int32)
    logprob = -(rng.exponential(1.0 / skill, n) * np.log1p(token_id)).astype(np.float32)
    rank = np.where(logprob > -0.7, 0, 5).astype(np.int32)
    arrays = RunArrays(token_id=token_id, logprob=logprob, entropy=np.ones(n, np.float32), rank=rank,
                       top1_logprob=np.maximum(logprob, -0.69).astype(np.float32),
                       sum_p2=np.exp(2 * logprob).astype(np.float32))
    result = summarize(arrays, {})
    summary = RunSummary(run_id=run_id, n_tokens=n, n_documents=1, mean_loss=result["mean_loss"],
                         perplexity=result["perplexity"], ece=result["ece"], brier=result["brier"],
                         top1_accuracy=result["top1_accuracy"], stats=result["stats"])
    return summary, arrays


def test_experiment_comparison_numbers(settings, sessions, macbeth_corpora):
    train_id, eval_id, _ = macbeth_corpora
    rng = np.random.default_rng(0)
    with sessions() as session:
        experiment = create_experiment(session=session, settings=settings, request=ExperimentCreate(
            name="cmp", corpus_id=train_id, eval_corpus_id=eval_id, losses=["ce", "focal:2"], steps=20, save_every=10))
        series = session.scalars(select(ModelSeries).order_by(ModelSeries.id)).all()
        expected = {}
        for s_index, s in enumerate(series):
            for step in (0, 10, 20):
                checkpoint = Checkpoint(series_id=s.id, step=step, tokens_seen=step * 100, format="safetensors",
                                        path=f"/x/{s.name}/{step}", weights_sha256=f"{s_index}{step}".ljust(64, "0"),
                                        tokenizer_fingerprint="t", meta={"train_loss": 5.0 - step / 10})
                session.add(checkpoint)
                session.flush()
                if step == 20 and s_index == 1:
                    continue  # not scored yet
                run = Run(checkpoint_id=checkpoint.id, corpus_id=eval_id, options=RunOptions().model_dump(),
                          options_key=RunOptions().key())
                session.add(run)
                session.flush()
                summary, arrays = _fake_summary(run.id, rng, skill=1.0 + step / 10 + s_index)
                session.add(summary)
                expected[(s.name, step)] = arrays
            session.add_all(TrainingMetric(series_id=s.id, step=i, tokens_seen=i * 100, loss=6 - i / 10,
                                           ce_loss=6 - i / 20, lr=1e-3) for i in range(1, 21))
        session.commit()
        comparison = experiment_comparison(session=session, experiment_id=experiment.id, max_points=8).model_dump()

    assert comparison["experiment"]["name"] == "cmp"
    assert [s["name"] for s in comparison["series"]] == ["cmp-ce", "cmp-focal-2"]
    assert [s["loss"] for s in comparison["series"]] == ["ce", "focal:2"]
    for entry in comparison["series"]:
        assert [p["step"] for p in entry["checkpoints"]] == [0, 10, 20]
        assert entry["job"]["status"] == "queued"
        curve = entry["curve"]
        assert curve["total_points"] == 20 and len(curve["step"]) <= 8
        assert curve["step"][0] == 1 and curve["step"][-1] == 20 and curve["step"] == sorted(curve["step"])
        for point in entry["checkpoints"]:
            arrays = expected.get((entry["name"], point["step"]))
            if arrays is None:
                assert point["scored"] is False and point["mean_loss"] is None and point["run_id"] is None
                continue
            loss = -arrays.logprob.astype(np.float64)
            p = np.exp(arrays.logprob.astype(np.float64))
            assert point["mean_loss"] == pytest.approx(loss.mean(), rel=1e-9)
            assert point["perplexity"] == pytest.approx(math.exp(loss.mean()), rel=1e-9)
            assert point["top1_accuracy"] == pytest.approx((arrays.rank == 0).mean())
            assert point["easy_share"] == pytest.approx((p >= 0.5).mean(), abs=1e-12)
            # Rare vs frequent: recompute the 10 token-mass buckets from the arrays themselves.
            types, inverse, counts = np.unique(arrays.token_id, return_inverse=True, return_counts=True)
            order = np.argsort(counts, kind="stable")
            share = np.cumsum(counts[order]) / counts.sum()
            bucket_of_type = np.empty_like(order)
            bucket_of_type[order] = np.minimum((share * 10 - 1e-12).astype(np.int64), 9)
            bucket = bucket_of_type[inverse]
            assert point["rare_loss"] == pytest.approx(loss[bucket < 3].mean(), rel=1e-9)
            assert point["frequent_loss"] == pytest.approx(loss[bucket >= 7].mean(), rel=1e-9)
            assert point["rare_loss"] > point["frequent_loss"]  # the synthetic data makes rare tokens harder
    focal = comparison["series"][1]
    assert focal["final"]["step"] == 10  # the last scored checkpoint
    assert comparison["series"][0]["final"]["step"] == 20


def test_training_curve_is_bounded(settings, sessions, macbeth_corpora):
    with sessions() as session:
        series = ModelSeries(name="long")
        session.add(series)
        session.flush()
        session.add_all(TrainingMetric(series_id=series.id, step=i, tokens_seen=i, loss=1.0, ce_loss=1.0, lr=1.0)
                        for i in range(1, 1001))
        session.commit()
        for max_points in (1, 2, 7, 100, 999, 1000, 5000):
            curve = training_curve(session=session, series_id=series.id, max_points=max_points)
            assert 1 <= len(curve.step) <= min(max_points, 1000)
            assert curve.step[-1] == 1000 and curve.step == sorted(set(curve.step))
        assert len(training_curve(session=session, series_id=series.id, max_points=100).step) >= 90
        with pytest.raises(InvalidInput):
            training_curve(session=session, series_id=series.id, max_points=0)
