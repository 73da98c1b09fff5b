"""Batching without waste: plans place every window exactly once within budget, packing leaves
almost no padding, and every layout (buckets, packed, vocabulary chunks, out-of-memory splits)
gives the same per-token arrays as scoring each document alone (1e-5 abs, float32)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.schemas.run import RunOptions
from tests.support.models import TRAINING_TEXT
from workers.models import load_safetensors_dir
from workers.scoring import accel
from workers.scoring.batching import plan_batches, split
from workers.scoring.metrics import stats_from_hidden
from workers.scoring.scorer import Scorer

TEXTS = [TRAINING_TEXT[:900], "Fair is foul.", "", "a", TRAINING_TEXT[100:400], TRAINING_TEXT[::-1][:200],
         "So foul and fair a day I have not seen."]


def lognormal_lengths(n: int, seed: int = 0) -> np.ndarray:
    """Document lengths like the GPU benchmark's: lognormal, clipped to 16–2048 tokens."""
    return np.clip(np.random.default_rng(seed).lognormal(6.0, 1.0, n), 16, 2048).astype(np.int64)


@pytest.mark.parametrize("pack", [False, True])
def test_plans_place_each_window_once_within_budget(pack):
    lengths = lognormal_lengths(3000)
    budget = 16384
    batches = plan_batches(lengths, budget, pack=pack)
    placed = np.concatenate([b.items for b in batches])
    assert sorted(placed.tolist()) == list(range(len(lengths)))
    for batch in batches:
        assert batch.rows * batch.width <= max(budget, batch.width)
        ends = batch.col + lengths[batch.items]
        assert (ends <= batch.width).all() and (batch.row < batch.rows).all()
        # No two windows share a cell.
        cells = np.zeros((batch.rows, batch.width), np.int64)
        for row, col, end in zip(batch.row, batch.col, ends):
            cells[row, col:end] += 1
        assert cells.max() == 1
    real = lengths.sum()
    padded = sum(b.padded_tokens for b in batches)
    # Sorted buckets already waste little on a pool of 3000 documents; packing nearly nothing.
    assert 1 - real / padded < (0.005 if pack else 0.05)


def test_buckets_keep_short_windows_out_of_long_batches():
    batches = plan_batches(np.array([1000, 950, 120, 100, 30]), 4096, pack=False)
    assert [b.items.tolist() for b in batches] == [[0, 1], [2], [3], [4]]
    assert sum(b.padded_tokens for b in batches) == 1000 * 2 + 120 + 100 + 30


def test_out_of_memory_split_halves_rows():
    [batch] = plan_batches(np.array([10, 10, 9, 9, 9]), 100, pack=False)
    lower, upper = split(batch)
    assert (lower.rows, upper.rows) == (2, 3)
    assert sorted(lower.items.tolist() + upper.items.tolist()) == list(range(5))
    assert (upper.row < 3).all() and split(lower)[0].rows == 1 and len(split(split(lower)[0])) == 1


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def loaded(request):
    directory = request.getfixturevalue(f"tiny_{request.param}_dir")
    return load_safetensors_dir(directory, device=torch.device("cpu"), dtype=torch.float32)


def assert_same_as_alone(loaded, options, scored):
    documents = list(enumerate(TEXTS, start=1))
    assert [d.document_id for d in scored] == [1, 2, 3, 4, 5, 6, 7]
    for document, together in zip(documents, scored):
        [alone] = Scorer(loaded, options, max_batch_tokens=options.max_length).score([document])
        for name, values in alone.arrays.items():
            if values.dtype.kind == "f":
                np.testing.assert_allclose(together.arrays[name], values, atol=1e-5, rtol=0, err_msg=name)
            else:
                np.testing.assert_array_equal(together.arrays[name], values, err_msg=name)


@pytest.mark.parametrize("window", ["rolling", "strided"])
def test_packed_rows_equal_one_document_at_a_time(loaded, window):
    options = RunOptions(window=window, max_length=24, stride=8 if window == "strided" else None)
    scorer = Scorer(loaded, options, max_batch_tokens=96, pack=True)
    scored = scorer.score(list(enumerate(TEXTS, start=1)))
    assert scorer.counters.padding_fraction < 0.05
    assert_same_as_alone(loaded, options, scored)


def test_out_of_memory_batches_split_and_retry(loaded, monkeypatch):
    options = RunOptions(max_length=24)
    scorer = Scorer(loaded, options, max_batch_tokens=96)
    decode = scorer.decode

    def small_batches_only(input_ids, position_ids):
        if input_ids.shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return decode(input_ids, position_ids)

    monkeypatch.setattr(scorer, "decode", small_batches_only)
    scored = scorer.score(list(enumerate(TEXTS, start=1)))
    assert scorer.counters.oom_splits >= 3 and scorer.max_batch_tokens < 96
    assert_same_as_alone(loaded, options, scored)
    # Failed launches gave their staging buffers back; the halves of a split batch are in flight
    # together, so there are at most as many slots as rows in a batch, and all are free again.
    staging = scorer.staging
    assert 1 <= staging.allocated <= 96 // 24 and staging.free == staging.allocated


def test_vocabulary_chunks_equal_one_pass():
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 700, bias=True)
    hidden, targets = torch.randn(37, 16) * 3, torch.randint(0, 700, (37,))
    targets[:5] = (hidden[:5] @ head.weight.T + head.bias).argmax(-1)  # rank 0, top-1 = target
    linear = accel.LinearRouting().linear_f32
    whole = stats_from_hidden(hidden, head, targets, top_k=5, linear=linear)
    for chunk in (700, 128, 99, 3):  # 99 does not divide 700; 3 is smaller than k
        chunked = stats_from_hidden(hidden, head, targets, top_k=5, linear=linear, budget=10 * chunk, vocab_chunk=chunk)
        for name in ("logprob", "entropy", "sum_p2", "top_logprobs"):
            torch.testing.assert_close(getattr(chunked, name), getattr(whole, name), rtol=1e-5, atol=1e-5)
        assert torch.equal(chunked.rank, whole.rank) and torch.equal(chunked.top_ids, whole.top_ids)
    assert (whole.rank[:5] == 0).all()


def test_failed_compile_falls_back_to_eager(monkeypatch):
    def broken_compile(fn, **_):
        def compiled(*args, **kwargs):
            raise RuntimeError("inductor: no C++ compiler (simulated)")
        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    double = accel.Compiled(lambda x: 2 * x, enabled=True)
    assert double(torch.tensor(3.0)).item() == 6.0 and "no C++ compiler" in double.error
    assert double(torch.tensor(4.0)).item() == 8.0 and double.fn is double.eager


def test_failed_regional_compile_restores_the_blocks(monkeypatch):
    block = torch.nn.Linear(3, 3)
    reference = block(torch.ones(3))

    def broken(*args, **kwargs):
        raise RuntimeError("dynamo: unsupported (simulated)")

    monkeypatch.setattr(block, "_compiled_call_impl", broken, raising=False)
    monkeypatch.setattr(block, "compile", lambda **_: None)  # keep the broken implementation in place
    run = accel.Compiled(lambda x: block(x), enabled=True, blocks=[block])
    torch.testing.assert_close(run(torch.ones(3)), reference)
    assert "unsupported" in run.error and block._compiled_call_impl is None and not run.active


def test_onednn_linears_agree_with_f_linear(monkeypatch):
    from transformers import LlamaConfig, LlamaForCausalLM

    routing = accel.LinearRouting()
    if not routing.onednn_usable(torch.float32):
        pytest.skip("this torch build has no oneDNN linear")
    monkeypatch.setattr(routing, "onednn_faster", lambda weight: True)  # whichever is faster on this CPU
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    model = LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 512, (2, 40))
    head_weight = model.lm_head.weight.data_ptr()
    with torch.inference_mode():
        reference = model(input_ids=ids).logits
        # q, o, gate, up, down in each layer and the head; k and v (256 × 128) stay below the size threshold.
        assert routing.route_linears(model) == 2 * 5 + 1
        routed = model(input_ids=ids).logits
    torch.testing.assert_close(routed, reference, rtol=1e-4, atol=1e-4)
    assert model.lm_head.weight.data_ptr() == head_weight  # weights are used in place, not copied


def test_fp32_linears_stay_on_f_linear_where_onednn_is_not_faster(monkeypatch):
    from transformers import LlamaConfig, LlamaForCausalLM

    routing = accel.LinearRouting()
    monkeypatch.setattr(routing, "onednn_faster", lambda weight: False)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=1,
                                         num_attention_heads=4, num_key_value_heads=2)).eval()
    assert routing.route_linears(model) == 0
    assert all("forward" not in m.__dict__ for m in model.modules())
    # Half precision routes regardless: row tiles bound the kernel shapes oneDNN keeps.
    if routing.onednn_usable(torch.bfloat16):
        assert routing.route_linears(model.to(torch.bfloat16)) == 1 + 5 + 2  # head, q o gate up down, k v
        accel.plain_linears(model)  # as for a compiled model: back to F.linear
        assert all("forward" not in m.__dict__ for m in model.modules())
