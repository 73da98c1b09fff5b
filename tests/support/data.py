"""Small corpora the tests score and train on, made through the services (no model needed)."""

from __future__ import annotations

import re

import pytest

from app.assets import shakespeare_texts
from app.schemas.run import RunOptions
from app.services import checkpoints, corpora, runs

# Five short documents (one of them empty): windows, shards and empty documents in seconds.
TEXTS = [
    "When shall we three meet again\nIn thunder, lightning, or in rain?",
    "Fair is foul, and foul is fair:\nHover through the fog and filthy air.",
    "So foul and fair a day I have not seen.",
    "",
    "To be, or not to be, that is the question.",
]


def make_run(sessions, model_dir, *, shard_chars=10_000, options=None) -> int:
    """A run of the checkpoint in `model_dir` (series "tiny") on the TEXTS corpus; its id."""
    with sessions() as session:
        corpus = corpora.create_corpus(
            session=session, name="scenes", documents=[corpora.DocumentIn(text=t, source=f"{i}.txt") for i, t in enumerate(TEXTS)]
        )
        checkpoint, _ = checkpoints.register_checkpoint(session=session, path=model_dir, series="tiny")
        run, _ = runs.create_run(session=session, checkpoint_id=checkpoint.id, corpus_id=corpus.id,
                                 options=options or RunOptions(max_length=16), shard_chars=shard_chars)
        session.commit()
        return run.id


def macbeth_scenes() -> list[str]:
    """Macbeth's scenes, in play order, from the `shakespeare` package."""
    text = (shakespeare_texts() / "macbeth_gut.txt").read_text(encoding="utf-8")
    return [s.strip() for s in re.split(r"\n(?=SCENE [IVX]+\.)", text)[1:]]


@pytest.fixture
def macbeth_corpora(sessions) -> tuple[int, int, str]:
    """(training corpus id: Act I–II of Macbeth, eval corpus id: the banquet scene, the eval text)."""
    scenes = macbeth_scenes()
    with sessions() as session:
        train = corpora.create_corpus(session=session, name="macbeth-train", documents=[
            corpora.DocumentIn(text=s, source=f"macbeth:{i}") for i, s in enumerate(scenes[:12])])
        held_out = corpora.create_corpus(session=session, name="macbeth-heldout", documents=[
            corpora.DocumentIn(text=scenes[13], source="macbeth:13")])
        session.commit()
        return train.id, held_out.id, scenes[13]
