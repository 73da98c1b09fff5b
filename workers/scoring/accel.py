"""Device-specific speed-ups that change no number beyond float rounding.

- CPU: PyTorch's fp32 `F.linear` goes to MKL, which on AMD processors takes a generic code path;
  oneDNN (`mkldnn::_linear_pointwise`, the kernel inductor itself uses) picks AVX-512 by CPU feature
  and runs the same fp32 matmuls about twice as fast on the project's Zen CPUs (357 vs 182
  GFLOP/s) — but on its Xeons MKL is the faster one on most shapes (260 vs 238).
  `LinearRouting.route_linears` routes each of a model's `nn.Linear` layers through oneDNN where it
  agrees with `F.linear` and, timed once per weight shape by the worker's `LinearRouting`, is faster.
- GPU: the LM head runs on bf16/fp16 weights but must give float32 logits: `torch.mm(...,
  out_dtype=float32)` keeps the fp32 accumulator instead of rounding logits to 8 bits of mantissa.
- CPU, half precision: oneDNN and PyTorch's CPU brgemm kernels build and keep a kernel for every
  input shape they meet in bf16/fp16 (linear, batched matmul, flash attention) and never free it:
  scoring a corpus, whose batches come in ever new [rows, width] shapes, grew a worker by ~2 KB per
  token (1.9 GB over 290 window widths). Half-precision CPU models therefore route every linear
  through the row tiles below and run attention in float32 (`use_f32_attention`), whose kernels
  keep nothing per shape.
- `torch.compile` is optional and must never cost a run: `Compiled` falls back to eager on any
  compile error and remembers why. A decoder is compiled by region — each repeated layer, whose
  identical code compiles once — which keeps compile time to about one layer's and leaves the
  causal-mask decision outside the graph, so eager-mode SDPA still picks its causal flash kernel.
"""

from __future__ import annotations

import logging
import time
import types

import torch
import torch.nn.functional as F

log = logging.getLogger("focalscope.worker")

# Agreement required between oneDNN and F.linear on the probe (fp32 accumulation order differs).
ONEDNN_PROBE_TOLERANCE = 1e-4
# Smaller weight matrices stay on F.linear: oneDNN's fixed cost per call (≈ 10 µs) outweighs its
# faster kernel below about 256 × 256.
ONEDNN_MIN_WEIGHT = 1 << 16
# oneDNN builds and keeps a kernel (≈ 1 MB) for every input shape it meets: with a batch's rows
# taken ROW_TILE at a time, the last tile padded to a multiple of ROW_STEP, a worker meets at most
# 33 shapes per weight however its batches vary, so memory stays flat over any corpus (unbounded
# shapes grew a worker by ~1 GB). Costs ≤ 63 padded rows per call.
ONEDNN_ROW_TILE = 2048
ONEDNN_ROW_STEP = 64
# oneDNN must be this much faster to be used; rows of the timing probe.
ONEDNN_MIN_SPEEDUP = 1.05
ONEDNN_PROBE_ROWS = 512


def onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x @ weight.T (+ bias) through oneDNN, a bounded set of row-tile shapes at a time."""
    rows = x.reshape(-1, x.shape[-1])
    parts = [_onednn_rows(rows[start : start + ONEDNN_ROW_TILE], weight, bias)
             for start in range(0, rows.shape[0], ONEDNN_ROW_TILE)]
    if not parts:
        return x.new_empty(*x.shape[:-1], weight.shape[0])
    return (parts[0] if len(parts) == 1 else torch.cat(parts)).reshape(*x.shape[:-1], weight.shape[0])


def _onednn_rows(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    n = rows.shape[0]
    padded = -(-n // ONEDNN_ROW_STEP) * ONEDNN_ROW_STEP
    if padded != n:
        rows = F.pad(rows, (0, 0, 0, padded - n))
    return torch.ops.mkldnn._linear_pointwise(rows, weight, bias, "none", [], "")[:n]


def _probe(dtype: torch.dtype) -> bool:
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return False
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 7, 64, generator=generator).to(dtype)
    weight = torch.randn(48, 64, generator=generator).to(dtype)
    bias = torch.randn(48, generator=generator).to(dtype)
    try:
        with torch.inference_mode():
            ours, reference = onednn_linear(x, weight, bias), F.linear(x, weight, bias)
    except RuntimeError as exc:
        log.info("oneDNN linear unavailable: %s", exc)
        return False
    tolerance = ONEDNN_PROBE_TOLERANCE if dtype == torch.float32 else 5e-2
    return ours.shape == reference.shape and bool(torch.allclose(ours.float(), reference.float(), rtol=tolerance, atol=tolerance))


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _linear_forward(self, x):
    return onednn_linear(x, self.weight, self.bias)


def _routable(model: torch.nn.Module) -> list[torch.nn.Linear]:
    return [
        m for m in model.modules()
        if isinstance(m, torch.nn.Linear) and m.weight.device.type == "cpu"
        and (m.weight.numel() >= ONEDNN_MIN_WEIGHT or m.weight.dtype != torch.float32)
    ]


def plain_linears(model: torch.nn.Module) -> None:
    """Undo `LinearRouting.route_linears`: the model's linears run F.linear again (what a compiled
    model needs: inductor lowers plain linears itself and cannot lower the oneDNN op with dynamic
    shapes)."""
    for module in _routable(model):
        module.__dict__.pop("forward", None)


class LinearRouting:
    """How this process runs linear layers, measured once and remembered: whether oneDNN works
    here (per dtype), whether it beats MKL (per fp32 weight shape), and whether the GPU matmul can
    return float32 logits. The answers hold for the life of the process (same CPU, same torch), so
    the worker owns one (through its ModelCache) and hands it to every scorer it builds; a scorer
    made alone measures its own."""

    def __init__(self) -> None:
        self._usable: dict[torch.dtype, bool] = {}
        self._faster: dict[tuple[int, ...], bool] = {}
        self._mm_out_dtype = True

    def onednn_usable(self, dtype: torch.dtype) -> bool:
        """Whether oneDNN linears run here and agree with F.linear (probed once per dtype)."""
        if dtype not in self._usable:
            self._usable[dtype] = _probe(dtype)
        return self._usable[dtype]

    def onednn_faster(self, weight: torch.Tensor) -> bool:
        """Whether oneDNN runs an fp32 linear of this weight's shape faster than F.linear (MKL) on
        this CPU, timed once per shape (a model has a handful). Which one wins depends on the CPU
        and the shape: on this project's Xeons MKL is faster on a transformer block's matrices,
        while on a 49k-vocabulary LM head the two are even at 512 rows and oneDNN leads at 2048
        (397 against 451 ms). oneDNN must win by ONEDNN_MIN_SPEEDUP; both are exact, so a close or
        noisy call costs little either way."""
        key = tuple(weight.shape)
        if key not in self._faster:
            x = torch.randn(ONEDNN_PROBE_ROWS, weight.shape[1])
            with torch.inference_mode():
                F.linear(x, weight), onednn_linear(x, weight, None)  # first calls: kernel selection, allocation
                mkl = onednn = float("inf")
                for _ in range(3):  # interleaved, so that a busy moment hits both
                    mkl = min(mkl, _timed(lambda: F.linear(x, weight)))
                    onednn = min(onednn, _timed(lambda: onednn_linear(x, weight, None)))
            self._faster[key] = onednn * ONEDNN_MIN_SPEEDUP < mkl
            log.info("fp32 linear %s: oneDNN %.1f ms, MKL %.1f ms per %d rows: %s", "×".join(map(str, key)),
                     1e3 * onednn, 1e3 * mkl, ONEDNN_PROBE_ROWS, "oneDNN" if self._faster[key] else "MKL")
        return self._faster[key]

    def route_linears(self, model: torch.nn.Module) -> int:
        """Route a CPU model's nn.Linear layers through oneDNN (weights untouched, ties kept);
        returns how many are routed (0 where oneDNN is missing or disagrees). In half precision
        every linear is routed, however small: its row tiles bound the shapes F.linear's oneDNN
        path would otherwise keep a kernel for."""
        linears = _routable(model)
        usable = bool(linears) and self.onednn_usable(linears[0].weight.dtype)
        routed = 0
        for module in linears:
            if usable and (module.weight.dtype != torch.float32 or self.onednn_faster(module.weight)):
                module.forward = types.MethodType(_linear_forward, module)
                routed += 1
            else:
                module.__dict__.pop("forward", None)
        return routed

    def linear_f32(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """x @ weight.T (+ bias) as float32, whatever the input dtype. Inputs are cast to the
        weights' dtype (a half-precision head takes half-precision inputs, accumulating in fp32)."""
        x = x.to(weight.dtype)
        on_cpu = x.device.type == "cpu"
        if x.dtype == torch.float32:
            if on_cpu and weight.numel() >= ONEDNN_MIN_WEIGHT and self.onednn_usable(torch.float32) \
                    and self.onednn_faster(weight):
                return onednn_linear(x, weight, bias)
            return F.linear(x, weight, bias)
        if on_cpu and self.onednn_usable(x.dtype):  # row tiles: a bounded set of kernel shapes (see above)
            return onednn_linear(x, weight, bias).float()
        if x.is_cuda and self._mm_out_dtype:
            try:
                logits = torch.mm(x, weight.t(), out_dtype=torch.float32)
                return logits if bias is None else logits + bias.float()
            except (RuntimeError, TypeError) as exc:  # an older torch without mm(out_dtype=)
                self._mm_out_dtype = False
                log.warning("fp32-output matmul unavailable (%s); the LM head rounds logits to %s", exc, x.dtype)
        return F.linear(x, weight, bias).float()


# The attention implementation `use_f32_attention` registers with transformers.
F32_ATTENTION = "focalscope_f32_sdpa"


def _f32_sdpa(module, query, key, value, attention_mask, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if attention_mask is not None and attention_mask.is_floating_point():
        attention_mask = attention_mask.float()
    output, weights = sdpa_attention_forward(module, query.float(), key.float(), value.float(), attention_mask, **kwargs)
    return output.to(query.dtype), weights


def use_f32_attention(model: torch.nn.Module) -> bool:
    """Run a half-precision CPU model's attention in float32 (transformers' SDPA path on upcast
    q, k, v); False where the architecture does not take a pluggable attention implementation."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(F32_ATTENTION, _f32_sdpa)
    AttentionMaskInterface.register(F32_ATTENTION, sdpa_mask)
    try:
        model.set_attn_implementation(F32_ATTENTION)
    except (ValueError, AttributeError, NotImplementedError) as exc:
        log.info("float32 attention unavailable for %s: %s", type(model).__name__, exc)
        return False
    return True


class Compiled:
    """`fn` with torch.compile applied — to `fn` itself, or in place to the repeated `blocks` it runs
    (modules) — that falls back to plain `fn` for good on the first compile error."""

    def __init__(self, fn, *, enabled: bool, blocks: list[torch.nn.Module] | None = None, dynamic: bool = True):
        self.eager, self.blocks, self.error = fn, blocks or [], None
        self.fn = fn
        if enabled and self.blocks:
            for block in self.blocks:
                block.compile(dynamic=dynamic)
        elif enabled:
            self.fn = torch.compile(fn, dynamic=dynamic)
        self.active = enabled

    def __call__(self, *args, **kwargs):
        if not self.active:
            return self.eager(*args, **kwargs)
        try:
            return self.fn(*args, **kwargs)
        except torch.OutOfMemoryError:
            raise  # not a compile problem: the caller splits the batch
        except Exception as exc:  # inductor/dynamo failures come in every exception type
            self.error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("torch.compile failed, running eager from now on: %s", self.error)
            for block in self.blocks:
                block._compiled_call_impl = None  # what nn.Module.compile set
            self.fn, self.active = self.eager, False
            return self.eager(*args, **kwargs)
