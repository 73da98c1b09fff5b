"""Training jobs end to end on CPU: a tiny GPT-2 on Macbeth, checkpoints, scoring runs, kill and resume
(the SmolLM2 tokenizer, bad payloads and series conflicts: test_training_jobs.py; the request:
test_training_request.py; experiments: test_experiments.py; the trainer's pieces: test_training_pieces.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sqlalchemy import func, select
from transformers import AutoModelForCausalLM, AutoTokenizer

from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.job import Job
from app.models.run import Run
from app.models.training import TrainingMetric
from app.schemas.run import RunOptions
from app.services.runs import shard_documents
from app.schemas.training import ExperimentCreate
from app.services.experiments import describe_experiments, experiment_comparison
from app.services.training import create_experiment
from app.training_specs import PRESETS, parse_loss_spec, train_directory
from app.vocab import DONE, KIND_SCORE, KIND_SUMMARIZE, KIND_TRAIN
from tests.support.timing import clock_past_leases
from tests.support.training import FAST, SQLITE_ONLY, enqueue
from workers.context import JobInterrupted
from workers.loop import Worker
from workers.training import job as train_job
from workers.training.data import tokenize_corpus
from workers.training.presets import build_model, count_parameters, model_config
from workers.training.trainer import TrainPlan

def heldout_loss(path: Path, text: str, context: int) -> float:
    """Mean loss of every token of `text` after BOS, through transformers' own labels= path, in
    windows of `context` tokens."""
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=torch.float32).eval()
    ids = [tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"]
    total, count = 0.0, 0
    with torch.no_grad():
        # Windows overlap by one token, so that every token after the first is predicted exactly once.
        for start in range(0, len(ids) - 1, context - 1):
            window = torch.tensor([ids[start:start + context]])
            n = window.shape[1] - 1
            total += float(model(input_ids=window, labels=window).loss) * n
            count += n
    assert count == len(ids) - 1
    return total / count


def rolling_loss(path: Path, text: str, max_length: int) -> float:
    """Mean loss under lm-evaluation-harness's rolling windows (the scorer's default policy): blocks
    of max_length tokens, each predicted with as much preceding context as fits, BOS first."""
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=torch.float32).eval()
    tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
    full = [tokenizer.bos_token_id] + tokens  # full[k] is the input that predicts tokens[k]
    total = 0.0
    with torch.no_grad():
        for block_start in range(0, len(tokens), max_length):
            end = min(block_start + max_length, len(tokens))
            start = max(0, end - max_length)
            logprobs = torch.log_softmax(model(input_ids=torch.tensor([full[start:end]])).logits[0].double(), -1)
            rows = torch.arange(block_start - start, end - start)
            total += float(logprobs[rows, torch.tensor(tokens[block_start:end])].sum())
    return -total / len(tokens)


def step_dirs(settings, series: str) -> list[str]:
    return sorted(p.name for p in train_directory(settings.data_dir, series).iterdir())


def final_weights(settings, series: str, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(train_directory(settings.data_dir, series) / f"step-{step:06d}" / "model.safetensors"))


# --- the training job -----------------------------------------------------------------------------

@SQLITE_ONLY
def test_tiny_training_run_learns_checkpoints_and_enqueues_scoring(settings, sessions, macbeth_corpora):
    train_id, eval_id, eval_text = macbeth_corpora
    with sessions() as session:
        experiment = create_experiment(session=session, settings=settings, request=ExperimentCreate(
            name="mac", corpus_id=train_id, eval_corpus_id=eval_id, losses=["focal:2"], steps=30, save_every=8, seed=0,
            **FAST))
        session.commit()
        (view,) = describe_experiments(session=session, experiments=[experiment])
        experiment_id, (job_id,) = view.id, view.job_ids
    reports: list[tuple[int, int, dict]] = []

    def recorded(ctx):
        ctx.on_report = lambda progress: reports.append((progress.done, progress.tokens, dict(progress.detail)))
        train_job.run_train(ctx)

    worker = Worker(settings, kinds=(KIND_TRAIN,), handlers={KIND_TRAIN: recorded})
    try:
        assert worker.run_one()
    finally:
        worker.engine.dispose()

    # Progress: one report per step, with the losses, lr and an ETA that runs down to 0.
    done, tokens, detail = reports[-1]
    assert (done, tokens) == (30, 30 * 512)
    assert [r[0] for r in reports if r[2]] == list(range(1, 31))
    assert set(detail) >= {"loss", "ce", "lr", "eta_s", "step", "steps"}
    assert (detail["step"], detail["steps"], detail["eta_s"]) == (30, 30, 0.0)
    assert 0 < detail["loss"] < detail["ce"] and detail["lr"] > 0 and reports[5][2]["eta_s"] > 0
    with sessions() as session:
        job = session.get(Job, job_id)
        assert (job.status, job.error, job.progress_done, job.progress_total) == (DONE, None, 30, 30)
        checkpoints = session.scalars(select(Checkpoint).join(ModelSeries).where(ModelSeries.name == "mac-focal-2")
                                      .order_by(Checkpoint.step)).all()
        # Step 0 (untrained), every 8 steps, and the last step.
        assert [c.step for c in checkpoints] == [0, 8, 16, 24, 30]
        assert [c.tokens_seen for c in checkpoints] == [s * 512 for s in (0, 8, 16, 24, 30)]
        assert {c.format for c in checkpoints} == {"safetensors"}
        assert len({c.weights_sha256 for c in checkpoints}) == 5
        assert len({c.tokenizer_fingerprint for c in checkpoints}) == 1  # one tokenizer: comparable
        paths = [Path(c.path) for c in checkpoints]
        for checkpoint, path in zip(checkpoints, paths):
            training = json.loads((path / "training.json").read_text())
            assert checkpoint.meta == training
            assert (training["loss"], training["gamma"], training["step"], training["preset"], training["seed"]) == (
                "focal:2", 2.0, checkpoint.step, "tiny", 0)
            assert training["tokens_seen"] == checkpoint.step * 512
        metas = [c.meta for c in checkpoints]
        assert metas[0]["train_loss"] is None and all(m["train_loss"] < m["train_ce"] for m in metas[1:])
        with torch.device("meta"):
            expected_params = count_parameters(build_model(
                model_config(PRESETS["tiny"], vocab_size=1024, bos_token_id=0, eos_token_id=0), seed=0))
        assert metas[0]["n_params"] == metas[-1]["n_params"] == expected_params  # tiny preset, 1024-token BPE
        assert metas[0]["vocab_size"] == 1024

        # One scoring run per checkpoint on the held-out corpus, in windows of the trained length.
        runs = session.scalars(select(Run).order_by(Run.checkpoint_id)).all()
        assert [r.checkpoint_id for r in runs] == [c.id for c in checkpoints]
        assert {r.corpus_id for r in runs} == {eval_id}
        assert {r.options_key for r in runs} == {RunOptions(max_length=64).key()}
        shards = len(shard_documents([(0, len(eval_text))], settings.shard_chars))
        assert session.scalar(select(func.count(Job.id)).where(Job.kind == KIND_SCORE)) == 5 * shards

        # A metric row per step (30 steps < 500 points): optimised loss and plain CE on the same batch.
        metrics = session.scalars(select(TrainingMetric).order_by(TrainingMetric.step)).all()
        assert [m.step for m in metrics] == list(range(1, 31))
        assert all(0 < m.loss < m.ce_loss for m in metrics)  # focal < CE, token by token
        assert metrics[-1].ce_loss < metrics[0].ce_loss - 1.0
        plan = TrainPlan(steps=30, save_every=8, lr=PRESETS["tiny"].lr, loss=parse_loss_spec("focal:2"))
        assert [m.lr for m in metrics] == pytest.approx([plan.lr_at(i) for i in range(30)])
        # Two warmup updates to the peak, then cosine decay to 10% of it.
        assert [m.lr for m in metrics[:2]] == pytest.approx([1.5e-3, 3e-3]) and metrics[-1].lr == pytest.approx(3e-4)

    assert step_dirs(settings, "mac-focal-2") == ["step-000000", "step-000008", "step-000016", "step-000024",
                                              "step-000030"]
    # No pickles anywhere: weights and trainer state are safetensors + JSON.
    files = {p.relative_to(paths[-1]).as_posix() for p in paths[-1].rglob("*") if p.is_file()}
    assert files - {"generation_config.json"} == {
        "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "training.json",
        "trainer_state/state.json", "trainer_state/state.safetensors"}
    state = load_file(str(paths[-1] / "trainer_state" / "state.safetensors"))
    assert any(k.endswith(".exp_avg_sq") for k in state) and "rng.torch" in state

    # The held-out loss, computed here straight from the saved checkpoints, falls with training.
    losses = [heldout_loss(path, eval_text, context=64) for path in paths]
    assert losses[0] == pytest.approx(math.log(1024), abs=0.3)  # untrained: about uniform
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))
    assert losses[-1] < losses[0] - 1.0  # ~6.93 -> ~5.72 nats in 30 updates

    # The enqueued scoring runs, run by the scoring worker, tell the same story in the experiment view.
    scorer = Worker(settings, kinds=(KIND_SCORE, KIND_SUMMARIZE))
    scorer.run_forever(exit_when_idle=True)
    with sessions() as session:
        assert session.scalar(select(func.count(Job.id)).where(Job.status != DONE)) == 0
        comparison = experiment_comparison(session=session, experiment_id=experiment_id).model_dump()
    (series,) = comparison["series"]
    assert (series["name"], series["loss"], series["job"]["status"]) == ("mac-focal-2", "focal:2", DONE)
    points = series["checkpoints"]
    assert [p["step"] for p in points] == [0, 8, 16, 24, 30] and all(p["scored"] for p in points)
    # Exactly the rolling-window loss of each saved checkpoint (float32 on CPU).
    assert [p["mean_loss"] for p in points] == pytest.approx([rolling_loss(path, eval_text, 64) for path in paths],
                                                             rel=1e-5)
    assert points[-1]["mean_loss"] < points[0]["mean_loss"] - 1.0
    assert [p["perplexity"] for p in points] == pytest.approx([math.exp(p["mean_loss"]) for p in points])
    assert points[-1]["top1_accuracy"] > points[0]["top1_accuracy"]
    assert points[-1]["frequent_loss"] < points[-1]["rare_loss"]  # frequent tokens are learned first
    assert all(0 <= p["ece"] <= 1 and 0 <= p["brier"] <= 2 and 0 <= p["easy_share"] <= 1 for p in points)
    assert series["final"]["step"] == 30 and series["curve"]["step"] == list(range(1, 31))

    # The saved tokenizer is a fast one and its offsets tile the text (what highlighting relies on).
    tokenizer = AutoTokenizer.from_pretrained(str(paths[-1]), local_files_only=True)
    encoded = tokenizer(eval_text[:500], return_offsets_mapping=True, add_special_tokens=False)
    assert tokenizer.is_fast and "".join(eval_text[a:b] for a, b in encoded["offset_mapping"]) == eval_text[:500]
    # Training text was framed <|endoftext|> doc <|endoftext|> doc (BOS = EOS for the BPE tokenizer).
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.model_max_length) == (0, 0, 256)
    stream = tokenize_corpus(tokenizer, ["Fair is foul", "and foul is fair"])
    assert stream.ids.tolist() == [0, *tokenizer("Fair is foul", add_special_tokens=False)["input_ids"],
                                   0, *tokenizer("and foul is fair", add_special_tokens=False)["input_ids"]]


@SQLITE_ONLY
def test_killed_job_resumes_without_lost_or_repeated_steps(settings, sessions, macbeth_corpora, monkeypatch):
    train_id, _, _ = macbeth_corpora
    monkeypatch.setattr(train_job, "METRIC_FLUSH_SECONDS", 0.0)  # metrics of the doomed steps hit the DB too
    common = {"corpus_id": train_id, "loss": "ce", "steps": 12, "save_every": 4, "seed": 7}

    # The reference: one uninterrupted run.
    enqueue(sessions, settings, series="straight", **common)
    worker = Worker(settings, kinds=(KIND_TRAIN,))
    assert worker.run_one()
    worker.engine.dispose()

    # The same run, killed after step 7: the handler vanishes without giving the job back, as a
    # killed process would; its lease runs out and a new worker takes it over (attempt 2).
    job_id = enqueue(sessions, settings, series="killed", **common)
    interrupted: list[str] = []

    def killed_at_7(ctx):
        ctx.on_report = lambda progress: ctx.stopping.set() if progress.done >= 7 else None
        try:
            train_job.run_train(ctx)
        except JobInterrupted as exc:
            interrupted.append(exc.reason)

    first = Worker(settings, kinds=(KIND_TRAIN,), handlers={KIND_TRAIN: killed_at_7})
    assert first.run_one()
    first.engine.dispose()
    assert interrupted == ["the worker is shutting down"]
    assert step_dirs(settings, "killed") == ["step-000000", "step-000004"]
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job.status == "running" and job.progress_done == 7
        steps_before = list(session.scalars(select(TrainingMetric.step).join(ModelSeries)
                                            .where(ModelSeries.name == "killed").order_by(TrainingMetric.step)))
        assert steps_before == list(range(1, 8))  # 5–7 were logged and will be replayed
    # The second worker's clock is past the first one's lease (as if it had run out).
    second = Worker(settings, kinds=(KIND_TRAIN,), clock=clock_past_leases(settings))
    assert second.run_one()  # reaps the expired lease, claims the job again, resumes at step 4
    second.engine.dispose()

    with sessions() as session:
        job = session.get(Job, job_id)
        assert (job.status, job.attempts, job.error) == (DONE, 2, None)
        by_series = {}
        for name in ("straight", "killed"):
            series_id = session.scalar(select(ModelSeries.id).where(ModelSeries.name == name))
            by_series[name] = {
                "checkpoints": [(c.step, c.meta["train_loss"]) for c in session.scalars(
                    select(Checkpoint).where(Checkpoint.series_id == series_id).order_by(Checkpoint.step))],
                "metrics": [(m.step, m.loss, m.tokens_seen) for m in session.scalars(
                    select(TrainingMetric).where(TrainingMetric.series_id == series_id).order_by(TrainingMetric.step))],
            }
    killed, straight = by_series["killed"], by_series["straight"]
    assert [s for s, _ in killed["checkpoints"]] == [0, 4, 8, 12]
    assert [m[0] for m in killed["metrics"]] == list(range(1, 13))  # none lost, none twice
    # Same seed: the first checkpoint's training loss is identical, and so is every later step.
    assert killed["checkpoints"][1][1] == straight["checkpoints"][1][1]
    assert [(m[0], m[2]) for m in killed["metrics"]] == [(m[0], m[2]) for m in straight["metrics"]]
    np.testing.assert_allclose([m[1] for m in killed["metrics"]], [m[1] for m in straight["metrics"]],
                               rtol=1e-6, atol=0)
    # Weights after the resumed run equal those of the uninterrupted one.
    resumed, reference = final_weights(settings, "killed", 12), final_weights(settings, "straight", 12)
    assert resumed.keys() == reference.keys()
    for name in reference:
        torch.testing.assert_close(resumed[name], reference[name], rtol=1e-6, atol=1e-7)
    assert step_dirs(settings, "killed") == ["step-000000", "step-000004", "step-000008", "step-000012"]

    # A different seed gives a different model (the comparison above could fail).
    enqueue(sessions, settings, series="other-seed", **{**common, "steps": 4, "seed": 8})
    worker = Worker(settings, kinds=(KIND_TRAIN,))
    assert worker.run_one()
    worker.engine.dispose()
    other = json.loads((train_directory(settings.data_dir, "other-seed") / "step-000004" / "training.json").read_text())
    assert other["train_loss"] != straight["checkpoints"][1][1]
