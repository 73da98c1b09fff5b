"""The trainer's pieces without a job: presets, the lr schedule, batches, divergence, and the app
side staying torch-free."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from app.training_specs import PRESETS, parse_loss_spec
from workers.training.data import BatchSampler, TokenStream
from workers.training.presets import build_model, count_parameters, model_config
from workers.training.trainer import TrainPlan



# --- pieces -----------------------------------------------------------------------------------------

def test_preset_parameter_counts_are_what_the_presets_say():
    for preset in PRESETS.values():
        for tokenizer, vocab in (("bpe", preset.vocab_size), ("smollm2", 49152)):
            with torch.device("meta"):
                model = build_model(model_config(preset, vocab_size=vocab, bos_token_id=0, eos_token_id=0), seed=0)
            assert count_parameters(model) == preset.params[tokenizer], (preset.name, tokenizer)
    assert 1_000_000 <= PRESETS["tiny"].params["bpe"] <= 3_000_000
    assert 15_000_000 <= PRESETS["small"].params["bpe"] <= 25_000_000
    assert 100_000_000 <= PRESETS["base"].params["smollm2"] <= 140_000_000


def test_lr_schedule_and_batches_depend_on_the_step_alone():
    plan = TrainPlan(steps=100, save_every=10, lr=1e-3, loss=parse_loss_spec("ce"))
    assert plan.warmup_steps == 5
    assert [plan.lr_at(i) for i in range(5)] == pytest.approx([2e-4, 4e-4, 6e-4, 8e-4, 1e-3])
    assert plan.lr_at(99) == pytest.approx(1e-4) and plan.lr_at(5) == pytest.approx(1e-3)
    assert plan.lr_at(52) == pytest.approx(1e-4 + 0.5 * 9e-4, rel=1e-2)  # half-way down the cosine
    assert [s for s in range(101) if plan.saves_at(s)] == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    sampler = BatchSampler(TokenStream(ids=np.arange(1000, dtype=np.int32), n_documents=1), batch_size=4,
                           seq_len=16, seed=5)
    late = sampler.batch(7)
    for step in range(7):
        sampler.batch(step)
    again = sampler.batch(7)
    assert torch.equal(late[0], again[0]) and torch.equal(late[1], again[1])
    assert torch.equal(late[1][:, :-1], late[0][:, 1:])  # targets are the inputs shifted by one
    assert not torch.equal(sampler.batch(8)[0], late[0])
    assert not torch.equal(BatchSampler(TokenStream(np.arange(1000, dtype=np.int32), 1), batch_size=4, seq_len=16,
                                        seed=6).batch(7)[0], late[0])


def test_app_side_imports_no_torch():
    code = ("import sys, app.services.training, app.services.experiments, app.schemas.training, app.training_specs; "
            "bad = [m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_a_diverging_loss_stops_training_with_its_update_number():
    from transformers import GPT2Config

    from workers.training.trainer import Trainer, TrainingDiverged

    config = GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2, n_positions=32)
    model = build_model(config, seed=0)
    sampler = BatchSampler(TokenStream(ids=np.arange(640, dtype=np.int32) % 64, n_documents=1), batch_size=2,
                           seq_len=16, seed=0)
    trainer = Trainer(model, sampler, TrainPlan(steps=4, save_every=4, lr=1e-3, loss=parse_loss_spec("ce")),
                      torch.device("cpu"))
    assert trainer.train_step(0).step == 1
    with torch.no_grad():
        model.get_input_embeddings().weight[:] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"ce loss became nan at update 2; lower lr"):
        trainer.train_step(1)


def test_models_loaded_in_threads_leave_tying_on(tiny_gpt2_dir):
    """transformers switches tying off on the class while it loads a model: two threads loading at
    once could leave it off for good, and every later model untied (workers/models.py MODEL_BUILD_LOCK)."""
    from concurrent.futures import ThreadPoolExecutor

    from workers.models import causal_lm_from_dir

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: causal_lm_from_dir(tiny_gpt2_dir, dtype=torch.float32), range(8)))
    preset = PRESETS["tiny"]
    with torch.device("meta"):
        after = build_model(model_config(preset, vocab_size=preset.vocab_size, bos_token_id=0, eos_token_id=0), seed=0)
    assert after.lm_head.weight is after.transformer.wte.weight
    assert count_parameters(after) == preset.params["bpe"]


def test_a_worker_trains_each_bpe_vocabulary_once():
    from workers.context import TokenizerCache
    from workers.training.tokenizer import build_tokenizer

    cache, texts = TokenizerCache(), ["fair is foul and foul is fair " * 50]
    first = build_tokenizer("bpe", texts=texts, vocab_size=300, context=64, cache=cache)
    assert build_tokenizer("bpe", texts=list(texts), vocab_size=300, context=64, cache=cache) is first
    other = build_tokenizer("bpe", texts=texts, vocab_size=280, context=64, cache=cache)
    assert other is not first and len(cache.bpe) == 2
    # The vocabulary a cache hit stands for is the one training again gives (rho1 compares them).
    assert build_tokenizer("bpe", texts=texts, vocab_size=300, context=64).get_vocab() == first.get_vocab()
