"""Scoring is exact: stored log-probabilities equal the model's own `labels=` loss, document by
document and window by window, for tiny random Llama and GPT-2 models in float32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.schemas.run import RunOptions
from app.services.scores import token_texts
from tests.support.models import TRAINING_TEXT
from workers.models import load_safetensors_dir
from workers.scoring.scorer import Scorer

SHORT = "When shall we three meet again, in thunder, lightning, or in rain?"
LONG = TRAINING_TEXT[:900] + "\nAnd some words the tokenizer never saw: quixotic zephyrs, 42 é ü 😀."


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def loaded(request):
    directory = request.getfixturevalue(f"tiny_{request.param}_dir")
    return load_safetensors_dir(directory, device=torch.device("cpu"), dtype=torch.float32)


def labels_loss_sum(model, input_ids: list[int], n_scored: int, last_target: int) -> float:
    """−Σ log p of a window's scored targets via the model's own loss: labels = inputs shifted."""
    sequence = torch.tensor([input_ids + [last_target]])
    labels = sequence.clone()
    labels[0, : len(input_ids) + 1 - n_scored] = -100
    with torch.no_grad():
        loss = model(input_ids=sequence, labels=labels).loss
    return loss.item() * n_scored


def test_short_document_sum_equals_labels_loss(loaded):
    [scores] = Scorer(loaded, RunOptions(max_length=128), max_batch_tokens=4096).score([(1, SHORT)])
    tokens = scores.arrays["token_id"].tolist()
    assert len(tokens) > 10
    ids = torch.tensor([[loaded.prefix_token_id] + tokens])
    with torch.no_grad():
        loss = loaded.model(input_ids=ids, labels=ids).loss.item()
    total = float(scores.arrays["logprob"].astype(np.float64).sum())
    assert total == pytest.approx(-loss * len(tokens), rel=1e-5)
    np.testing.assert_array_equal(scores.arrays["context_len"], np.arange(1, len(tokens) + 1))


def test_long_document_rolling_windows_each_equal_labels_loss(loaded):
    scorer = Scorer(loaded, RunOptions(max_length=16), max_batch_tokens=64)
    [scores] = scorer.score([(1, LONG)])
    tokens = scores.arrays["token_id"].tolist()
    windows = scorer.windows(tokens)
    assert len(windows) > 5
    logprob = scores.arrays["logprob"].astype(np.float64)
    for window in windows:
        span = slice(window.doc_offset, window.doc_offset + window.n_scored)
        expected = labels_loss_sum(loaded.model, window.input_ids, window.n_scored, tokens[span.stop - 1])
        assert -logprob[span].sum() == pytest.approx(expected, rel=1e-4)
    # lm-eval's rolling windows: a later window's first target sees one token of context.
    assert scores.arrays["context_len"][16] == 1 and scores.arrays["context_len"].max() == 16


def test_strided_scores_every_token_with_more_context(loaded):
    rolling = Scorer(loaded, RunOptions(max_length=16), max_batch_tokens=64).score([(1, LONG)])[0]
    strided = Scorer(loaded, RunOptions(window="strided", max_length=16, stride=4), max_batch_tokens=64).score([(1, LONG)])[0]
    np.testing.assert_array_equal(rolling.arrays["token_id"], strided.arrays["token_id"])
    assert (strided.arrays["context_len"][15:] >= 12).all()
    # The first window is the same under both policies.
    np.testing.assert_allclose(strided.arrays["logprob"][:15], rolling.arrays["logprob"][:15], atol=1e-5)


def test_batched_equals_one_document_at_a_time(loaded):
    texts = [SHORT, LONG, "Fair is foul.", "", "a", SHORT[::-1], LONG[:300]]
    documents = list(enumerate(texts, start=1))
    options = RunOptions(max_length=32)
    batched = Scorer(loaded, options, max_batch_tokens=4096).score(documents)
    assert [d.document_id for d in batched] == [1, 2, 3, 4, 5, 6, 7]
    for document in documents:
        [alone] = Scorer(loaded, options, max_batch_tokens=32).score([document])
        together = batched[document[0] - 1]
        for name, values in alone.arrays.items():
            if values.dtype.kind == "f":
                np.testing.assert_allclose(together.arrays[name], values, atol=1e-5, err_msg=name)
            else:
                np.testing.assert_array_equal(together.arrays[name], values, err_msg=name)


def test_empty_and_single_token_documents(loaded):
    empty, one = Scorer(loaded, RunOptions(), max_batch_tokens=4096).score([(1, ""), (2, "a")])
    assert empty.n_tokens == 0 and empty.arrays["top_ids"].shape == (0, 5)
    assert one.n_tokens == 1 and one.arrays["context_len"].tolist() == [1]
    assert one.arrays["logprob"][0] < 0 and 0 <= one.arrays["rank"][0]


def test_offsets_tile_the_text_and_fields_are_consistent(loaded):
    [scores] = Scorer(loaded, RunOptions(top_k=7), max_batch_tokens=4096).score([(1, LONG)])
    a = scores.arrays
    # Byte-level BPE gives every piece of "😀" the whole character's span; displayed once.
    assert "".join(token_texts(LONG, a["char_start"], a["char_end"])) == LONG
    assert "".join(LONG[s:e] for s, e in zip(a["char_start"], a["char_end"])) != LONG
    assert a["top_ids"].shape == (scores.n_tokens, 7)
    # rank 0 ⇔ the true token is the top-1 alternative, and then log p equals the top-1 log-prob.
    top1 = a["rank"] == 0
    np.testing.assert_array_equal(a["top_ids"][top1, 0], a["token_id"][top1])
    np.testing.assert_allclose(a["top_logprobs"][top1, 0], a["logprob"][top1], atol=1e-6)
    assert (np.diff(a["top_logprobs"], axis=1) <= 1e-7).all()
    p = np.exp(a["logprob"])
    assert (a["sum_p2"] >= p * p - 1e-6).all() and (a["sum_p2"] <= 1 + 1e-6).all()
    assert (a["entropy"] >= -1e-6).all() and (a["entropy"] <= np.log(len(loaded.tokenizer)) + 1e-4).all()


@pytest.mark.parametrize("broken", ["meta", "zeros"])
def test_a_tied_head_transformers_left_untied_is_tied_on_load(tiny_gpt2_dir, monkeypatch, broken):
    """The tiny GPT-2 ties its head to the embedding and saves no head of its own. transformers was
    seen to load such a head as a meta tensor or as zeros in a long-running process; the loader ties
    it back rather than scoring with a uniform model."""
    from transformers import AutoModelForCausalLM

    from_pretrained = AutoModelForCausalLM.from_pretrained

    def untied(*args, **kwargs):
        model = from_pretrained(*args, **kwargs)
        shape = model.lm_head.weight.shape
        model.lm_head.weight = torch.nn.Parameter(torch.empty(shape, device="meta") if broken == "meta" else torch.zeros(shape))
        return model

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", untied)
    loaded = load_safetensors_dir(tiny_gpt2_dir, device=torch.device("cpu"), dtype=torch.float32)
    assert loaded.model.lm_head.weight is loaded.model.get_input_embeddings().weight


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_non_finite_predictions_fail_with_a_clear_error(tiny_llama_dir, dtype):
    """Non-finite log-probabilities never reach the database: an fp16 overflow names its cure, a
    NaN weight (a corrupt checkpoint) says what it is."""
    from workers.context import PermanentError

    loaded = load_safetensors_dir(tiny_llama_dir, device=torch.device("cpu"), dtype=dtype)
    with torch.no_grad():
        if dtype == torch.float16:
            loaded.model.model.norm.weight.mul_(1e6)  # final hidden states beyond fp16's 65504
        else:
            loaded.model.model.norm.weight[0] = float("nan")
    name = "float16" if dtype == torch.float16 else "float32"
    with pytest.raises(PermanentError, match="bfloat16 or float32" if dtype == torch.float16 else "NaN/inf"):
        Scorer(loaded, RunOptions(dtype=name), max_batch_tokens=256).score([(1, SHORT)])


def test_model_cache_holds_one_model_and_reuses_its_scorer(tiny_llama_dir, tmp_path):
    from app.core.config import Settings
    from workers.models import DTYPES
    from workers.scoring.model_cache import CheckpointSource, ModelCache

    loads = []

    def load(source: CheckpointSource, dtype: str):
        loads.append(dtype)
        return load_safetensors_dir(tiny_llama_dir, device=torch.device("cpu"), dtype=DTYPES[dtype])

    models = ModelCache(Settings(_env_file=None, data_dir=tmp_path), device="cpu", load=load)
    source = CheckpointSource(str(tiny_llama_dir), "safetensors", "sha-a")
    first = models.get_scorer(source, RunOptions(max_length=16))
    assert models.get_scorer(source, RunOptions(max_length=16)) is first  # the next shard: nothing rebuilt
    longer = models.get_scorer(source, RunOptions(max_length=32))
    assert longer is not first and longer.loaded is first.loaded and loads == ["float32"]
    bf16 = models.get_scorer(source, RunOptions(max_length=16, dtype="bfloat16"))
    assert bf16.loaded.dtype == torch.bfloat16 and loads == ["float32", "bfloat16"]
    # One model at a time: the float32 one was dropped and loads again; another checkpoint does too.
    again = models.get_scorer(source, RunOptions(max_length=16))
    assert again.loaded is not first.loaded and loads == ["float32", "bfloat16", "float32"]
    models.get_scorer(CheckpointSource(str(tiny_llama_dir), "safetensors", "sha-b"), RunOptions(max_length=16))
    assert len(loads) == 4
    # Every scorer shares the worker's linear-routing measurements.
    assert first.routing is bf16.routing is again.routing is models.routing
