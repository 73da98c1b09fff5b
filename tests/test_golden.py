"""Golden values on the real SmolLM2-135M GGUF and real Shakespeare: what the worker stores equals
what plain transformers computes, independently, from the same GGUF file."""

from __future__ import annotations

import pytest
import torch
from sqlalchemy import select

from app.assets import smollm2_gguf
from app.models.run import RunSummary, TokenScores
from app.schemas.run import RunOptions
from app.services import checkpoints, corpora, runs
from focalscope.demo_assets import heldout_documents
from workers.loop import Worker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def passage() -> str:
    """Macbeth I.3 (the witches on the heath), first 1,500 characters."""
    return heldout_documents()[2].text[:1500]


@pytest.fixture(scope="module")
def reference_loss(passage) -> tuple[float, int]:
    """Mean loss and token count from transformers alone: GGUF → model, BOS + passage, labels= path."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    # SmolLM2's GGUF has no output matrix (the head is the embedding). transformers' own tying was
    # seen to leave a head of zeros after other tests had loaded models: tie it by hand.
    assert model.config.tie_word_embeddings
    model.lm_head.weight = model.model.embed_tokens.weight
    ids = tokenizer(passage, add_special_tokens=False)["input_ids"]
    sequence = torch.tensor([[tokenizer.bos_token_id] + ids])
    with torch.no_grad():
        return model(input_ids=sequence, labels=sequence).loss.item(), len(ids)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_stored_mean_loss_matches_transformers(settings, sessions, passage, reference_loss):
    expected_loss, expected_tokens = reference_loss
    with sessions() as session:
        corpus = corpora.create_corpus(session=session, name="heath",
                                       documents=[corpora.DocumentIn(text=passage, source="macbeth")])
        checkpoint, _ = checkpoints.register_checkpoint(session=session, path=smollm2_gguf(), series="smollm2")
        run, _ = runs.create_run(session=session, checkpoint_id=checkpoint.id, corpus_id=corpus.id,
                                 options=RunOptions(), shard_chars=settings.shard_chars)
        session.commit()
        assert checkpoint.architecture == "llama"
    Worker(settings, device="cpu").run_forever(exit_when_idle=True)
    with sessions() as session:
        scores = session.scalar(select(TokenScores).where(TokenScores.run_id == run.id))
        summary = session.get(RunSummary, run.id)
    assert scores.n_tokens == expected_tokens > 300
    stored_mean_loss = -scores.sum_logprob / scores.n_tokens
    assert stored_mean_loss == pytest.approx(expected_loss, rel=1e-4)
    assert summary.mean_loss == pytest.approx(expected_loss, rel=1e-4)
    # A real model on real English: far better than uniform over 49,152 tokens (ln ≈ 10.8).
    assert 2.0 < expected_loss < 5.0
    assert summary.top1_accuracy > 0.3
