"""`focalscope demo`: SmolLM2-135M scored on the first two acts of Macbeth, ready to browse.

Idempotent: a second run finds the corpus, the checkpoint and the run already there (and the GGUF
conversion cached), so it only starts serving.
"""

from __future__ import annotations

from sqlalchemy import select

from app.core.config import Settings
from app.models.corpus import Corpus
from app.schemas.run import RunOptions
from app.services import checkpoints, corpora, runs
from focalscope import demo_assets

HELDOUT_CORPUS = "shakespeare-heldout"
SMOLLM2_SERIES = "SmolLM2-135M-Instruct"


def prepare_demo(sessions, settings: Settings) -> int:
    """Create what is missing; returns the demo run's id."""
    with sessions() as session:
        corpus = session.scalar(select(Corpus).where(Corpus.name == HELDOUT_CORPUS))
        if corpus is None:
            corpus = corpora.create_corpus(
                session=session, name=HELDOUT_CORPUS, documents=demo_assets.heldout_documents(),
                description="Macbeth, acts I–II, one document per scene (held out from the demo's training corpus).",
            )
            print(f"corpus {HELDOUT_CORPUS!r}: {corpus.n_documents} scenes, {corpus.n_chars:,} characters")
        checkpoint, created = checkpoints.register_checkpoint(
            session=session, path=demo_assets.smollm2_gguf(), series=SMOLLM2_SERIES, step=0
        )
        if created:
            print(f"model {SMOLLM2_SERIES}: registered {checkpoint.path}")
        run, created = runs.create_run(
            session=session, checkpoint_id=checkpoint.id, corpus_id=corpus.id, options=RunOptions(),
            shard_chars=settings.shard_chars,
        )
        session.commit()
        print(f"run {run.id}: {'enqueued' if created else 'already there'} (SmolLM2 on {HELDOUT_CORPUS})")
        return run.id
