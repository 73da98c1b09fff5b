"""Per-token statistics of next-token predictions, always in float32.

Given hidden states (after the final norm) and the LM head, compute for each scored position:
log p of the true token, entropy, 0-based rank of the true token, top-k ids and log-probs, and
Σ_v p_v² (for the exact Brier score).

Memory stays bounded for any vocabulary: logits are made for a block of rows and a chunk of the
vocabulary at a time (at most `budget` float32 elements), and each chunk is folded into running
sums the way an online softmax does — with z' = z − max, S = Σ e^z', A = Σ e^z'·z', Q = Σ e^2z':
logsumexp = max + ln S, entropy = ln S − A/S, Σp² = Q/S². One pass computes all of them from the
same exponentials (no log-probability matrix, no p·log p matrix), which is also what makes the
extra statistics nearly free next to the LM head's matmul on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch

# Logit elements materialised at once (float32: 4 bytes each): 2^25 ≈ 128 MiB.
LOGITS_BUDGET = 1 << 25

# (x, weight, bias) -> x @ weight.T + bias as float32: the LM head's matmul (LinearRouting.linear_f32).
LinearF32 = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


@dataclass
class TokenStats:
    logprob: torch.Tensor  # [N] float32
    entropy: torch.Tensor  # [N] float32
    rank: torch.Tensor  # [N] int32
    top_ids: torch.Tensor  # [N, k] int64
    top_logprobs: torch.Tensor  # [N, k] float32
    sum_p2: torch.Tensor  # [N] float32

    @classmethod
    def cat(cls, parts: list[TokenStats]) -> TokenStats:
        return cls(*(torch.cat([getattr(p, f.name) for p in parts]) for f in fields(cls)))


def chunk_partials(z: torch.Tensor, reference: torch.Tensor, local_target: torch.Tensor, in_chunk: torch.Tensor, k: int):
    """Partial statistics of one logits chunk z [n, Vc] (float32; overwritten). `reference` is the
    true token's logit (for ranks); `local_target` its column in this chunk where `in_chunk`.
    Kept free of Python branching on values so that torch.compile can fuse it into two passes."""
    # Rank = how many tokens the model scored strictly higher; the true token never counts against
    # itself, even when its reference logit was computed in a different summation order.
    target_logit = z.gather(1, local_target[:, None]).squeeze(1)
    # Counted in int32: summing the [n, V] comparison as int64 (the default) first copies it into an
    # int64 tensor, which cost as much as the comparison itself on a CPU.
    greater = (z > reference[:, None]).sum(-1, dtype=torch.int32) - (in_chunk & (target_logit > reference)).int()
    top = torch.topk(z, k, dim=-1)
    peak = z.amax(-1)
    shifted = z - peak[:, None] if torch.compiler.is_compiling() else z.sub_(peak[:, None])
    e = torch.exp(shifted)
    vecdot = torch.linalg.vecdot
    return peak, e.sum(-1), vecdot(e, shifted), vecdot(e, e), greater, target_logit, top.values, top.indices


class _Running:
    """Statistics of n rows folded over vocabulary chunks."""

    def __init__(self, reference: torch.Tensor, top_k: int):
        self.reference, self.top_k = reference, top_k
        self.first = True

    def add(self, parts, offset: int, in_chunk: torch.Tensor) -> None:
        peak, s, a, q, greater, target_logit, top_values, top_ids = parts
        top_ids = top_ids + offset
        if self.first:
            self.first = False
            self.peak, self.s, self.a, self.q, self.greater = peak, s, a, q, greater
            self.target_logit = torch.where(in_chunk, target_logit, self.reference)
            self.top_values, self.top_ids = top_values, top_ids
            return
        new_peak = torch.maximum(self.peak, peak)
        old_scale, new_scale = torch.exp(self.peak - new_peak), torch.exp(peak - new_peak)
        # Σ e^(z−M)·(z−M) = e^(m−M)·(Σ e^(z−m)·(z−m) + (m−M)·Σ e^(z−m)) for each side.
        self.a = old_scale * (self.a + (self.peak - new_peak) * self.s) + new_scale * (a + (peak - new_peak) * s)
        self.q = old_scale.square() * self.q + new_scale.square() * q
        self.s = old_scale * self.s + new_scale * s
        self.peak = new_peak
        self.greater = self.greater + greater
        self.target_logit = torch.where(in_chunk, target_logit, self.target_logit)
        values = torch.cat([self.top_values, top_values], dim=1)
        best = torch.topk(values, min(self.top_k, values.shape[1]), dim=-1)
        self.top_values, self.top_ids = best.values, torch.cat([self.top_ids, top_ids], dim=1).gather(1, best.indices)

    def finish(self) -> TokenStats:
        log_s = torch.log(self.s)
        lse = self.peak + log_s
        return TokenStats(
            logprob=self.target_logit - lse, entropy=log_s - self.a / self.s, rank=self.greater,
            top_ids=self.top_ids, top_logprobs=self.top_values - lse[:, None], sum_p2=self.q / self.s.square(),
        )


def stats_from_logits(logits: torch.Tensor, targets: torch.Tensor, top_k: int) -> TokenStats:
    """Statistics for logits [N, V] (any float dtype) and true token ids [N]."""
    z = logits.float().clone()
    reference = z.gather(1, targets[:, None]).squeeze(1)
    running = _Running(reference, top_k)
    in_chunk = torch.ones_like(targets, dtype=torch.bool)
    running.add(chunk_partials(z, reference, targets, in_chunk, min(top_k, z.shape[1])), 0, in_chunk)
    return running.finish()


def stats_from_hidden(
    hidden: torch.Tensor, lm_head: torch.nn.Module, targets: torch.Tensor, top_k: int, *, linear: LinearF32,
    logit_transform=None, budget: int = LOGITS_BUDGET, vocab_chunk: int | None = None, partials=chunk_partials,
    cache_elements: int | None = None,
) -> TokenStats:
    """Statistics for hidden states [N, H] under the LM head, `budget` logits at a time: the whole
    vocabulary per row block when it fits (`vocab_chunk` None), else chunks of `vocab_chunk` ids.
    `linear` computes the head's float32 logits (the worker's LinearRouting.linear_f32).
    With `cache_elements` (CPU), the statistics passes over a block's logits go a few rows at a
    time, so that the ~8 passes read cache instead of memory (5× faster on a 2-core EPYC)."""
    weight = lm_head.weight
    bias = getattr(lm_head, "bias", None)
    vocab = weight.shape[0]
    chunk = min(vocab, vocab_chunk or vocab)
    rows = max(1, budget // chunk)
    # Whole multiples of 64 rows: every full block has the same shape (see accel.ONEDNN_ROW_STEP).
    rows = rows - rows % 64 if rows >= 64 else rows
    k = min(top_k, vocab)
    parts = []
    for start in range(0, hidden.shape[0], rows):
        block, block_targets = hidden[start : start + rows], targets[start : start + rows]
        if chunk == vocab:
            z = _logits(linear, block, weight, bias, logit_transform)
            step = max(1, cache_elements // vocab) if cache_elements else z.shape[0]
            everywhere = torch.ones_like(block_targets, dtype=torch.bool)
            for sub in range(0, z.shape[0], step):
                z_sub, t_sub, in_sub = z[sub : sub + step], block_targets[sub : sub + step], everywhere[sub : sub + step]
                reference = z_sub.gather(1, t_sub[:, None]).squeeze(1)
                running = _Running(reference, k)
                running.add(partials(z_sub, reference, t_sub, in_sub, k), 0, in_sub)
                parts.append(running.finish())
            continue
        running = _Running(_target_logits(block, weight, bias, block_targets, logit_transform), k)
        for offset in range(0, vocab, chunk):
            chunk_bias = None if bias is None else bias[offset : offset + chunk]
            z = _logits(linear, block, weight[offset : offset + chunk], chunk_bias, logit_transform)
            local = block_targets - offset
            in_chunk = (local >= 0) & (local < z.shape[1])
            chunk_k = min(k, z.shape[1])
            running.add(partials(z, running.reference, local.clamp(0, z.shape[1] - 1), in_chunk, chunk_k), offset, in_chunk)
        parts.append(running.finish())
    if not parts:
        empty = hidden.new_zeros(0, dtype=torch.float32)
        index = torch.zeros(0, dtype=torch.long, device=hidden.device)
        return TokenStats(empty, empty, index, index.reshape(0, top_k), empty.reshape(0, top_k), empty)
    return parts[0] if len(parts) == 1 else TokenStats.cat(parts)


def _logits(linear: LinearF32, hidden, weight, bias, logit_transform) -> torch.Tensor:
    logits = linear(hidden, weight, bias)
    return logits if logit_transform is None else logit_transform(logits)


def _target_logits(hidden, weight, bias, targets, logit_transform) -> torch.Tensor:
    """The true tokens' logits straight from their weight rows (the rank reference when the
    vocabulary comes in several chunks): products of bf16 values are exact in float32."""
    logit = torch.linalg.vecdot(hidden.float(), weight[targets].float())
    if bias is not None:
        logit = logit + bias[targets].float()
    return logit if logit_transform is None else logit_transform(logit)
