"""The study's losses against direct float64 formulas: MiLe (entropy-weighted CE), focal-adaptive (γ from
the batch's mean p) and Rho-1 (CE on the top share of tokens by excess loss over a reference)."""

from __future__ import annotations

import math

import pytest
import torch

from app.training_specs import parse_loss_spec
from workers.training import losses
from workers.training.losses import IGNORE_INDEX

N, V = 64, 50
F32 = {"rtol": 2e-5, "atol": 2e-6}  # float32 implementation vs float64 reference


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Logits spread widely (very easy and very hard tokens), eight near-certain rows, three ignored."""
    generator = torch.Generator().manual_seed(1234)
    logits = torch.randn(N, V, generator=generator) * 4.0
    targets = torch.randint(0, V, (N,), generator=generator)
    logits[:8, :] -= 20.0
    logits[torch.arange(8), targets[:8]] += 40.0
    targets[[3, 17, 40]] = IGNORE_INDEX
    return logits, targets


def reference_logp(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    keep = targets != IGNORE_INDEX
    logp = torch.log_softmax(logits.double(), dim=1)
    return logp[torch.arange(len(targets)), targets.clamp_min(0)], keep


def reference_mean(per_token: torch.Tensor, keep: torch.Tensor) -> float:
    return float(per_token[keep].sum() / keep.sum())


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_mile_matches_float64_entropy_weighted_ce(batch, gamma):
    logits, targets = batch
    logp, keep = reference_logp(logits, targets)
    logprobs = torch.log_softmax(logits.double(), dim=1)
    entropy = -(logprobs.exp() * logprobs).sum(dim=1)
    expected = entropy ** gamma * -logp
    torch.testing.assert_close(losses.mile_loss(logits, targets, gamma, reduction="none").double(),
                               torch.where(keep, expected, 0.0), **F32)
    loss, ce = losses.loss_and_ce(parse_loss_spec(f"mile:{gamma}"), logits, targets)
    assert float(loss) == pytest.approx(reference_mean(expected, keep), rel=2e-5)
    assert float(ce) == pytest.approx(reference_mean(-logp, keep), rel=1e-6)


def test_mile_gradient_is_the_entropy_weighted_ce_gradient(batch):
    """The weight is a constant: ∂/∂z = H^γ · (p − e_y) / n per kept row (not through H, whose gradient
    would drive every prediction to a point mass)."""
    logits, targets = batch
    x32 = logits.clone().requires_grad_()
    losses.mile_loss(x32, targets, 2.0).backward()
    probs = torch.softmax(logits.double(), dim=1)
    entropy = -(probs * probs.log()).sum(dim=1)
    keep = targets != IGNORE_INDEX
    expected = (probs - torch.nn.functional.one_hot(targets.clamp_min(0), V).double()) * entropy[:, None] ** 2
    expected = torch.where(keep[:, None], expected, 0.0) / keep.sum()
    torch.testing.assert_close(x32.grad.double(), expected, rtol=1e-4, atol=1e-7)


def test_focal_adaptive_gamma_follows_the_batch_mean_p(batch):
    logits, targets = batch
    logp, keep = reference_logp(logits, targets)
    mean_p = float(logp[keep].exp().mean())
    spec = parse_loss_spec("focal-adaptive:3")
    context = losses.batch_context(spec, logp.float(), targets)
    assert context.gamma == pytest.approx(3.0 * (1.0 - mean_p), rel=1e-7)  # log p passed in float32
    loss, _ = losses.loss_and_ce(spec, logits, targets, context=context)
    assert float(loss) == pytest.approx(float(losses.focal_loss(logits, targets, context.gamma)), rel=1e-7)
    # A batch the model already predicts well gets a smaller γ than one it does not.
    easy = targets.clone()
    easy[:] = logits.argmax(dim=1)
    assert losses.batch_context(spec, losses.target_logprob(logits, easy), easy).gamma < context.gamma
    with pytest.raises(ValueError, match="batch_context"):
        losses.loss_and_ce(spec, logits, targets)


@pytest.mark.parametrize("ratio", [0.25, 0.6, 1.0])
def test_rho1_takes_ce_on_the_top_ratio_by_excess_loss(batch, ratio):
    logits, targets = batch
    logp, keep = reference_logp(logits, targets)
    reference = torch.randn(N, V, generator=torch.Generator().manual_seed(99)) * 3.0
    ref_logp, _ = reference_logp(reference, targets)
    # Direct implementation: sort the kept tokens by excess loss, average CE over the first ⌈ratio·n⌉.
    kept = [i for i in range(N) if keep[i]]
    excess = {i: float(-logp[i] + ref_logp[i]) for i in kept}
    k = math.ceil(ratio * len(kept))
    chosen = sorted(kept, key=lambda i: -excess[i])[:k]
    expected = sum(float(-logp[i]) for i in chosen) / k
    spec = parse_loss_spec(f"rho1:{ratio}:ref@10")
    context = losses.batch_context(spec, logp.float(), targets, ref_logp.float())
    assert sorted(torch.nonzero(context.weights).squeeze(1).tolist()) == sorted(chosen)
    loss, ce = losses.loss_and_ce(spec, logits, targets, context=context)
    assert float(loss) == pytest.approx(expected, rel=2e-6)
    assert float(ce) == pytest.approx(reference_mean(-logp, keep), rel=1e-6)
    if ratio == 1.0:
        assert float(loss) == pytest.approx(float(ce), rel=1e-6)


def test_rho1_without_its_reference_is_an_error(batch):
    logits, targets = batch
    with pytest.raises(ValueError, match="reference model"):
        losses.batch_context(parse_loss_spec("rho1:0.5:ref"), losses.target_logprob(logits, targets), targets)


@pytest.mark.parametrize(("text", "message"), [
    ("rho1:0:ce-run", r"RATIO must be in \(0, 1\]"),
    ("rho1:1.5:ce-run", r"RATIO must be in \(0, 1\]"),
    ("rho1:0.5", "rho1 needs 2 parameters"),
    ("rho1:0.5:no spaces", "REFERENCE 'no spaces' must be a checkpoint id"),
    ("mile:-1", "must be ≥ 0"),
    ("focal-adaptive:x", "is not a number"),
])
def test_bad_new_specs_raise_clear_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_loss_spec(text)


def test_rho1_reference_keeps_its_case():
    spec = parse_loss_spec("RHO1:0.6:MyExp-ce@300")
    assert (spec.kind, spec.ratio, spec.reference, spec.text) == ("rho1", 0.6, "MyExp-ce@300", "rho1:0.6:MyExp-ce@300")
