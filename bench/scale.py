"""`scale`: one worker, a long corpus — does memory stay flat and throughput constant?

`python -m bench.scale [--tokens 10000000] [--device cpu]`: a small random Llama (hidden 64, 2
layers, vocabulary 3072, so that a CPU gets through 10M tokens in minutes; on a GPU score_gpu runs
the same with SmolLM2's architecture) scores lognormal-length documents end to end through SQLite.
Samples after every committed shard: tokens done, resident memory, device memory. Prints
throughput per tenth of the run and records one line (baseline: the first tenth's throughput).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from app.schemas.run import RunOptions
from bench.common import cpu_name, peak_rss_mb, record, rss_mb
from bench.e2e import Database
from bench.reference import build, corpus

SMALL_LLAMA = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, vocab_size=3072, max_position_embeddings=2048)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=10_000_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-batch-tokens", type=int, default=8192)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    fp32, bf16 = build(SMALL_LLAMA, device)
    model = fp32 if device.type == "cpu" else bf16
    texts = corpus(SMALL_LLAMA["vocab_size"], args.tokens)
    samples: list[tuple[float, int, float, float]] = []
    done: dict[int, int] = {}
    dtype = "float32" if model.dtype == torch.float32 else "bfloat16"
    with tempfile.TemporaryDirectory() as tmp:
        # The run's dtype is the loaded model's, as when a worker loads the model for this run.
        database = Database(Path(tmp), texts, RunOptions(dtype=dtype), shard_chars=500_000, weights_sha256="scale")
        started = time.perf_counter()

        def on_progress(job_id, progress):
            done[job_id] = progress.tokens
            gpu = torch.cuda.memory_allocated() / 2**20 if device.type == "cuda" else 0.0
            samples.append((time.perf_counter() - started, sum(done.values()), rss_mb(), gpu))

        models = database.model_cache(model, device=str(device), max_batch_tokens=args.max_batch_tokens)
        tokens, seconds, scorer = database.score(model, models, on_progress=on_progress)
        database.close()
    tenths = []
    for k in range(1, 11):
        t0, n0 = next(((t, n) for t, n, *_ in samples if n >= (k - 1) * tokens / 10), samples[0][:2])
        t1, n1 = next(((t, n) for t, n, *_ in samples if n >= k * tokens / 10), samples[-1][:2])
        tenths.append((n1 - n0) / (t1 - t0) if t1 > t0 else None)  # None: no commit inside this tenth
    rss = [s[2] for s in samples]
    print(json.dumps({
        "tokens": tokens, "seconds": round(seconds, 1), "tokens_per_s_by_tenth": [x and round(x) for x in tenths],
        "rss_mib_at_10%_50%_100%": [round(rss[len(rss) // 10]), round(rss[len(rss) // 2]), round(rss[-1])],
        "padding": round(scorer.counters.padding_fraction, 4),
    }), flush=True)
    device_label = cpu_name() if device.type == "cpu" else torch.cuda.get_device_name(device)
    record(bench="scale", device=f"{device_label} (torch {torch.__version__})",
           model=f"small random Llama (hidden 64, 2 layers), {tokens / 1e6:.0f}M tokens, RSS "
                 f"{rss[len(rss) // 10]:.0f}→{rss[-1]:.0f} MiB from 10% to 100%",
           n_tokens=tokens, tokens_per_s=tokens / seconds, baselines={"first_tenth": tenths[0] or 0.0},
           peak_mem_mb=peak_rss_mb() if device.type == "cpu" else torch.cuda.max_memory_allocated() / 2**20)


if __name__ == "__main__":
    main()
