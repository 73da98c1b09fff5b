"""Per-token statistics of next-token predictions, always in float32.

Given hidden states (after the final norm) and the LM head, compute for each scored position:
log p of the true token, entropy, 0-based rank of the true token, top-k ids and log-probs, and
Σ_v p_v² (for the exact Brier score). Positions are processed in row chunks so that the logits
held at once stay under a fixed element budget whatever the vocabulary size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Logit elements materialised at once (float32: 4 bytes each): 2^25 ≈ 128 MiB.
LOGITS_BUDGET = 1 << 25


@dataclass
class TokenStats:
    logprob: torch.Tensor  # [N] float32
    entropy: torch.Tensor  # [N] float32
    rank: torch.Tensor  # [N] int64
    top_ids: torch.Tensor  # [N, k] int64
    top_logprobs: torch.Tensor  # [N, k] float32
    sum_p2: torch.Tensor  # [N] float32


def stats_from_logits(logits: torch.Tensor, targets: torch.Tensor, top_k: int) -> TokenStats:
    """Statistics for logits [N, V] (any float dtype) and true token ids [N]."""
    logits = logits.float()
    lse = torch.logsumexp(logits, dim=-1)
    target_logit = logits.gather(1, targets[:, None]).squeeze(1)
    logp = logits - lse[:, None]
    p = logp.exp()
    # Entropy and Σp² from the same p; p·logp where p underflows to 0 is 0, not NaN.
    entropy = -(p * logp).sum(dim=-1)
    sum_p2 = (p * p).sum(dim=-1)
    # Rank = how many tokens the model scored strictly higher; ties resolve in the token's favour.
    rank = (logits > target_logit[:, None]).sum(dim=-1)
    top = torch.topk(logits, k=min(top_k, logits.shape[-1]), dim=-1)
    return TokenStats(
        logprob=target_logit - lse, entropy=entropy, rank=rank, top_ids=top.indices,
        top_logprobs=top.values - lse[:, None], sum_p2=sum_p2,
    )


def stats_from_hidden(
    hidden: torch.Tensor, lm_head: torch.nn.Module, targets: torch.Tensor, top_k: int,
    logit_transform=None, budget: int = LOGITS_BUDGET,
) -> TokenStats:
    """Statistics for hidden states [N, H], applying the LM head to row chunks of `budget // V` rows."""
    vocab = lm_head.weight.shape[0]
    rows = max(1, budget // vocab)
    parts = []
    for start in range(0, hidden.shape[0], rows):
        logits = lm_head(hidden[start : start + rows])
        if logit_transform is not None:
            logits = logit_transform(logits)
        parts.append(stats_from_logits(logits, targets[start : start + rows], top_k))
    if not parts:
        empty = hidden.new_zeros(0, dtype=torch.float32)
        index = torch.zeros(0, dtype=torch.long, device=hidden.device)
        return TokenStats(empty, empty, index, index.reshape(0, top_k), empty.reshape(0, top_k), empty)
    return TokenStats(*(torch.cat([getattr(p, f) for p in parts]) for f in TokenStats.__dataclass_fields__))
