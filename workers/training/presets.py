"""Model presets as transformers configs: GPT-2 or Llama, randomly initialised from a seed.

The numbers live torch-free in app.training_specs.PRESETS (the API lists them); this module turns
one into a `GPT2Config` / `LlamaConfig` and builds the model.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, PretrainedConfig, PreTrainedModel

from app.training_specs import ARCH_GPT2, ARCH_LLAMA, Preset
from workers.models import MODEL_BUILD_LOCK

# RoPE base of Llama 2 / SmolLM2-135M; our contexts are ≤ 2048, where 10k is the usual choice.
ROPE_THETA = 10_000.0
# GPT-2 and nanoGPT initialise every weight from N(0, 0.02); Llama uses the same std.
INIT_STD = 0.02


def model_config(preset: Preset, *, vocab_size: int, bos_token_id: int, eos_token_id: int) -> PretrainedConfig:
    common = {"vocab_size": vocab_size, "bos_token_id": bos_token_id, "eos_token_id": eos_token_id,
              "tie_word_embeddings": True, "use_cache": False}
    if preset.arch == ARCH_GPT2:
        return GPT2Config(
            n_positions=preset.context, n_embd=preset.d_model, n_layer=preset.n_layer, n_head=preset.n_head,
            # No dropout: bit-reproducible runs, and short pretraining runs do not overfit.
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, initializer_range=INIT_STD,
            # GPT-2's tanh-approximated GELU as PyTorch's one fused kernel instead of "gelu_new"'s
            # seven elementwise ops (same function to float rounding): +9% tokens/s for `tiny` on
            # two CPU cores, and less memory traffic in eager mode on a GPU.
            activation_function="gelu_pytorch_tanh", **common,
        )
    if preset.arch == ARCH_LLAMA:
        return LlamaConfig(
            hidden_size=preset.d_model, intermediate_size=preset.d_ff, num_hidden_layers=preset.n_layer,
            num_attention_heads=preset.n_head, num_key_value_heads=preset.n_kv_head,
            max_position_embeddings=preset.context, rope_theta=ROPE_THETA, attention_dropout=0.0,
            initializer_range=INIT_STD, **common,
        )
    raise ValueError(f"preset {preset.name!r}: unknown architecture {preset.arch!r}")


def build_model(config: PretrainedConfig, *, seed: int) -> PreTrainedModel:
    """A randomly initialised float32 model; the same seed gives the same weights."""
    with MODEL_BUILD_LOCK:  # the seed is process-wide: one thread's model, one thread's draws
        torch.manual_seed(seed)
        return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def count_parameters(model: torch.nn.Module) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def context_length(config: PretrainedConfig) -> int:
    return int(getattr(config, "n_positions", None) or config.max_position_embeddings)
