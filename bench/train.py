"""Training throughput: tokens/s and model FLOPs utilisation (MFU) of the real trainer
(workers.training.trainer.Trainer), cross-entropy vs focal loss at the same settings.

    python -m bench.train --device cpu --preset tiny --steps 30             # this machine
    python -m bench.train --device cuda --preset base --compile both         # a GPU (bf16 autocast)

`--head both` (the default) times each loss with the LM head fused into the loss in row chunks
(workers/training/head_loss.py, the trainer's default) and with the plain head and full logits.

Data are random token ids (throughput does not depend on the text). Each variant warms up, then
times `--steps` updates end to end (data, forward, loss, backward, clip, AdamW, the per-step loss
read-back). MFU = (6·N + 12·L·d·T) · tokens/s / peak, N = parameters (tied embeddings once),
peak = the GPU's dense bf16 rate (H100/H200 SXM: 989 TFLOP/s) or, on a CPU, a measured fp32 matmul
rate. One results.jsonl line per variant; focal rows carry the CE rate of the same settings as
their `ce` baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from app.training_specs import PRESETS, parse_loss_spec
from bench.common import cpu_name, peak_rss_mb, profile_table, record
from workers.training.presets import build_model, count_parameters, model_config
from workers.training.trainer import TrainPlan, Trainer

DENSE_BF16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12}


class RandomBatches:
    """The BatchSampler interface over random ids, generated once on the device."""

    def __init__(self, vocab: int, batch_size: int, seq_len: int, device: torch.device, distinct: int = 8):
        generator = torch.Generator(device="cpu").manual_seed(0)
        self.windows = torch.randint(0, vocab, (distinct, batch_size, seq_len + 1), generator=generator).to(device)
        self.batch_size, self.seq_len = batch_size, seq_len

    def batch(self, step: int):
        window = self.windows[step % len(self.windows)]
        return window[:, :-1], window[:, 1:]

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len


def peak_flops(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, value in DENSE_BF16_PEAK.items():
            if key in name:
                return value, name
        return 989e12, name + " (peak assumed = H100)"
    size = 2048
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    started = time.perf_counter()
    for _ in range(5):
        a @ b
    return 5 * 2 * size**3 / (time.perf_counter() - started), cpu_name()


def run_variant(args, model: torch.nn.Module, loss: str, compile_model: bool, fused_head: bool,
                device: torch.device) -> dict:
    """Time one loss on `model` (shared between the losses of one compile mode and head: the compiled
    graph of the forward pass does not depend on the loss, and is then compiled once)."""
    preset = PRESETS[args.preset]
    vocab = args.vocab_size or preset.vocab_size
    seq_len = args.seq_len or preset.context
    batch = args.batch_size or preset.batch_size
    n_params = count_parameters(model)
    plan = TrainPlan(steps=args.warmup + args.steps, save_every=args.warmup + args.steps, lr=preset.lr,
                     loss=parse_loss_spec(loss))
    trainer = Trainer(model=model, sampler=RandomBatches(vocab, batch, seq_len, device), plan=plan, device=device,
                      compile=compile_model, fused_head=fused_head)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for index in range(args.warmup):
        trainer.train_step(index)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for index in range(args.warmup, args.warmup + args.steps):
        result = trainer.train_step(index)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - started
    if args.profile:
        steps = range(args.warmup + args.steps - 3, args.warmup + args.steps)  # the plan's last updates
        name = (f"profile-train-{args.preset}-{loss.replace(':', '')}{'-compiled' if compile_model else ''}"
                f"{'-fused' if fused_head else ''}.txt")
        train_step = trainer.train_step  # the closure must not name `trainer`, deleted below
        profile_table(lambda: list(map(train_step, steps)), Path(args.profile) / name, cuda=device.type == "cuda")
    tokens = args.steps * batch * seq_len
    flops_per_token = 6 * n_params + 12 * preset.n_layer * preset.d_model * seq_len
    memory = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else peak_rss_mb()
    del trainer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"loss": loss, "compile": compile_model, "fused_head": fused_head, "params": n_params, "batch": batch, "seq_len": seq_len,
            "vocab": vocab, "tokens": tokens, "tokens_per_s": tokens / elapsed, "flops_per_token": flops_per_token,
            "final_loss": result.loss, "peak_mem_mb": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", default="tiny", choices=tuple(PRESETS))
    parser.add_argument("--losses", default="ce,focal:2")
    parser.add_argument("--compile", choices=("off", "on", "both"), default="off")
    parser.add_argument("--head", choices=("fused", "plain", "both"), default="both",
                        help="LM head fused with the loss in row chunks (the trainer's default), the plain one, or both")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seq-len", type=int)
    parser.add_argument("--vocab-size", type=int)
    parser.add_argument("--json", help="also write every variant's numbers (with MFU) to this file")
    parser.add_argument("--profile", metavar="DIR", help="after timing, profile 3 updates per variant; tables into DIR")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    peak, device_name = peak_flops(device)
    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    rows = []
    preset = PRESETS[args.preset]
    config = model_config(preset, vocab_size=args.vocab_size or preset.vocab_size, bos_token_id=0, eos_token_id=0)
    heads = {"fused": [True], "plain": [False], "both": [False, True]}[args.head]
    for compile_model, fused_head in ((c, h) for c in compiles for h in heads):
        ce_rate = None
        model = build_model(config, seed=0).to(device)
        for loss in args.losses.split(","):
            try:
                row = run_variant(args, model, loss, compile_model, fused_head, device)
            except Exception as exc:  # a failing variant (e.g. compile) must not stop the others
                print(json.dumps({"loss": loss, "compile": compile_model, "fused_head": fused_head,
                                  "error": repr(exc)[:500]}), flush=True)
                continue
            row["mfu"] = row["flops_per_token"] * row["tokens_per_s"] / peak
            ce_rate = row["tokens_per_s"] if loss == "ce" else ce_rate
            if loss != "ce" and ce_rate:
                row["slowdown_vs_ce"] = ce_rate / row["tokens_per_s"] - 1
            rows.append(row)
            print(json.dumps(row), flush=True)
            label = (f"{args.preset} {PRESETS[args.preset].arch} {row['params'] / 1e6:.0f}M {loss}"
                     f"{' compiled' if compile_model else ''}{' fused-head' if fused_head else ''} b{row['batch']}x{row['seq_len']} MFU {row['mfu']:.1%}")
            record(bench="train", device=device_name, model=label, n_tokens=row["tokens"],
                   tokens_per_s=row["tokens_per_s"],
                   baselines={"ce": ce_rate} if loss != "ce" and ce_rate else {}, peak_mem_mb=row["peak_mem_mb"])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"device": device_name, "peak_flops": peak, "rows": rows}, out, indent=1)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
