"""Calibration of the whole distribution (nucleus coverage, entropy vs loss, temperature scaling), the
worker's per-token statistics behind them, collapse flags, and same seed ⇒ same numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from app.analytics import distribution
from app.analytics.dynamics import collapse_flags, first_spike, heldout_collapse
from app.training_specs import parse_loss_spec
from workers.training.evaluation import (
    HeldoutEvaluator, continue_prompt, nucleus_sample, one_cpu_thread, token_statistics,
)


def synthetic(n: int, v: int, seed: int, temperature: float = 1.0):
    """Logits, the true distributions softmax(logits / temperature), and targets drawn from them."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, v)) * 2.0
    z = logits / temperature
    probs = np.exp(z - z.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    targets = np.array([rng.choice(v, p=row) for row in probs])
    return logits, probs, targets


def direct_inside_nucleus(probs: np.ndarray, target: int, level: float) -> bool:
    """Build the smallest top-p set explicitly: sort, add tokens until the mass reaches p."""
    order = np.argsort(-probs, kind="stable")
    chosen, mass = [], 0.0
    for token in order:
        if mass >= level:
            break
        chosen.append(token)
        mass += probs[token]
    return target in chosen


def test_nucleus_coverage_matches_the_explicit_top_p_set():
    _, probs, targets = synthetic(300, 40, seed=1)
    above = distribution.mass_above(probs, targets)
    coverage = distribution.nucleus_coverage(above)
    for level in distribution.NUCLEUS_LEVELS:
        expected = np.mean([direct_inside_nucleus(p, t, level) for p, t in zip(probs, targets)])
        assert coverage[f"{level:g}"] == pytest.approx(expected, abs=1e-12)
    assert distribution.nucleus_coverage(np.array([]))["0.9"] is None


def test_a_calibrated_model_covers_p_and_an_overconfident_one_less():
    n = 4000
    logits, probs, targets = synthetic(n, 400, seed=2)
    coverage = distribution.nucleus_coverage(distribution.mass_above(probs, targets))
    sharpened = np.exp(2.0 * logits - (2.0 * logits).max(axis=1, keepdims=True))
    sharpened /= sharpened.sum(axis=1, keepdims=True)
    overconfident = distribution.nucleus_coverage(distribution.mass_above(sharpened, targets))
    for level in distribution.NUCLEUS_LEVELS:
        sigma = math.sqrt(level * (1 - level) / n)
        # The top-p set overshoots p by less than one token's probability: about 1/400 here.
        assert abs(coverage[f"{level:g}"] - level) < 4 * sigma + 0.005, level
        assert overconfident[f"{level:g}"] < level - 4 * sigma, level


def test_entropy_equals_loss_in_expectation_for_a_calibrated_model_and_bins_by_hand():
    _, probs, targets = synthetic(4000, 50, seed=3)
    entropy = -(probs * np.log(probs)).sum(axis=1)
    loss = -np.log(probs[np.arange(len(targets)), targets])
    result = distribution.entropy_vs_loss(entropy, loss)
    assert result["mean_entropy"] == pytest.approx(float(entropy.mean()), rel=1e-12)
    assert abs(result["mean_loss"] - result["mean_entropy"]) < 4 * loss.std() / math.sqrt(len(loss))
    by_hand = distribution.entropy_vs_loss(np.array([3.0, 1.0, 2.0, 4.0]), np.array([1.0, 2.0, 3.0, 5.0]), n_bins=2)
    assert by_hand["bins"] == [{"tokens": 2, "entropy": 1.5, "loss": 2.5}, {"tokens": 2, "entropy": 3.5, "loss": 3.0}]


@pytest.mark.parametrize("true_temperature", [0.7, 1.0, 1.6])
def test_temperature_scaling_recovers_a_known_temperature(true_temperature):
    logits, _, targets = synthetic(3000, 30, seed=4, temperature=true_temperature)
    reference = float(torch.nn.functional.cross_entropy(torch.from_numpy(logits) / 1.3, torch.from_numpy(targets)))
    assert distribution.temperature_nll(logits, targets, 1.3) == pytest.approx(reference, rel=1e-12)
    found, nll = distribution.fit_temperature(lambda t: distribution.temperature_nll(logits, targets, t))
    assert found == pytest.approx(true_temperature, rel=0.05)
    grid = [distribution.temperature_nll(logits, targets, t) for t in np.linspace(0.5, 2.5, 41)]
    assert nll <= min(grid) + 1e-9


def test_worker_token_statistics_match_float64():
    logits, _, targets = synthetic(200, 30, seed=5)
    stats = token_statistics(torch.from_numpy(logits).float(), torch.from_numpy(targets))
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    rows = np.arange(len(targets))
    expected = {
        "loss": -np.log(probs[rows, targets]), "entropy": -(probs * np.log(probs)).sum(axis=1),
        "confidence": probs.max(axis=1), "correct": (probs.argmax(axis=1) == targets).astype(float),
        "brier": ((probs - np.eye(30)[targets]) ** 2).sum(axis=1), "above": distribution.mass_above(probs, targets),
    }
    for name, want in expected.items():
        np.testing.assert_allclose(stats[name].double().numpy(), want, rtol=2e-5, atol=2e-6, err_msg=name)


def test_nucleus_sampling_draws_only_inside_the_top_p_set():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    generator = torch.Generator().manual_seed(0)
    drawn = {int(nucleus_sample(logits, 0.8, generator)) for _ in range(200)}
    assert drawn == {0, 1}  # 0.5 + 0.3 reaches 0.8: tokens 2 and 3 are never drawn


def test_collapse_flags_by_hand():
    assert heldout_collapse([0, 10, 20, 30], [5.0, 3.0, 3.05, 3.2]) == 30  # 3.2 > best 3.0 + 0.1
    assert heldout_collapse([0, 10, 20], [5.0, 3.0, 3.1]) is None  # exactly +0.1 is not more than it
    steps = list(range(1, 31))
    # 10 values of history first (the first steps fall fast), then 7 > 2 × median 3.
    assert first_spike(steps, [9] + [3] * 19 + [7] + [3] * 9, factor=2.0) == 21
    assert first_spike(steps, [3] * 5 + [7] + [3] * 24, factor=2.0) is None  # too early to call
    assert first_spike(steps, [3] * 20 + [6] + [3] * 9, factor=2.0) is None  # exactly 2 × is not above it
    # Training CE: 1.3 × the median; gradient norm: 10 ×.
    flags = collapse_flags(checkpoint_steps=[0, 5], heldout=[None, 2.0], curve_steps=steps,
                           train_loss=[6.0] * 14 + [8.0] + [6.0] * 15, grad_norm=[1] * 12 + [9.0] + [1] * 12 + [10.5] + [1] * 4)
    assert flags == {"heldout_rise": None, "loss_spike": 15, "grad_spike": 26}


def test_same_seed_same_numbers_and_cached_sampling_equals_recomputing():
    from transformers import GPT2Config

    from workers.training.data import BatchSampler, TokenStream
    from workers.training.presets import build_model
    from workers.training.trainer import Trainer, TrainPlan

    config = GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=2, n_positions=128, bos_token_id=None,
                        eos_token_id=None)
    ids = (np.arange(3000) * 7 % 60).astype(np.int32)
    results = []
    for _ in range(2):
        model = build_model(config, seed=0)
        sampler = BatchSampler(TokenStream(ids=ids, n_documents=1), batch_size=2, seq_len=16, seed=0)
        trainer = Trainer(model, sampler, TrainPlan(steps=2, save_every=2, lr=1e-2, loss=parse_loss_spec("focal:2")),
                          torch.device("cpu"))
        losses = [trainer.train_step(i).loss for i in range(2)]
        windows = torch.from_numpy(ids[:16 * 17 + 1].astype(np.int64)).unfold(0, 17, 16)
        metrics = HeldoutEvaluator(windows, device=torch.device("cpu")).metrics(model)
        with torch.no_grad(), one_cpu_thread():
            sample = continue_prompt(model.eval(), torch.arange(5), torch.Generator().manual_seed(0), torch.device("cpu"))
        results.append((losses, metrics, sample))
    assert results[0] == results[1]
    assert results[0][1]["tokens"] == 17 * 16  # 17 windows of 16 targets
    generator, tokens, recomputed = torch.Generator().manual_seed(0), torch.arange(5), []
    with torch.no_grad(), one_cpu_thread():
        for _ in results[0][2]:
            token = nucleus_sample(model(input_ids=tokens[None]).logits[0, -1], 0.9, generator)
            recomputed.append(int(token))
            tokens = torch.cat([tokens, token[None]])
    assert recomputed == results[0][2]
