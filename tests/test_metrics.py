"""Per-token statistics against a direct float64 computation on random logits."""

import numpy as np
import pytest
import torch

from workers.scoring.accel import LinearRouting
from workers.scoring.metrics import stats_from_hidden, stats_from_logits


def reference(logits: np.ndarray, targets: np.ndarray, k: int) -> dict:
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    p = np.exp(logp)
    rows = np.arange(len(targets))
    target_logit = logits[rows, targets]
    order = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return {
        "logprob": logp[rows, targets],
        "entropy": -(p * logp).sum(axis=1),
        "sum_p2": (p * p).sum(axis=1),
        "rank": (logits > target_logit[:, None]).sum(axis=1),
        "top_ids": order,
        "top_logprobs": np.take_along_axis(logp, order, axis=1),
    }


@pytest.mark.parametrize("vocab,scale", [(50, 1.0), (1000, 4.0), (3000, 12.0)])
def test_stats_match_float64(vocab, scale):
    generator = np.random.default_rng(vocab)
    logits = (generator.standard_normal((64, vocab)) * scale).astype(np.float32)
    targets = generator.integers(0, vocab, size=64)
    # Make some targets the argmax, so that rank 0 and top-1 = target are covered.
    targets[:8] = logits[:8].argmax(axis=1)
    stats = stats_from_logits(torch.from_numpy(logits), torch.from_numpy(targets), top_k=5)
    ref = reference(logits, targets, 5)
    np.testing.assert_allclose(stats.logprob.numpy(), ref["logprob"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats.entropy.numpy(), ref["entropy"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stats.sum_p2.numpy(), ref["sum_p2"], rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(stats.rank.numpy(), ref["rank"])
    assert (stats.rank.numpy()[:8] == 0).all()
    np.testing.assert_array_equal(stats.top_ids.numpy(), ref["top_ids"])
    np.testing.assert_allclose(stats.top_logprobs.numpy(), ref["top_logprobs"], rtol=1e-5, atol=1e-5)
    assert stats.logprob.dtype == torch.float32


def test_rank_ties_favour_the_true_token():
    logits = torch.tensor([[1.0, 2.0, 2.0, 0.0]])
    assert stats_from_logits(logits, torch.tensor([2]), top_k=2).rank.item() == 0
    assert stats_from_logits(logits, torch.tensor([0]), top_k=2).rank.item() == 2


def test_bf16_logits_are_computed_in_float32():
    generator = np.random.default_rng(0)
    logits = torch.from_numpy(generator.standard_normal((16, 500)).astype(np.float32)).to(torch.bfloat16)
    targets = torch.from_numpy(generator.integers(0, 500, size=16))
    stats = stats_from_logits(logits, targets, top_k=3)
    ref = reference(logits.float().numpy(), targets.numpy(), 3)
    assert stats.logprob.dtype == torch.float32
    np.testing.assert_allclose(stats.logprob.numpy(), ref["logprob"], rtol=1e-5, atol=1e-5)


def test_row_chunks_equal_one_pass():
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 700, bias=False)
    hidden = torch.randn(37, 16)
    targets = torch.randint(0, 700, (37,))
    whole = stats_from_logits(head(hidden), targets, top_k=5)
    linear = LinearRouting().linear_f32
    chunked = stats_from_hidden(hidden, head, targets, top_k=5, linear=linear, budget=700 * 4)  # 4 rows per chunk
    for name in ("logprob", "entropy", "sum_p2", "top_logprobs"):
        torch.testing.assert_close(getattr(chunked, name), getattr(whole, name), rtol=1e-6, atol=1e-6)
    assert torch.equal(chunked.rank, whole.rank) and torch.equal(chunked.top_ids, whole.top_ids)
    empty = stats_from_hidden(hidden[:0], head, targets[:0], top_k=5, linear=linear)
    assert empty.logprob.shape == (0,) and empty.top_ids.shape == (0, 5)
