"""The LM head and the training loss in one pass over row chunks, so the [N, V] logits never exist in full.

The habit of Liger-Kernel's fused linear cross-entropy, for every loss in `losses`: for each chunk of
rows, the forward pass computes logits = h·Wᵀ in the matmul dtype, the loss and plain CE in float32,
and at once the chunk's gradients with respect to h and W (autograd on the chunk's logits only); the
backward pass just scales the stored gradients by the incoming one. Peak memory is one chunk's logits
and their gradient (about `CHUNK_ELEMENTS` each) instead of all N·V logits, their float32 copy and their
gradient — for the `base` preset (32 × 1024 tokens, 32k vocabulary) 4 GiB of bf16 logits plus 8 GiB of
float32 temporaries. The FLOPs are the unfused head's: one matmul forward, two for the gradients.

The loss is the mean over non-ignored targets, as `losses.loss_and_ce(..., reduction="mean")`.
"""

from __future__ import annotations

import torch

from app.training_specs import LossSpec
from workers.training.losses import CHUNK_ELEMENTS, IGNORE_INDEX, BatchContext, loss_and_ce, target_logprob


class _FusedHeadLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, spec: LossSpec, step: int, total_steps: int, matmul_dtype, chunk_rows: int,
                context: BatchContext | None):
        n_rows = hidden.shape[0]
        count = (targets != IGNORE_INDEX).sum().clamp_min(1)
        w = weight.detach().to(matmul_dtype)
        grad_hidden = torch.empty_like(hidden)
        # Sums over chunks accumulate in at least float32, also when the matmuls are bf16.
        accumulate = torch.promote_types(matmul_dtype, torch.float32)
        grad_weight = torch.zeros(weight.shape, dtype=accumulate, device=weight.device)
        loss_sum = torch.zeros((), dtype=accumulate, device=hidden.device)
        ce_sum = torch.zeros((), dtype=accumulate, device=hidden.device)
        for start in range(0, n_rows, chunk_rows):
            rows = slice(start, start + chunk_rows)
            x = hidden[rows].detach().to(matmul_dtype)
            logits = (x @ w.T).requires_grad_()
            with torch.enable_grad():
                loss, ce = loss_and_ce(spec, logits, targets[rows], step=step, total_steps=total_steps, reduction="sum",
                                       context=None if context is None else context.rows(rows))
                (grad_logits,) = torch.autograd.grad(loss, logits)
            grad_logits = grad_logits.to(matmul_dtype)
            grad_hidden[rows] = grad_logits @ w
            grad_weight.add_(grad_logits.T @ x)
            loss_sum += loss.detach()
            ce_sum += ce
        ctx.save_for_backward(grad_hidden.div_(count), grad_weight.div_(count).to(weight.dtype))
        return loss_sum / count, ce_sum / count

    @staticmethod
    def backward(ctx, grad_loss, grad_ce):
        # CE is reported, not optimised: its gradient is ignored (it is returned detached below).
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_loss, grad_weight * grad_loss, None, None, None, None, None, None, None


def fused_head_loss(
    spec: LossSpec, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, *,
    step: int = 0, total_steps: int = 1, chunk_rows: int | None = None, context: BatchContext | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss of `spec` on logits hidden·weightᵀ, plain CE detached), for hidden [N, H], weight [V, H]
    (a bias-free head) and targets [N]. Under autocast the matmuls run in the autocast dtype, as the
    unfused head would; the losses are float32 either way."""
    if hidden.dim() != 2 or weight.dim() != 2 or hidden.shape[1] != weight.shape[1] or targets.shape != hidden.shape[:1]:
        raise ValueError(f"expected hidden [N, H], weight [V, H], targets [N]; got {tuple(hidden.shape)}, "
                         f"{tuple(weight.shape)}, {tuple(targets.shape)}")
    device_type = hidden.device.type
    matmul_dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else hidden.dtype
    rows = chunk_rows or max(1, CHUNK_ELEMENTS // weight.shape[0])
    # Autocast off inside: the dtypes above are chosen once, and the gradient matmuls must match them.
    with torch.autocast(device_type=device_type, enabled=False):
        loss, ce = _FusedHeadLoss.apply(hidden, weight, targets, spec, step, total_steps, matmul_dtype, rows, context)
    return loss, ce.detach()


@torch.no_grad()
def head_target_logprob(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, *,
                        chunk_rows: int | None = None) -> torch.Tensor:
    """log p of the targets under logits hidden·weightᵀ, chunk by chunk (no gradient): what a
    batch-level loss looks at before the fused pass."""
    rows = chunk_rows or max(1, CHUNK_ELEMENTS // weight.shape[0])
    safe = targets.clamp_min(0)
    return torch.cat([target_logprob(hidden[i:i + rows] @ weight.T.to(hidden.dtype), safe[i:i + rows])
                      for i in range(0, hidden.shape[0], rows)])
