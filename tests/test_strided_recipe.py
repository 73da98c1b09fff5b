"""`strided` equals a direct implementation of the Hugging Face "perplexity of fixed-length models"
recipe (https://huggingface.co/docs/transformers/perplexity) on [BOS] + document: the same tokens
scored once each, from the same windows, with the same log-probabilities.

The recipe weights each window's mean loss by `valid labels − 1` ("internal label shift"), which
is exact for its first window only; the reference below sums the per-token log-probabilities of the
labels that are actually predicted, so totals compare exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.schemas.run import RunOptions
from tests.support.models import TRAINING_TEXT
from workers.models import load_safetensors_dir
from workers.scoring.scorer import Scorer

MAX_LENGTH = 16
TEXTS = [TRAINING_TEXT[:400], "Fair is foul, and foul is fair."]


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def loaded(request):
    directory = request.getfixturevalue(f"tiny_{request.param}_dir")
    return load_safetensors_dir(directory, device=torch.device("cpu"), dtype=torch.float32)


def hf_recipe(model, tokens: list[int], bos: int, max_length: int, stride: int):
    """The recipe's loop, returning per-token log p (NaN where never scored), each window's summed
    NLL from the model's own `labels=` loss, and how many windows there were."""
    encodings = torch.tensor([[bos] + tokens])
    seq_len = encodings.size(1)
    logprob = np.full(len(tokens), np.nan)
    window_nll = []
    prev_end_loc = 0
    for begin_loc in range(0, seq_len, stride):
        end_loc = min(begin_loc + max_length, seq_len)
        trg_len = end_loc - prev_end_loc  # may be different from stride on last loop
        input_ids = encodings[:, begin_loc:end_loc]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            outputs = model(input_ids, labels=target_ids)
        n_predicted = int((target_ids[:, 1:] != -100).sum())
        window_nll.append(outputs.loss.item() * n_predicted)
        log_probs = torch.log_softmax(outputs.logits[0, :-1].double(), dim=-1)
        labels = target_ids[0, 1:]
        for position in torch.nonzero(labels != -100).flatten().tolist():
            token_index = begin_loc + position  # sequence index begin + position + 1, minus the BOS
            assert np.isnan(logprob[token_index]), "a token was scored twice"
            logprob[token_index] = log_probs[position, labels[position]].item()
        prev_end_loc = end_loc
        if end_loc == seq_len:
            break
    return logprob, window_nll


@pytest.mark.parametrize("stride", [3, 8, 15])
@pytest.mark.parametrize("pack", [False, True], ids=["buckets", "packed"])
def test_strided_equals_hf_recipe(loaded, stride, pack):
    options = RunOptions(window="strided", max_length=MAX_LENGTH, stride=stride)
    scorer = Scorer(loaded, options, max_batch_tokens=64, pack=pack)
    results = scorer.score(list(enumerate(TEXTS, start=1)))
    for result in results:
        tokens = result.arrays["token_id"].tolist()
        reference, window_nll = hf_recipe(loaded.model, tokens, loaded.prefix_token_id, MAX_LENGTH, stride)
        assert not np.isnan(reference).any(), "the recipe scores every token"
        np.testing.assert_allclose(result.arrays["logprob"], reference, rtol=1e-5, atol=1e-5)
        assert -result.arrays["logprob"].astype(np.float64).sum() == pytest.approx(sum(window_nll), rel=1e-5)
        assert len(scorer.spans(len(tokens))) == len(window_nll)
        # Context: the first window's tokens see their whole prefix; later ones at least max_length − stride.
        context = result.arrays["context_len"]
        np.testing.assert_array_equal(context[: MAX_LENGTH - 1], np.arange(1, min(len(tokens), MAX_LENGTH - 1) + 1))
        assert (context[MAX_LENGTH - 1 :] >= MAX_LENGTH - stride).all() and context.max() <= MAX_LENGTH - 1
