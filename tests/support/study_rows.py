"""A study written straight to the store (no training): one experiment per seed tagged with the study,
a series per loss, checkpoints at steps 0, 2, 4 carrying the trainer's held-out evaluation, a short
training curve, and samples on the final checkpoint. Numbers are made up but deterministic: held-out
CE = 5 + 0.1·(loss index) + 0.01·seed·(loss index + 1) − 0.2·step/4, so every difference from ce and
its spread across seeds can be worked out by hand; focal:2 on seed 1 rises 0.3 nats at its last
checkpoint (a held-out collapse flag); the best temperature is 0.01 higher per
loss index on every seed (a difference beyond the seed noise)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from app.db.engine import make_engine, make_sessionmaker
from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.training import Experiment, TrainingMetric

STEPS = (0, 2, 4)
COMMAND = "focalscope study --name {name} --seeds 0 1 2 --losses ce focal:2 --steps 4"


def heldout_ce(loss_index: int, seed: int, step: int) -> float:
    rise = 0.3 if (loss_index, seed, step) == (1, 1, STEPS[-1]) else 0.0
    return 5 + 0.1 * loss_index + 0.01 * seed * (loss_index + 1) - 0.2 * step / STEPS[-1] + rise


def _heldout(ce: float, seed: int, loss_index: int) -> dict:
    return {"tokens": 100, "ce": ce, "perplexity": 2.718281828 ** ce, "ece": 0.02 + 0.001 * seed, "brier": 0.97,
            "top1_accuracy": 0.1, "nucleus_coverage": {"0.5": 0.45 + 0.01 * seed, "0.8": 0.78, "0.9": 0.88, "0.95": 0.93},
            "mean_entropy": ce - 0.1, "entropy_bins": [{"tokens": 50, "entropy": 4.0, "loss": 4.2}],
            "temperature": 1.03 + 0.01 * loss_index, "temperature_tokens": 100, "nll_before_temperature": ce, "nll_after_temperature": ce - 0.003}


def seed_study(session, *, name: str, losses: list[str], seeds: list[int], train_corpus_id: int,
               eval_corpus_id: int | None) -> list[int]:
    """The study's experiments (named NAME-sSEED); returns their ids."""
    study = {"name": name, "seeds": seeds, "command": COMMAND.format(name=name),
             "versions": {"python": "3.x", "torch": "2.x", "torch_threads": 1}, "started": "2026-01-01 00:00:00"}
    ids = []
    for seed in seeds:
        experiment = Experiment(name=f"{name}-s{seed}", train_corpus_id=train_corpus_id, eval_corpus_id=eval_corpus_id,
                                config={"preset": "tiny", "steps": STEPS[-1], "save_every": 2, "seed": seed,
                                        "tokenizer": "bpe", "losses": losses, "study": study})
        session.add(experiment)
        session.flush()
        ids.append(experiment.id)
        for index, loss in enumerate(losses):
            _seed_series(session, experiment, index, loss, seed)
    session.flush()
    return ids


def _seed_series(session, experiment: Experiment, index: int, loss: str, seed: int) -> None:
    series = ModelSeries(name=f"{experiment.name}-{loss.replace(':', '-')}", experiment_id=experiment.id,
                         meta={"training": {"loss": loss}})
    for step in STEPS:
        key = f"{series.name}/{step}"
        meta = {"heldout": _heldout(heldout_ce(index, seed, step), seed, index), "train_loss": 6.0 - step / 4}
        if step == STEPS[-1]:
            meta["samples"] = [{"prompt": "When shall we three", "continuation": f" meet <b>{loss}</b> s{seed}"}]
        session.add(Checkpoint(series=series, step=step, tokens_seen=step * 64, format="safetensors", path=f"/m/{key}",
                               weights_sha256=hashlib.sha256(key.encode()).hexdigest(), tokenizer_fingerprint="f" * 64,
                               meta=meta))
    session.flush()
    for step in range(1, STEPS[-1] + 1):
        session.add(TrainingMetric(series_id=series.id, step=step, tokens_seen=step * 64, loss=6.0 - step / 8,
                                   ce_loss=6.0 - step / 8, lr=1e-3, extra={"grad_norm": 1.0}))


def seed_study_on_server(data_dir: Path, **study) -> list[int]:
    """seed_study into a live test server's SQLite database (tests/support/browser.py Server)."""
    engine = make_engine(f"sqlite:///{data_dir / 'focalscope.db'}")
    try:
        with make_sessionmaker(engine)() as session:
            ids = seed_study(session, **study)
            session.commit()
            return ids
    finally:
        engine.dispose()
