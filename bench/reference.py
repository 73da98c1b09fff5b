"""What the GPU benchmark runs and compares against: random-init models of real architectures with
a word-level tokenizer, lognormal-length documents of random words, and the two baselines — `naive`
(fp32, one document at a time) and `padded` (bf16, corpus order, padded batches) — both computing
log-probabilities only, the plain way: full logits, log_softmax, gather."""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from workers.models import LoadedModel


def word_tokenizer(vocab_size: int):
    """Token i ≥ 3 is the word "w<i>": random text of known length, offsets and all, tokenized in
    Rust. Special tokens get names that are no word's prefix (added tokens match inside words)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i for i in range(3, vocab_size)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def corpus(vocab_size: int, n_tokens: int, seed: int = 0) -> list[str]:
    generator = np.random.default_rng(seed)
    texts, total = [], 0
    while total < n_tokens:
        n = int(np.clip(generator.lognormal(6.0, 1.0), 16, 2048))
        ids = generator.integers(3, vocab_size, n)
        texts.append(" ".join(f"w{i}" for i in ids.tolist()))
        total += n
    return texts


def build(config_kwargs: dict, device: torch.device) -> tuple[LoadedModel, LoadedModel]:
    """The same random weights in fp32 (reference, baselines) and bf16 (the scored path)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(bos_token_id=1, eos_token_id=2, **config_kwargs)
    torch.manual_seed(0)
    with torch.device(device):
        fp32 = LlamaForCausalLM(config).eval()
    half = torch.bfloat16 if device.type == "cpu" or torch.cuda.is_bf16_supported() else torch.float16
    low = copy.deepcopy(fp32).to(half).eval()
    tokenizer = word_tokenizer(config.vocab_size)
    make = lambda model, dtype: LoadedModel(model, tokenizer, 1, config.max_position_embeddings, device, dtype)  # noqa: E731
    return make(fp32, torch.float32), make(low, half)


@torch.inference_mode()
def naive_total(loaded: LoadedModel, tokens: list[int]) -> float:
    """Σ log p of one document (≤ max_length tokens) the plain way: full logits, log_softmax, gather."""
    ids = torch.tensor([[loaded.prefix_token_id] + tokens[:-1]], device=loaded.device)
    logits = loaded.model(input_ids=ids).logits[0].float()
    targets = torch.tensor(tokens, device=loaded.device)
    return torch.log_softmax(logits, -1).gather(1, targets[:, None]).sum().item()


def naive(loaded: LoadedModel, token_lists: list[list[int]]) -> float:
    started = time.perf_counter()
    for tokens in token_lists:
        naive_total(loaded, tokens)
    return sum(map(len, token_lists)) / (time.perf_counter() - started)


@torch.inference_mode()
def padded(loaded: LoadedModel, token_lists: list[list[int]], batch_size: int = 32) -> float:
    started, n = time.perf_counter(), 0
    for first in range(0, len(token_lists), batch_size):
        batch = token_lists[first : first + batch_size]
        width = max(len(t) for t in batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        targets = torch.zeros((len(batch), width), dtype=torch.long)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = torch.tensor([loaded.prefix_token_id] + tokens[:-1])
            targets[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = 1
        ids, mask, targets = ids.to(loaded.device), mask.to(loaded.device), targets.to(loaded.device)
        logits = loaded.model(input_ids=ids, attention_mask=mask).logits
        logprob = torch.log_softmax(logits.float(), -1).gather(2, targets[..., None]).squeeze(2)
        (logprob * mask).sum(1).tolist()
        n += int(mask.sum())
    return n / (time.perf_counter() - started)


def sharpen(reference: LoadedModel, low: LoadedModel, logit_std: float = 3.0) -> None:
    """Scale the LM head so that logits spread like a trained model's (std ≈ 3 instead of ≈ 0.5 at
    init std 0.02): a near-uniform random model would pass any bf16 check."""
    head = reference.model.get_output_embeddings().weight
    with torch.no_grad():
        head.mul_(logit_std / (float(head.std()) * head.shape[1] ** 0.5))
        low.model.get_output_embeddings().weight.copy_(head.to(low.dtype))
