"""The training loop: AdamW, linear warmup + cosine decay, gradient clipping, bf16 autocast on CUDA,
and the LM head fused with the loss (head_loss.py) so the full logits are never materialised.

It knows nothing about jobs or databases: progress, saving and cancellation are `TrainingHooks`
calls (the transformers TrainerCallback habit). Update number i (0-based) trains on batch i of the
sampler with learning rate lr_at(i) and loss γ(i); after it the model is "at step i + 1". Those three
depend on i alone, so resuming at step s from a checkpoint replays exactly what an uninterrupted run
would have done.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import torch

from app.training_specs import BATCH_LOSSES, CE, FLSD53, POLY1, RHO1, LossSpec, save_steps
from workers.training.data import BatchSampler
from workers.training.head_loss import fused_head_loss, head_target_logprob
from workers.training.losses import BatchContext, batch_context, loss_and_ce, target_logprob

# nanoGPT / GPT-3 choices for small LMs.
BETAS = (0.9, 0.95)
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0
# Warmup over the first 5% of updates (at least one); cosine decay to 10% of the peak lr.
WARMUP_FRACTION = 0.05
MIN_LR_FRACTION = 0.1
# Smoothing of the step time behind the ETA.
ETA_SMOOTHING = 0.9


class TrainingDiverged(ArithmeticError):
    """The loss became NaN or infinite: rerunning the same updates would diverge again."""


@dataclass(frozen=True)
class TrainPlan:
    steps: int
    save_every: int
    lr: float
    loss: LossSpec

    @property
    def warmup_steps(self) -> int:
        return max(1, round(self.steps * WARMUP_FRACTION))

    def lr_at(self, index: int) -> float:
        """Learning rate of update `index` (0-based)."""
        warmup = self.warmup_steps
        if index < warmup:
            return self.lr * (index + 1) / warmup
        progress = min(1.0, (index - warmup) / max(1, self.steps - 1 - warmup))
        floor = self.lr * MIN_LR_FRACTION
        return floor + 0.5 * (self.lr - floor) * (1.0 + math.cos(math.pi * progress))

    @cached_property
    def save_steps(self) -> frozenset[int]:
        return frozenset(save_steps(self.steps, self.save_every))

    def saves_at(self, step: int) -> bool:
        """Whether the model at `step` (updates done) is checkpointed: 0, every save_every, and the last."""
        return step in self.save_steps


@dataclass
class StepResult:
    step: int  # updates done, after this one
    loss: float  # the loss being optimised, on this update's batch
    ce: float  # plain cross-entropy on the same batch
    lr: float
    gamma: float | None
    grad_norm: float
    tokens_seen: int
    seconds: float  # wall time of this update


@dataclass
class RunningLoss:
    """Mean training loss since the last checkpoint (written to training.json)."""

    loss_sum: float = 0.0
    ce_sum: float = 0.0
    count: int = 0

    def add(self, result: StepResult) -> None:
        self.loss_sum += result.loss
        self.ce_sum += result.ce
        self.count += 1

    def means(self) -> tuple[float | None, float | None]:
        if not self.count:
            return None, None
        return self.loss_sum / self.count, self.ce_sum / self.count


class TrainingHooks(Protocol):
    def check(self) -> None:
        """Raise to stop (the job is no longer ours, or the worker is shutting down)."""

    def on_step(self, result: StepResult, eta_s: float | None) -> None: ...

    def on_save(self, step: int, tokens_seen: int, running: RunningLoss) -> None:
        """Checkpoint the model at `step`; `running` covers the updates since the last save."""


@dataclass
class Trainer:
    model: torch.nn.Module
    sampler: BatchSampler
    plan: TrainPlan
    device: torch.device
    # torch.compile the forward pass: ≈ a minute of compilation, then faster steps on a GPU.
    compile: bool = False
    # The LM head and the loss in row chunks (head_loss.py): the full logits are never materialised.
    fused_head: bool = True
    # rho1's reference model (same tokenizer), scored on every batch without gradients.
    reference: torch.nn.Module | None = None
    optimizer: torch.optim.Optimizer = field(init=False)

    def __post_init__(self) -> None:
        # The fused CUDA AdamW kernel updates every parameter in a few launches instead of many.
        self.optimizer = make_optimizer(self.model, self.plan.lr, fused=self.device.type == "cuda")
        self._head = _bias_free_head(self.model) if self.fused_head else None
        # With a fused head only the body runs as a module: the head's matmuls happen in the loss.
        forward = self.model.base_model if self._head is not None else self.model
        self._forward = torch.compile(forward) if self.compile else forward
        # bf16 keeps fp32's range (no loss scaling needed); older GPUs and CPUs train in fp32.
        use_bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        self.precision = "bf16-autocast" if use_bf16 else "fp32"
        self._autocast = (
            (lambda: torch.autocast(device_type="cuda", dtype=torch.bfloat16)) if use_bf16 else contextlib.nullcontext
        )
        self._params = [p for p in self.model.parameters() if p.requires_grad]

    def train_step(self, index: int) -> StepResult:
        started = time.perf_counter()
        self.model.train()
        inputs, targets = (t.to(self.device, non_blocking=True) for t in self.sampler.batch(index))
        lr = self.plan.lr_at(index)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss, ce, context = self._loss(inputs, targets, index)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self._params, GRAD_CLIP)
        self.optimizer.step()
        # The update's only wait for the device: a check before backward() would stall the launch
        # queue mid-step. A non-finite loss has already spoilt the weights in memory by now, but
        # the run stops here and nothing after the last checkpoint is kept.
        loss_value, ce_value, grad_value = torch.stack([loss.detach().float(), ce.float(), grad_norm.float()]).tolist()
        if not math.isfinite(loss_value):
            raise TrainingDiverged(f"the {self.plan.loss.text} loss became {loss_value} at update {index + 1}; lower lr")
        return StepResult(
            step=index + 1, loss=loss_value, ce=ce_value, lr=lr, gamma=self._gamma(index, context),
            grad_norm=grad_value, tokens_seen=(index + 1) * self.sampler.tokens_per_step,
            seconds=time.perf_counter() - started,
        )

    def _loss(self, inputs: torch.Tensor, targets: torch.Tensor, index: int):
        """(loss, CE, the batch context of a batch-level loss or None)."""
        schedule = {"step": index, "total_steps": self.plan.steps}
        flat_targets = targets.reshape(-1)
        with self._autocast():
            if self._head is not None:
                hidden = self._forward(input_ids=inputs).last_hidden_state
                hidden = hidden.reshape(-1, hidden.shape[-1])
                context = self._context(inputs, flat_targets, lambda: head_target_logprob(
                    hidden.detach(), self._head.weight.detach(), flat_targets))
                loss, ce = fused_head_loss(self.plan.loss, hidden, self._head.weight, flat_targets, **schedule,
                                           context=context)
                return loss, ce, context
            logits = self._forward(input_ids=inputs).logits
        logits = logits.reshape(-1, logits.shape[-1])
        context = self._context(inputs, flat_targets, lambda: target_logprob(logits.detach(), flat_targets))
        return (*loss_and_ce(self.plan.loss, logits, flat_targets, **schedule, context=context), context)

    def _context(self, inputs: torch.Tensor, targets: torch.Tensor, current_logprob) -> BatchContext | None:
        """A batch-level loss's view of the batch (one extra head pass without gradients; for rho1 also
        the reference model's forward pass)."""
        spec = self.plan.loss
        if spec.kind not in BATCH_LOSSES:
            return None
        reference = self._reference_logprob(inputs, targets) if spec.kind == RHO1 else None
        return batch_context(spec, current_logprob(), targets, reference)

    @torch.no_grad()
    def _reference_logprob(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.reference is None:
            raise ValueError(f"the {self.plan.loss.text} loss needs its reference model")
        self.reference.eval()
        logits = self.reference(input_ids=inputs).logits
        return target_logprob(logits.reshape(-1, logits.shape[-1]), targets)

    def _gamma(self, index: int, context: BatchContext | None) -> float | None:
        """The γ this update used (focal-adaptive: the batch's; mile: its entropy exponent)."""
        spec = self.plan.loss
        if context is not None and context.gamma is not None:
            return context.gamma
        if spec.kind in (CE, POLY1, FLSD53, RHO1):  # no γ, or one per token
            return None
        return spec.gamma_at(index, self.plan.steps)

    def run(self, start_step: int, hooks: TrainingHooks, running: RunningLoss | None = None) -> None:
        """Run updates start_step … steps − 1, checkpointing through hooks.on_save."""
        running = running or RunningLoss()
        step_time: float | None = None
        for index in range(start_step, self.plan.steps):
            hooks.check()
            result = self.train_step(index)
            running.add(result)
            step_time = result.seconds if step_time is None else (
                ETA_SMOOTHING * step_time + (1 - ETA_SMOOTHING) * result.seconds)
            hooks.on_step(result, step_time * (self.plan.steps - result.step))
            if self.plan.saves_at(result.step):
                hooks.on_save(result.step, result.tokens_seen, running)
                running = RunningLoss()


def _bias_free_head(model: torch.nn.Module) -> torch.nn.Linear | None:
    """The output projection when the fused loss can stand in for it (a plain Linear, no bias)."""
    head = model.get_output_embeddings()
    return head if isinstance(head, torch.nn.Linear) and head.bias is None else None


def make_optimizer(model: torch.nn.Module, lr: float, *, fused: bool = False) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings only (not on biases and norm gains).
    Parameter order is the model's, so a restored optimizer state lines up with a reloaded model."""
    decay, no_decay, seen = [], [], set()
    for _, param in model.named_parameters():
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        (decay if param.dim() >= 2 else no_decay).append(param)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr, betas=BETAS, eps=1e-8, fused=fused,
    )
