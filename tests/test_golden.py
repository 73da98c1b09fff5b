"""Golden values on the real SmolLM2-135M GGUF and real Shakespeare: what the worker stores equals
what plain transformers computes, on its own, from the same weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from sqlalchemy import select

from app.assets import smollm2_gguf
from app.models.checkpoint import Checkpoint
from app.models.run import RunSummary, TokenScores
from app.schemas.run import RunOptions
from app.services import checkpoints, corpora, runs
from focalscope.demo_assets import heldout_documents
from workers.loop import Worker

pytestmark = pytest.mark.slow
# The file's tokenizer fingerprint as registration computed it with the gguf package's GGUFReader (before
# app/services/gguf_header.py): runs registered then must keep comparing equal to runs registered now.
SMOLLM2_TOKENIZER_FINGERPRINT = "894ddeb8ec79365a636abe3991b1365c0b79cb044736d5de473619eb89ca6efa"


@pytest.fixture(scope="module")
def passage() -> str:
    """Macbeth I.3 (the witches on the heath), first 1,500 characters."""
    return heldout_documents()[2].text[:1500]


def reference_loss(model_dir: Path, passage: str) -> tuple[float, int]:
    """Mean loss and token count from transformers alone on the worker's float32 copy of the GGUF
    weights: BOS + passage through the `labels=` path (its own shift and log-softmax)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    # transformers' own tying was seen to leave a head of zeros after other tests had loaded models:
    # SmolLM2's head is its embedding, tied by hand.
    assert model.config.tie_word_embeddings
    model.lm_head.weight = model.model.embed_tokens.weight
    ids = tokenizer(passage, add_special_tokens=False)["input_ids"]
    sequence = torch.tensor([[tokenizer.bos_token_id] + ids])
    with torch.no_grad():
        return model(input_ids=sequence, labels=sequence).loss.item(), len(ids)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_stored_mean_loss_matches_transformers(settings, sessions, passage):
    with sessions() as session:
        corpus = corpora.create_corpus(session=session, name="heath",
                                       documents=[corpora.DocumentIn(text=passage, source="macbeth")])
        checkpoint, _ = checkpoints.register_checkpoint(session=session, path=smollm2_gguf(), series="smollm2")
        run, _ = runs.create_run(session=session, checkpoint_id=checkpoint.id, corpus_id=corpus.id,
                                 options=RunOptions(), shard_chars=settings.shard_chars)
        session.commit()
        assert checkpoint.architecture == "llama"
        assert checkpoint.tokenizer_fingerprint == SMOLLM2_TOKENIZER_FINGERPRINT
    Worker(settings, device="cpu").run_forever(exit_when_idle=True)
    with sessions() as session:
        scores = session.scalar(select(TokenScores).where(TokenScores.run_id == run.id))
        summary = session.get(RunSummary, run.id)
        weights_sha256 = session.get(Checkpoint, run.checkpoint_id).weights_sha256
    # Dequantizing the GGUF takes transformers' loader half a minute: the reference reads the copy the
    # worker made of it instead. A conversion that lost or mangled weights cannot hide behind that: the
    # loss bounds below are those of a real model on real English.
    expected_loss, expected_tokens = reference_loss(settings.cache_dir / "gguf" / weights_sha256, passage)
    assert scores.n_tokens == expected_tokens > 300
    stored_mean_loss = -scores.sum_logprob / scores.n_tokens
    assert stored_mean_loss == pytest.approx(expected_loss, rel=1e-4)
    assert summary.mean_loss == pytest.approx(expected_loss, rel=1e-4)
    # A real model on real English: far better than uniform over 49,152 tokens (ln ≈ 10.8).
    assert 2.0 < expected_loss < 5.0
    assert summary.top1_accuracy > 0.3
