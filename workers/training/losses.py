"""Training losses: cross-entropy and the focal family, as pure functions of logits [N, V] and targets [N].

Every loss is computed in float32 whatever the logits' dtype (bf16 logits under autocast lose too
much in a log-softmax over ~50k classes), ignores targets equal to IGNORE_INDEX, and with
reduction="mean" averages over the non-ignored tokens (like `F.cross_entropy`). reduction="none"
returns one value per row, 0 at ignored rows.

All softmax-form losses are functions of log p of the true token only, so they share one
`target_logprob`; 1 − p is computed as −expm1(log p), exact for confident tokens. When N·V is large
(big vocabularies, long batches) rows are processed in chunks under activation checkpointing, so the
float32 copy of the logits never exists in full.

The spec strings and their formulas are documented in app/training_specs.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from app.training_specs import (
    CE, FLSD53, FLSD53_GAMMA_HIGH_P, FLSD53_GAMMA_LOW_P, FLSD53_THRESHOLD, FOCAL, FOCAL_ADAPTIVE, FOCAL_SCHEDULE,
    MILE, POLY1, POLYFOCAL, RHO1, SIGMOID_POLYFOCAL, LossSpec,
)

IGNORE_INDEX = -100
# Above this many logits per call, rows go through in chunks of about this many elements
# (2^26 float32 = 256 MiB of temporaries per chunk instead of N·V·4 bytes at once).
CHUNK_ELEMENTS = 2**26
# (1 − p) is clamped to this before raising to γ < 1, whose derivative is infinite at 0.
TINY = torch.finfo(torch.float32).tiny


# --- per-row building blocks --------------------------------------------------------------------

def _float(logits: torch.Tensor) -> torch.Tensor:
    """At least float32: bf16/fp16 logits are upcast, float64 (gradient checks) is kept."""
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()


def _rows(fn, logits: torch.Tensor, targets: torch.Tensor, *args) -> torch.Tensor:
    """fn(logits_chunk, safe_targets_chunk, *args) -> per-row float32 values, chunked when large."""
    if logits.dim() != 2 or targets.dim() != 1 or logits.shape[0] != targets.shape[0]:
        raise ValueError(f"expected logits [N, V] and targets [N], got {tuple(logits.shape)} and {tuple(targets.shape)}")
    safe = targets.clamp_min(0)
    n, v = logits.shape
    if n * v <= CHUNK_ELEMENTS:
        return fn(logits, safe, *args)
    step = max(1, CHUNK_ELEMENTS // v)
    parts = []
    for start in range(0, n, step):
        chunk, chunk_targets = logits[start:start + step], safe[start:start + step]
        if torch.is_grad_enabled() and logits.requires_grad:
            parts.append(checkpoint(fn, chunk, chunk_targets, *args, use_reentrant=False))
        else:
            parts.append(fn(chunk, chunk_targets, *args))
    return torch.cat(parts)


def _target_logprob_rows(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    z = _float(logits)
    return z.gather(1, targets[:, None]).squeeze(1) - torch.logsumexp(z, dim=1)


def target_logprob(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) per row, float32 (rows with an ignored target hold an arbitrary finite value)."""
    return _rows(_target_logprob_rows, logits, targets)


def _reduce(values: torch.Tensor, targets: torch.Tensor, reduction: str) -> torch.Tensor:
    keep = targets != IGNORE_INDEX
    values = torch.where(keep, values, torch.zeros((), dtype=values.dtype, device=values.device))
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    if reduction == "mean":
        return values.sum() / keep.sum().clamp_min(1)
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def one_minus_p(logp: torch.Tensor) -> torch.Tensor:
    return -torch.expm1(logp)


def focal_weight(logp: torch.Tensor, gamma: float | torch.Tensor) -> torch.Tensor:
    """(1 − p)^γ; γ may be a number or a per-row tensor."""
    if isinstance(gamma, (int, float)) and gamma == 0:
        return torch.ones_like(logp)
    return one_minus_p(logp).clamp_min(TINY).pow(gamma)


# --- per-token losses as functions of log p (softmax form) ----------------------------------------

def focal_terms(logp: torch.Tensor, gamma: float | torch.Tensor) -> torch.Tensor:
    """−(1 − p)^γ log p."""
    return focal_weight(logp, gamma) * -logp


def polyfocal_terms(logp: torch.Tensor, epsilon: float, gamma: float) -> torch.Tensor:
    """(1 − p)^γ (−log p) + ε (1 − p)^(γ+1); γ = 0 gives Poly-1, −log p + ε(1 − p)."""
    return focal_terms(logp, gamma) + epsilon * one_minus_p(logp).clamp_min(0).pow(gamma + 1)


def flsd53_gamma(logp: torch.Tensor) -> torch.Tensor:
    """γ per token: 5 where p < 0.2, else 3. Chosen on the detached p (the choice is not differentiated)."""
    p = logp.detach().exp()
    return torch.where(p < FLSD53_THRESHOLD, FLSD53_GAMMA_LOW_P, FLSD53_GAMMA_HIGH_P).to(logp.dtype)


# --- losses that depend on the whole batch ---------------------------------------------------------

@dataclass(frozen=True)
class BatchContext:
    """What a batch-level loss knows about its batch before any row's loss: focal-adaptive's γ of
    this step, rho1's per-row weights (n_valid / k on the k selected tokens, 0 elsewhere)."""

    gamma: float | None = None
    weights: torch.Tensor | None = None

    def rows(self, rows: slice) -> BatchContext:
        return self if self.weights is None else BatchContext(self.gamma, self.weights[rows])


def adaptive_gamma(gamma_max: float, logp: torch.Tensor, targets: torch.Tensor) -> float:
    """focal-adaptive's γ for a batch: γmax · (1 − mean p of the true token over its non-ignored tokens)."""
    keep = targets != IGNORE_INDEX
    if not keep.any():
        return gamma_max
    return gamma_max * (1.0 - float(logp.detach().double()[keep].exp().mean()))


def rho1_weights(ratio: float, logp: torch.Tensor, reference_logp: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Rho-1's selection as row weights: the k = ⌈ratio · n⌉ non-ignored tokens with the largest excess
    loss (−log p) − (−log p_ref) get n / k, the rest 0, so that the mean over all n rows is the mean
    CE over the selected ones (the paper's normalisation)."""
    keep = targets != IGNORE_INDEX
    n = int(keep.sum())
    weights = torch.zeros(logp.shape, dtype=torch.float32, device=logp.device)
    if n == 0:
        return weights
    k = max(1, math.ceil(ratio * n - 1e-9))
    excess = torch.where(keep, reference_logp.detach().double() - logp.detach().double(), -math.inf)
    weights[torch.topk(excess, k).indices] = n / k
    return weights


def batch_context(spec: LossSpec, logp: torch.Tensor, targets: torch.Tensor,
                  reference_logp: torch.Tensor | None = None) -> BatchContext:
    """The context of a batch-level loss from the batch's log p (detached) and, for rho1, the
    reference model's log p of the same targets."""
    if spec.kind == FOCAL_ADAPTIVE:
        return BatchContext(gamma=adaptive_gamma(spec.gamma, logp, targets))
    if spec.kind == RHO1:
        if reference_logp is None:
            raise ValueError("rho1 needs the reference model's log p of the batch")
        return BatchContext(weights=rho1_weights(spec.ratio or 1.0, logp, reference_logp, targets))
    return BatchContext()


def _mile_rows(logits: torch.Tensor, targets: torch.Tensor, gamma: float) -> torch.Tensor:
    """−H(p)^γ log p per row, H = −Σ_v p_v log p_v in nats. The weight H^γ is a constant in the gradient
    (detached): differentiated, H^γ·(−log p) is 0 wherever H = 0, so a point mass on any token is a
    global minimum — every seed of our first study collapsed onto one (docs/study.md)."""
    logprobs = torch.log_softmax(_float(logits), dim=1)
    with torch.no_grad():
        weight = (-(logprobs.exp() * logprobs).sum(dim=1)).clamp_min(0).pow(gamma)
    return weight * -logprobs.gather(1, targets[:, None]).squeeze(1)


def softmax_terms(spec: LossSpec, logp: torch.Tensor, *, step: int = 0, total_steps: int = 1,
                  context: BatchContext | None = None) -> torch.Tensor:
    """Per-token loss of a softmax-form spec from log p of the true token."""
    if spec.kind == CE:
        return -logp
    if spec.kind == FOCAL_ADAPTIVE:
        return focal_terms(logp, _needs(context, spec).gamma)
    if spec.kind == RHO1:
        return _needs(context, spec).weights * -logp
    if spec.kind == FOCAL:
        return focal_terms(logp, spec.gamma)
    if spec.kind == FOCAL_SCHEDULE:
        return focal_terms(logp, spec.gamma_at(step, total_steps))
    if spec.kind == POLY1:
        return polyfocal_terms(logp, spec.epsilon, 0.0)
    if spec.kind == POLYFOCAL:
        return polyfocal_terms(logp, spec.epsilon, spec.gamma)
    if spec.kind == FLSD53:
        return focal_terms(logp, flsd53_gamma(logp))
    raise ValueError(f"{spec.kind!r} is not a softmax-form loss")


def _needs(context: BatchContext | None, spec: LossSpec) -> BatchContext:
    if context is None or (context.gamma is None and context.weights is None):
        raise ValueError(f"the {spec.text} loss depends on the batch: pass its batch_context")
    return context


# --- the sigmoid (one-vs-all) Poly-1 focal loss ----------------------------------------------------

def _sigmoid_polyfocal_rows(logits, targets, epsilon: float, gamma: float, alpha: float) -> torch.Tensor:
    z = _float(logits)
    # x = z for the true class, −z for every other one: p_t = σ(x), 1 − p_t = σ(−x), BCE = −log σ(x).
    x = (-z).scatter(1, targets[:, None], z.gather(1, targets[:, None]))
    log_q = F.logsigmoid(-x)  # log(1 − p_t)
    alpha_t = torch.full_like(z, 1.0 - alpha).scatter_(1, targets[:, None], alpha)
    focal = alpha_t * torch.exp(gamma * log_q) * -F.logsigmoid(x)
    poly = epsilon * torch.exp((gamma + 1.0) * log_q)
    return (focal + poly).sum(dim=1)


def sigmoid_polyfocal_loss(logits, targets, epsilon: float, gamma: float, alpha: float, reduction: str = "mean"):
    """Σ_v [α_t (1 − p_t)^γ BCE_v + ε (1 − p_t)^(γ+1)] with p_t = σ(±z_v) against one-hot targets
    (α_t = α for the true class, 1 − α for the others), summed over the vocabulary, averaged over tokens."""
    rows = _rows(_sigmoid_polyfocal_rows, logits, targets, float(epsilon), float(gamma), float(alpha))
    return _reduce(rows, targets, reduction)


# --- public losses --------------------------------------------------------------------------------

def cross_entropy(logits, targets, reduction: str = "mean"):
    return _reduce(-target_logprob(logits, targets), targets, reduction)


def focal_loss(logits, targets, gamma: float, reduction: str = "mean"):
    return _reduce(focal_terms(target_logprob(logits, targets), gamma), targets, reduction)


def poly1_loss(logits, targets, epsilon: float, reduction: str = "mean"):
    return _reduce(polyfocal_terms(target_logprob(logits, targets), epsilon, 0.0), targets, reduction)


def polyfocal_loss(logits, targets, epsilon: float, gamma: float, reduction: str = "mean"):
    return _reduce(polyfocal_terms(target_logprob(logits, targets), epsilon, gamma), targets, reduction)


def flsd53_loss(logits, targets, reduction: str = "mean"):
    logp = target_logprob(logits, targets)
    return _reduce(focal_terms(logp, flsd53_gamma(logp)), targets, reduction)


def compute_loss(spec: LossSpec, logits, targets, *, step: int = 0, total_steps: int = 1, reduction: str = "mean"):
    """The loss a spec names, for the update with 0-based index `step` of `total_steps`."""
    return loss_and_ce(spec, logits, targets, step=step, total_steps=total_steps, reduction=reduction)[0]


def mile_loss(logits, targets, gamma: float, reduction: str = "mean"):
    return _reduce(_rows(_mile_rows, logits, targets, float(gamma)), targets, reduction)


def loss_and_ce(spec: LossSpec, logits, targets, *, step: int = 0, total_steps: int = 1, reduction: str = "mean",
                context: BatchContext | None = None):
    """(loss to optimise, plain cross-entropy on the same tokens, detached). The softmax-form losses
    share one log-softmax with the CE they report. focal-adaptive and rho1 need the batch's `context`
    (batch_context), sliced to these rows."""
    if spec.kind == MILE:
        loss = mile_loss(logits, targets, spec.gamma, reduction)
        with torch.no_grad():
            ce = cross_entropy(logits, targets, reduction)
        return loss, ce
    if spec.kind == SIGMOID_POLYFOCAL:
        loss = sigmoid_polyfocal_loss(logits, targets, spec.epsilon, spec.gamma, spec.alpha or 0.0, reduction)
        with torch.no_grad():
            ce = cross_entropy(logits, targets, reduction)
        return loss, ce
    logp = target_logprob(logits, targets)
    loss = _reduce(softmax_terms(spec, logp, step=step, total_steps=total_steps, context=context), targets, reduction)
    return loss, _reduce(-logp.detach(), targets, reduction)
