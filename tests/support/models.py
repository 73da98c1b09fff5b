"""Tiny random-weight causal LMs saved as safetensors directories, with a small byte-level BPE
tokenizer trained on a fixed text: real transformers models, built offline in a second.

The fixtures reach every test through conftest.py; call `build_tiny_model` directly for other shapes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TRAINING_TEXT = (
    "When shall we three meet again\nIn thunder, lightning, or in rain?\n"
    "When the hurlyburly's done,\nWhen the battle's lost and won.\n"
    "Fair is foul, and foul is fair:\nHover through the fog and filthy air.\n"
    "So foul and fair a day I have not seen. To be, or not to be, that is the question.\n"
) * 4


def build_tokenizer(directory: Path, vocab_size: int = 320):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tokenizer.train_from_iterator([TRAINING_TEXT], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(directory)
    return fast


def build_tiny_model(directory: Path, architecture: str = "llama", *, max_positions: int = 256, seed: int = 0) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(directory)
    vocab = len(tokenizer)
    if architecture == "llama":
        config = LlamaConfig(
            vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=max_positions, bos_token_id=0, eos_token_id=1,
            tie_word_embeddings=False,
        )
    elif architecture == "gpt2":
        config = GPT2Config(
            vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=max_positions, bos_token_id=0, eos_token_id=1,
        )
    else:
        raise ValueError(architecture)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    # Larger-than-default weights give peaked, varied predictions (a random init at std 0.02 is
    # nearly uniform, which would make every token equally hard).
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.5)
    model.save_pretrained(directory, safe_serialization=True)
    return directory


def build_series_folder(directory: Path, steps: list[int]) -> Path:
    """A training run's output folder: checkpoint-{step} for each step, tiny Llamas with the same
    tokenizer and different random weights (seed = the step's index), and a subfolder that is no
    checkpoint (notes/)."""
    for k, step in enumerate(steps):
        build_tiny_model(directory / f"checkpoint-{step}", "llama", seed=k)
    (directory / "notes").mkdir(exist_ok=True)
    (directory / "notes" / "README.txt").write_text("not a checkpoint\n")
    return directory


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    """A tiny random Llama (2 layers, hidden 32, BPE vocab 320) as a safetensors directory."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    """A tiny random GPT-2 (2 layers, hidden 32, BPE vocab 320) as a safetensors directory."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-gpt2"), "gpt2")
