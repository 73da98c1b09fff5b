"""`focalscope demo`: real models on real text, ready to browse in a few minutes on a CPU.

1. SmolLM2-135M (GGUF) scored on Macbeth acts I–II, one document per scene.
2. A tiny experiment: two tiny GPT-2 models trained on six other plays, one with cross-entropy and
   one with focal loss (γ = 2), every checkpoint scored on the same Macbeth scenes — so the demo
   shows difficulty shifting across checkpoints and what focal loss does to it.

Idempotent: a second run finds everything in place (and the GGUF conversion cached) and only serves.
"""

from __future__ import annotations

from sqlalchemy import select

from app.assets import smollm2_gguf
from app.core.config import Settings
from app.db.engine import writing_session
from app.models.corpus import Corpus
from app.models.training import Experiment
from app.schemas.run import RunOptions
from app.schemas.training import ExperimentCreate
from app.services import checkpoints, corpora, runs, training
from focalscope import demo_assets

HELDOUT_CORPUS = "shakespeare-heldout"
TRAINING_CORPUS = "shakespeare-train"
SMOLLM2_SERIES = "SmolLM2-135M-Instruct"
EXPERIMENT = "demo-focal-vs-ce"
# ≈ 70 s of training per loss on 2 CPU cores; five checkpoints each (steps 0, 50, ..., 200).
EXPERIMENT_LOSSES = ["ce", "focal:2"]
EXPERIMENT_STEPS = 200
EXPERIMENT_SAVE_EVERY = 50


def _corpus(session, name: str, documents, description: str) -> Corpus:
    corpus = session.scalar(select(Corpus).where(Corpus.name == name))
    if corpus is None:
        corpus = corpora.create_corpus(session=session, name=name, documents=documents(), description=description)
        print(f"corpus {name!r}: {corpus.n_documents} documents, {corpus.n_chars:,} characters")
    return corpus


def prepare_demo(sessions, settings: Settings, *, train: bool = True) -> None:
    """Create what is missing and enqueue its work."""
    with writing_session(sessions) as session:
        heldout = _corpus(session, HELDOUT_CORPUS, demo_assets.heldout_documents,
                          "Macbeth, acts I–II, one document per scene (held out from the training corpus).")
        checkpoint, created = checkpoints.register_checkpoint(
            session=session, path=smollm2_gguf(), series=SMOLLM2_SERIES, step=0
        )
        if created:
            print(f"model {SMOLLM2_SERIES}: registered {checkpoint.path}")
        run, created = runs.create_run(
            session=session, checkpoint_id=checkpoint.id, corpus_id=heldout.id, options=RunOptions(),
            shard_chars=settings.shard_chars,
        )
        print(f"run {run.id}: {'enqueued' if created else 'already there'} (SmolLM2 on {HELDOUT_CORPUS})")
        if train and session.scalar(select(Experiment.id).where(Experiment.name == EXPERIMENT)) is None:
            train_corpus = _corpus(session, TRAINING_CORPUS, demo_assets.training_documents,
                                   "Six Shakespeare plays (not Macbeth): the demo's training corpus.")
            experiment = training.create_experiment(session=session, settings=settings, request=ExperimentCreate(
                name=EXPERIMENT, corpus_id=train_corpus.id, eval_corpus_id=heldout.id, losses=EXPERIMENT_LOSSES,
                preset="tiny", steps=EXPERIMENT_STEPS, save_every=EXPERIMENT_SAVE_EVERY,
            ))
            print(f"experiment {EXPERIMENT!r} (id {experiment.id}): tiny GPT-2 trained with "
                  f"{' vs '.join(EXPERIMENT_LOSSES)}, {EXPERIMENT_STEPS} steps, scored every {EXPERIMENT_SAVE_EVERY}")
        session.commit()
