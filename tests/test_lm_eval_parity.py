"""`rolling` equals lm-evaluation-harness: per document, Σ log p from the scorer equals
`HFLM.loglikelihood_rolling` on the same model, tokenizer and max_length (float32), for documents
shorter and longer than max_length — in the default (bucket) layout and in the packed layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from app.schemas.run import RunOptions
from tests.support.models import TRAINING_TEXT
from workers.models import load_safetensors_dir
from workers.scoring.scorer import Scorer

# A small max_length forces many windows, including a short last one.
MAX_LENGTH = 16
DOCUMENTS = [
    "Fair is foul.",  # shorter than max_length
    "When shall we three meet again, in thunder, lightning, or in rain?",
    TRAINING_TEXT[:700],  # dozens of windows
    TRAINING_TEXT[333:1200] + " quixotic zephyrs, 42 é 😀",
    "a",
]


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def loaded(request):
    directory = request.getfixturevalue(f"tiny_{request.param}_dir")
    return load_safetensors_dir(directory, device=torch.device("cpu"), dtype=torch.float32)


@pytest.fixture(scope="module")
def lm_eval_totals(loaded) -> list[float]:
    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, max_length=MAX_LENGTH, batch_size=1, device="cpu")
    assert lm.prefix_token_id == loaded.prefix_token_id
    requests = [Instance(request_type="loglikelihood_rolling", doc={}, arguments=(text,), idx=i)
                for i, text in enumerate(DOCUMENTS)]
    return [float(total) for total in lm.loglikelihood_rolling(requests, disable_tqdm=True)]


@pytest.mark.parametrize("pack", [False, True], ids=["buckets", "packed"])
def test_rolling_totals_equal_lm_eval(loaded, lm_eval_totals, pack):
    scorer = Scorer(loaded, RunOptions(max_length=MAX_LENGTH), max_batch_tokens=64, pack=pack)
    results = scorer.score(list(enumerate(DOCUMENTS, start=1)))
    lengths = [r.n_tokens for r in results]
    assert min(lengths) < MAX_LENGTH and max(lengths) > 10 * MAX_LENGTH
    ours = [float(r.arrays["logprob"].astype(np.float64).sum()) for r in results]
    assert ours == pytest.approx(lm_eval_totals, rel=1e-4)
    assert all(total < 0 for total in ours)
