"""The training losses against direct float64 formulas, their identities, gradients and spec parsing."""

from __future__ import annotations

import math

import pytest
import torch

from app.training_specs import LossSpec, parse_loss_spec
from workers.training import losses
from workers.training.losses import IGNORE_INDEX

N, V = 64, 50
# float32 implementation vs float64 reference: a few ulps of float32 on values of order 1–10.
F32 = {"rtol": 2e-5, "atol": 2e-6}


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1234)
    # Spread logits widely so that both very easy (p → 1) and very hard (p → 0) tokens occur.
    logits = torch.randn(N, V, generator=generator) * 4.0
    targets = torch.randint(0, V, (N,), generator=generator)
    logits[:8, :] -= 20.0
    logits[torch.arange(8), targets[:8]] += 40.0  # eight near-certain tokens
    targets[[3, 17, 40]] = IGNORE_INDEX
    return logits, targets


def reference_logp(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 log p of the target, and the mask of kept rows."""
    keep = targets != IGNORE_INDEX
    logp = torch.log_softmax(logits.double(), dim=1)
    return logp[torch.arange(len(targets)), targets.clamp_min(0)], keep


def reference_mean(per_token: torch.Tensor, keep: torch.Tensor) -> float:
    return float(per_token[keep].sum() / keep.sum())


def test_cross_entropy_matches_float64_and_torch(batch):
    logits, targets = batch
    logp, keep = reference_logp(logits, targets)
    value = losses.cross_entropy(logits, targets)
    assert value.dtype == torch.float32
    assert float(value) == pytest.approx(reference_mean(-logp, keep), rel=1e-6)
    assert float(value) == pytest.approx(float(torch.nn.functional.cross_entropy(logits, targets)), rel=1e-6)


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 5.0])
def test_focal_matches_float64(batch, gamma):
    logits, targets = batch
    logp, keep = reference_logp(logits, targets)
    p = logp.exp()
    expected = -((1 - p) ** gamma) * logp
    per_token = losses.focal_loss(logits, targets, gamma, reduction="none")
    torch.testing.assert_close(per_token.double(), torch.where(keep, expected, 0.0), **F32)
    assert float(losses.focal_loss(logits, targets, gamma)) == pytest.approx(reference_mean(expected, keep), rel=2e-5)


@pytest.mark.parametrize(("epsilon", "gamma"), [(1.0, 2.0), (-1.0, 1.0), (2.5, 0.5)])
def test_poly1_and_polyfocal_match_float64(batch, epsilon, gamma):
    logits, targets = batch
    logp, keep = reference_logp(logits, targets)
    p = logp.exp()
    poly1 = -logp + epsilon * (1 - p)
    polyfocal = (1 - p) ** gamma * -logp + epsilon * (1 - p) ** (gamma + 1)
    torch.testing.assert_close(losses.poly1_loss(logits, targets, epsilon, reduction="none").double(),
                               torch.where(keep, poly1, 0.0), **F32)
    torch.testing.assert_close(losses.polyfocal_loss(logits, targets, epsilon, gamma, reduction="none").double(),
                               torch.where(keep, polyfocal, 0.0), **F32)
    assert float(losses.polyfocal_loss(logits, targets, epsilon, gamma)) == pytest.approx(
        reference_mean(polyfocal, keep), rel=2e-5)


def test_identities_between_losses(batch):
    logits, targets = batch
    ce = losses.cross_entropy(logits, targets, reduction="none")
    torch.testing.assert_close(losses.focal_loss(logits, targets, 0.0, reduction="none"), ce, rtol=0, atol=0)
    torch.testing.assert_close(losses.poly1_loss(logits, targets, 0.0, reduction="none"), ce, rtol=0, atol=0)
    torch.testing.assert_close(losses.polyfocal_loss(logits, targets, 0.0, 2.0, reduction="none"),
                               losses.focal_loss(logits, targets, 2.0, reduction="none"), rtol=0, atol=0)
    # Focal loss never exceeds CE, and is clearly below it where p is neither ~0 nor ~1.
    focal = losses.focal_loss(logits, targets, 2.0, reduction="none")
    p = (-ce).exp()
    middle = (targets != IGNORE_INDEX) & (p > 0.01) & (p < 0.99)
    assert bool((focal <= ce).all()) and int(middle.sum()) > 3
    assert bool((focal[middle] < ce[middle] * 0.999).all())


def test_ignored_rows_count_nowhere(batch):
    logits, targets = batch
    keep = targets != IGNORE_INDEX
    for spec in ["ce", "focal:2", "poly1:1", "polyfocal:1:2", "flsd53", "sigmoid-polyfocal:1:2:0.25"]:
        parsed = parse_loss_spec(spec)
        full = losses.compute_loss(parsed, logits, targets)
        only_kept = losses.compute_loss(parsed, logits[keep], targets[keep])
        assert float(full) == pytest.approx(float(only_kept), rel=1e-6), spec
        assert bool((losses.compute_loss(parsed, logits, targets, reduction="none")[~keep] == 0).all()), spec
        # The gradient of ignored rows is exactly zero.
        leaf = logits.clone().requires_grad_(True)
        losses.compute_loss(parsed, leaf, targets).backward()
        assert float(leaf.grad[~keep].abs().max()) == 0.0, spec
        assert float(leaf.grad[keep].abs().max()) > 0.0, spec
    # All ignored: zero, not NaN.
    assert float(losses.cross_entropy(logits[:2], torch.full((2,), IGNORE_INDEX))) == 0.0


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 3.0])
def test_focal_gradient_is_g_times_ce_gradient(gamma):
    """∂FL/∂z = g(p, γ)·∂CE/∂z per token, g = (1−p)^γ − γ p (1−p)^(γ−1) log p (app.analytics.focal)."""
    generator = torch.Generator().manual_seed(7)
    logits = (torch.randn(N, V, generator=generator, dtype=torch.float64) * 3.0).requires_grad_(True)
    targets = torch.randint(0, V, (N,), generator=generator)
    losses.focal_loss(logits, targets, gamma, reduction="none").sum().backward()
    focal_grad = logits.grad.clone()
    logits.grad = None
    losses.cross_entropy(logits, targets, reduction="none").sum().backward()
    ce_grad = logits.grad
    with torch.no_grad():
        logp = torch.log_softmax(logits, 1)[torch.arange(N), targets]
        p = logp.exp()
        g = (1 - p) ** gamma - gamma * p * (1 - p) ** (gamma - 1) * logp
        # CE's gradient is softmax − one-hot, directly.
        onehot = torch.nn.functional.one_hot(targets, V).double()
        torch.testing.assert_close(ce_grad, torch.softmax(logits, 1) - onehot, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(focal_grad, g[:, None] * ce_grad, rtol=1e-9, atol=1e-12)
    # Focal loss boosts the gradient of very hard tokens (g > 1) and damps easy ones (g < 1).
    assert bool((g[p < 0.01] > 1).all()) and bool((g[p > 0.5] < 1).all())
    assert int((p < 0.01).sum()) > 0 and int((p > 0.5).sum()) > 0


def test_focal_schedule_interpolates_gamma(batch):
    logits, targets = batch
    spec = parse_loss_spec("focal-schedule:0->2")
    steps = 101
    assert spec.gamma_at(0, steps) == 0.0
    assert spec.gamma_at(50, steps) == pytest.approx(1.0)
    assert spec.gamma_at(100, steps) == pytest.approx(2.0)
    assert spec.gamma_at(25, steps) == pytest.approx(0.5)
    for step, gamma in [(0, 0.0), (50, 1.0), (100, 2.0)]:
        value = losses.compute_loss(spec, logits, targets, step=step, total_steps=steps)
        assert float(value) == pytest.approx(float(losses.focal_loss(logits, targets, gamma)), rel=1e-6)
    # Decreasing schedules too; a single-step run uses γ0.
    down = parse_loss_spec("focal-schedule:3->1")
    assert down.gamma_at(9, 10) == pytest.approx(1.0) and down.gamma_at(0, 1) == 3.0


def test_flsd53_picks_gamma_per_token(batch):
    logits, targets = batch
    logp, keep = reference_logp(logits, targets)
    p = logp.exp()
    gamma = torch.where(p < 0.2, 5.0, 3.0).double()
    assert int((p[keep] < 0.2).sum()) > 5 and int((p[keep] >= 0.2).sum()) > 5  # both branches exercised
    expected = -((1 - p) ** gamma) * logp
    per_token = losses.flsd53_loss(logits, targets, reduction="none")
    torch.testing.assert_close(per_token.double(), torch.where(keep, expected, 0.0), **F32)
    # Tokens with p < 0.2 get exactly focal:5, the others focal:3.
    low, high = keep & (p < 0.2), keep & (p >= 0.2)
    torch.testing.assert_close(per_token[low], losses.focal_loss(logits, targets, 5.0, reduction="none")[low])
    torch.testing.assert_close(per_token[high], losses.focal_loss(logits, targets, 3.0, reduction="none")[high])


def test_flsd53_gamma_choice_is_not_differentiated():
    """γ is chosen on the detached p: the gradient equals that of focal with the chosen γ held fixed."""
    generator = torch.Generator().manual_seed(3)
    logits = (torch.randn(N, V, generator=generator, dtype=torch.float64) * 3).requires_grad_(True)
    targets = torch.randint(0, V, (N,), generator=generator)
    losses.flsd53_loss(logits, targets, reduction="none").sum().backward()
    grad = logits.grad.clone()
    with torch.no_grad():
        p = torch.softmax(logits, 1)[torch.arange(N), targets]
    for gamma, rows in ((5.0, p < 0.2), (3.0, p >= 0.2)):
        logits.grad = None
        losses.focal_loss(logits, targets, gamma, reduction="none").sum().backward()
        torch.testing.assert_close(grad[rows], logits.grad[rows], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("epsilon", "gamma", "alpha"), [(1.0, 2.0, 0.25), (0.0, 0.0, 0.5), (2.0, 1.0, 0.75)])
def test_sigmoid_polyfocal_matches_float64_snippet(batch, epsilon, gamma, alpha):
    """The widely copied one-vs-all form, written out the way those snippets write it, in float64."""
    logits, targets = batch
    keep = targets != IGNORE_INDEX
    z = logits.double()
    labels = torch.nn.functional.one_hot(targets.clamp_min(0), V).double()
    p = torch.sigmoid(z)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(z, labels, reduction="none")
    pt = labels * p + (1 - labels) * (1 - p)
    alpha_t = alpha * labels + (1 - alpha) * (1 - labels)
    poly = alpha_t * (1 - pt) ** gamma * bce + epsilon * (1 - pt) ** (gamma + 1)
    expected = poly.sum(dim=1)
    per_token = losses.sigmoid_polyfocal_loss(logits, targets, epsilon, gamma, alpha, reduction="none")
    torch.testing.assert_close(per_token.double(), torch.where(keep, expected, 0.0), rtol=2e-5, atol=1e-5)
    spec = parse_loss_spec(f"sigmoid-polyfocal:{epsilon}:{gamma}:{alpha}")
    assert float(losses.compute_loss(spec, logits, targets)) == pytest.approx(reference_mean(expected, keep), rel=2e-5)
    # Summed over the vocabulary: with ε = 1 the negatives' poly term alone is Σ_v σ(z_v)^(γ+1) ≫ CE-scale.
    if epsilon == 1.0:
        assert float(expected[keep].mean()) > 1.0


@pytest.mark.parametrize("spec", ["ce", "focal:2", "polyfocal:1:2", "flsd53", "sigmoid-polyfocal:1:2:0.25"])
def test_bf16_logits_are_computed_in_float32(batch, spec):
    logits, targets = batch
    low = logits.to(torch.bfloat16)
    parsed = parse_loss_spec(spec)
    value = losses.compute_loss(parsed, low, targets)
    assert value.dtype == torch.float32
    # Same as the float32 computation on the bf16-rounded logits, to float32 precision...
    assert float(value) == pytest.approx(float(losses.compute_loss(parsed, low.float(), targets)), rel=1e-6)
    # ...whereas a bf16 log-softmax is visibly off.
    if spec == "ce":
        in_bf16 = torch.nn.functional.cross_entropy(low, targets).float()
        assert abs(float(in_bf16) - float(value)) > 1e-4 * float(value)
    # Gradients flow back to the bf16 logits in their dtype.
    leaf = low.clone().requires_grad_(True)
    losses.compute_loss(parsed, leaf, targets).backward()
    assert leaf.grad.dtype == torch.bfloat16 and bool(torch.isfinite(leaf.grad.float()).all())


def test_chunked_rows_give_the_same_values_and_gradients(batch, monkeypatch):
    logits, targets = batch
    for spec in ["focal:2", "sigmoid-polyfocal:1:2:0.25"]:
        parsed = parse_loss_spec(spec)
        whole_leaf = logits.clone().requires_grad_(True)
        whole = losses.compute_loss(parsed, whole_leaf, targets)
        whole.backward()
        with monkeypatch.context() as patch:
            patch.setattr(losses, "CHUNK_ELEMENTS", V * 5)  # 13 chunks of 5 rows
            chunk_leaf = logits.clone().requires_grad_(True)
            chunked = losses.compute_loss(parsed, chunk_leaf, targets)
            chunked.backward()
        assert float(chunked.detach()) == pytest.approx(float(whole.detach()), rel=1e-6)
        torch.testing.assert_close(chunk_leaf.grad, whole_leaf.grad, rtol=1e-5, atol=1e-7)


def test_loss_and_ce_reports_plain_cross_entropy(batch):
    logits, targets = batch
    loss, ce = losses.loss_and_ce(parse_loss_spec("focal:2"), logits, targets)
    assert float(ce) == pytest.approx(float(losses.cross_entropy(logits, targets)), rel=1e-7)
    assert float(loss) < float(ce) and not ce.requires_grad


# --- spec parsing -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("ce", LossSpec("ce")),
    ("focal:2", LossSpec("focal", gamma=2.0)),
    (" Focal:0.5 ", LossSpec("focal", gamma=0.5)),
    ("poly1:-1", LossSpec("poly1", epsilon=-1.0)),
    ("polyfocal:1:2", LossSpec("polyfocal", epsilon=1.0, gamma=2.0)),
    ("focal-schedule:0->2", LossSpec("focal-schedule", gamma=0.0, gamma_end=2.0)),
    ("flsd53", LossSpec("flsd53")),
    ("sigmoid-polyfocal:1:2:0.25", LossSpec("sigmoid-polyfocal", epsilon=1.0, gamma=2.0, alpha=0.25)),
])
def test_parse_loss_spec(text, expected):
    parsed = parse_loss_spec(text)
    assert parsed == expected
    assert parse_loss_spec(parsed.text) == parsed  # the canonical text round-trips


def test_spec_text_and_slug():
    assert parse_loss_spec("focal:2.0").text == "focal:2"
    assert parse_loss_spec("focal-schedule:0->2").slug == "focal-schedule-0-to-2"
    assert parse_loss_spec("sigmoid-polyfocal:1:2:0.25").slug == "sigmoid-polyfocal-1-2-0.25"


@pytest.mark.parametrize(("text", "message"), [
    ("focal:-1", "γ (gamma) must be ≥ 0"),
    ("polyfocal:x", "needs 2 parameters"),
    ("polyfocal:x:2", "ε (epsilon) 'x' is not a number"),
    ("focal:abc", "γ (gamma) 'abc' is not a number"),
    ("nope", "unknown loss 'nope'; expected one of: ce, focal:γ"),
    ("focal", "focal needs 1 parameter (γ (gamma)), got 0; write focal:γ"),
    ("focal:1:2:3", "focal needs 1 parameter (γ (gamma)), got 3"),
    ("ce:1", "ce takes no parameters"),
    ("poly1:-2", "ε (epsilon) must be between -1 and 100"),
    ("sigmoid-polyfocal:1:2:1.5", "α (alpha) must be between 0 and 1"),
    ("focal-schedule:0-2", "needs 2 parameters"),
    ("focal:nan", "must be a finite number"),
    ("", "empty loss spec"),
])
def test_bad_specs_raise_clear_errors(text, message):
    with pytest.raises(ValueError) as error:
        parse_loss_spec(text)
    assert message in str(error.value)


def test_polyfocal_x_message_names_the_form():
    with pytest.raises(ValueError, match=r"write polyfocal:ε:γ"):
        parse_loss_spec("polyfocal:x")
    assert math.isclose(parse_loss_spec("polyfocal:1e-1:2").epsilon, 0.1)
