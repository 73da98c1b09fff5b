"""The fused LM-head loss equals the head followed by the loss: values and gradients, every spec,
ignored targets, several chunks, autocast, and one whole training update of GPT-2 and Llama."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.training_specs import parse_loss_spec
from workers.training.data import BatchSampler, TokenStream
from workers.training.head_loss import fused_head_loss
from workers.training.losses import IGNORE_INDEX, loss_and_ce
from workers.training.presets import build_model
from workers.training.trainer import Trainer, TrainPlan

SPECS = ["ce", "focal:2", "focal:0.5", "poly1:1", "polyfocal:1:2", "focal-schedule:0->2", "flsd53",
         "sigmoid-polyfocal:1:2:0.25"]
N, H, V = 37, 8, 50


def head_then_loss(spec, hidden, weight, targets, **kw):
    return loss_and_ce(spec, hidden @ weight.T, targets, **kw)


def inputs(dtype=torch.float64, ignored=slice(None, None, 5)):
    generator = torch.Generator().manual_seed(7)
    hidden = (torch.randn(N, H, generator=generator, dtype=dtype) * 2).requires_grad_()
    weight = torch.randn(V, H, generator=generator, dtype=dtype).requires_grad_()
    targets = torch.randint(0, V, (N,), generator=generator)
    targets[ignored] = IGNORE_INDEX
    return hidden, weight, targets


def value_and_grads(fn, spec, hidden, weight, targets, **kw):
    hidden.grad = weight.grad = None
    loss, ce = fn(spec, hidden, weight, targets, step=3, total_steps=10, **kw)
    (3.0 * loss).backward()  # an upstream gradient other than 1 must scale the stored ones
    return loss.detach(), ce.detach(), hidden.grad.clone(), weight.grad.clone()


@pytest.mark.parametrize("text", SPECS)
@pytest.mark.parametrize("chunk_rows", [6, N, 1000])
def test_fused_head_loss_equals_head_then_loss(text, chunk_rows):
    spec = parse_loss_spec(text)
    hidden, weight, targets = inputs()
    expected = value_and_grads(head_then_loss, spec, hidden, weight, targets)
    fused = value_and_grads(fused_head_loss, spec, hidden, weight, targets, chunk_rows=chunk_rows)
    for name, want, got in zip(("loss", "ce", "d hidden", "d weight"), expected, fused):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12, msg=name)
    assert not torch.equal(fused[2], torch.zeros_like(fused[2]))


def test_a_batch_of_ignored_targets_has_zero_loss_and_gradient():
    hidden, weight, targets = inputs(ignored=slice(None))
    loss, ce, d_hidden, d_weight = value_and_grads(fused_head_loss, parse_loss_spec("focal:2"), hidden, weight, targets)
    assert float(loss) == 0.0 and float(ce) == 0.0
    assert not d_hidden.any() and not d_weight.any()


def test_under_autocast_the_matmuls_use_its_dtype_as_the_plain_head_would():
    spec = parse_loss_spec("focal:2")
    hidden, weight, targets = inputs(dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = value_and_grads(head_then_loss, spec, hidden, weight, targets)
        fused = value_and_grads(fused_head_loss, spec, hidden, weight, targets, chunk_rows=6)
    exact = value_and_grads(head_then_loss, spec, hidden, weight, targets)
    assert fused[2].dtype == hidden.dtype and fused[3].dtype == weight.dtype
    torch.testing.assert_close(fused[0], expected[0].float(), rtol=1e-3, atol=1e-3)
    # bf16 logits are off by ~1e-2 from float32 ones: the fused loss must show that rounding too.
    assert float((fused[0] - exact[0]).abs()) > 1e-5


def test_bad_shapes_are_refused():
    hidden, weight, targets = inputs()
    with pytest.raises(ValueError, match=r"expected hidden \[N, H\], weight \[V, H\], targets \[N\]"):
        fused_head_loss(parse_loss_spec("ce"), hidden, weight.T, targets)


@pytest.mark.parametrize(("arch", "text"), [("gpt2", "ce"), ("gpt2", "focal:2"), ("llama", "ce"), ("llama", "focal:2"),
                                            ("gpt2", "focal-adaptive:2"), ("gpt2", "rho1:0.5:ref"), ("llama", "mile:1")])
def test_a_training_update_with_the_fused_head_matches_the_plain_one(arch, text):
    from transformers import GPT2Config, LlamaConfig

    config = (GPT2Config(vocab_size=96, n_embd=32, n_layer=2, n_head=2, n_positions=32)
              if arch == "gpt2" else
              LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32))
    config.tie_word_embeddings = True
    sampler = BatchSampler(TokenStream(ids=np.arange(2000, dtype=np.int32) % 96, n_documents=1), batch_size=3,
                           seq_len=16, seed=0)
    plan = TrainPlan(steps=2, save_every=2, lr=1e-2, loss=parse_loss_spec(text))
    results, grads = [], []
    for fused in (False, True):
        model = build_model(config, seed=0)
        reference = build_model(config, seed=1) if text.startswith("rho1") else None
        trainer = Trainer(model, sampler, plan, torch.device("cpu"), fused_head=fused, reference=reference)
        assert (trainer._head is not None) == fused
        results.append(trainer.train_step(0))
        # Gradients, not updated weights: AdamW turns rounding-level gradients (the key bias's are
        # zero in exact arithmetic) into ±lr steps.
        grads.append({name: p.grad.clone() for name, p in model.named_parameters()})
    plain, fused = results
    assert fused.loss == pytest.approx(plain.loss, rel=1e-6)
    assert fused.ce == pytest.approx(plain.ce, rel=1e-6)
    assert fused.grad_norm == pytest.approx(plain.grad_norm, rel=1e-5)
    if text.startswith("focal-adaptive"):  # the effective γ of the step is reported: 2·(1 − mean p) < 2
        assert 0 < fused.gamma < 2 and fused.gamma == pytest.approx(plain.gamma, rel=1e-6)
    assert grads[0].keys() == grads[1].keys()
    for name, value in grads[0].items():
        torch.testing.assert_close(grads[1][name], value, rtol=1e-4, atol=1e-7, msg=name)


@pytest.mark.parametrize("text", ["mile:1", "focal-adaptive:2", "rho1:0.5:ref@1"])
@pytest.mark.parametrize("chunk_rows", [6, 1000])
def test_new_losses_fused_equal_head_then_loss(text, chunk_rows):
    """The batch-level losses see the same context (from head_target_logprob) in both paths."""
    from workers.training.head_loss import head_target_logprob
    from workers.training.losses import batch_context

    spec = parse_loss_spec(text)
    hidden, weight, targets = inputs()
    logp = head_target_logprob(hidden.detach(), weight.detach(), targets, chunk_rows=5)
    reference = torch.randn(N, generator=torch.Generator().manual_seed(3), dtype=torch.float64) - 4.0
    context = batch_context(spec, logp, targets, reference)
    expected = value_and_grads(head_then_loss, spec, hidden, weight, targets, context=context)
    fused = value_and_grads(fused_head_loss, spec, hidden, weight, targets, chunk_rows=chunk_rows, context=context)
    for name, want, got in zip(("loss", "ce", "d hidden", "d weight"), expected, fused):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12, msg=name)
