"""`score_cpu`: the real SmolLM2-135M (GGUF → float32) on Shakespeare, on this machine's CPU.

`python -m bench.score_cpu [--rounds 2] [--scenes N]`: every variant and baseline scores the same
documents (Macbeth acts I–II, one document per scene, rolling windows of 2048) in round-robin, and
each keeps its best round (other processes share this machine). Variants: the scorer with every
per-token field in fp32 (tokenize → all fields as arrays), the same end to end through SQLite, and
bf16 weights (approximate, its deviation from fp32 measured and shown). Baselines, in the same run:
`naive` — fp32 transformers, one document at a time, log-probabilities only — and `lm_eval` —
lm-evaluation-harness `HFLM.loglikelihood_rolling`, batch size 1, on an untouched model copy.
Also measured: the fp32 ceiling, model FLOPs / matmul FLOP/s, for MKL (`F.linear`) and oneDNN.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from app.core.config import Settings
from app.schemas.run import RunOptions
from bench.common import cpu_name, logprob_deviation, peak_rss_mb, record
from bench.e2e import Database
from app.assets import smollm2_gguf
from focalscope.demo_assets import heldout_documents
from workers.models import gguf_as_safetensors, load_safetensors_dir
from workers.scoring.accel import LinearRouting, onednn_linear
from workers.scoring.scorer import Scorer
from workers.scoring.windows import rolling_windows

MODEL = "SmolLM2-135M-Instruct"
MAX_LENGTH = 2048
MAX_BATCH_TOKENS = 4096  # Settings.max_batch_tokens' default


def naive(loaded, texts: list[str]) -> float:
    """Σ log p per document the plain way: one window at a time, full logits, log_softmax, gather."""
    total = 0.0
    with torch.inference_mode():
        for text in texts:
            tokens = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
            for window in rolling_windows(tokens, loaded.prefix_token_id, MAX_LENGTH):
                logits = loaded.model(input_ids=torch.tensor([window.input_ids])).logits[0, window.score_from :]
                targets = torch.tensor(tokens[window.doc_offset : window.doc_offset + window.n_scored])
                total += torch.log_softmax(logits.float(), -1).gather(1, targets[:, None]).sum().item()
    return total


def lm_eval_rolling(loaded, texts: list[str]) -> list[float]:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, max_length=MAX_LENGTH, batch_size=1, device="cpu")
    requests = [Instance(request_type="loglikelihood_rolling", doc={}, arguments=(t,), idx=i) for i, t in enumerate(texts)]
    return list(lm.loglikelihood_rolling(requests, disable_tqdm=True))


def matmul_rates(config, rows: int = 2048) -> dict[str, float]:
    """FLOP/s of the model's own linear shapes (rows × in → out) with MKL and with oneDNN."""
    d, inter, kv = config.hidden_size, config.intermediate_size, config.num_key_value_heads * (config.hidden_size // config.num_attention_heads)
    shapes = [(d, d), (d, kv), (d, kv), (d, d), (d, inter), (d, inter), (inter, d), (d, config.vocab_size)]
    rates = {}
    for name, fn in (("mkl", lambda x, w: F.linear(x, w)), ("onednn", lambda x, w: onednn_linear(x, w, None))):
        flops, seconds = 0, 0.0
        for n_in, n_out in shapes:
            x, w = torch.randn(rows, n_in), torch.randn(n_out, n_in)
            fn(x, w)
            best = min(_timed(fn, x, w) for _ in range(3))
            flops, seconds = flops + 2 * rows * n_in * n_out, seconds + best
        rates[name] = flops / seconds
    return rates


def _timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def model_flops(config, scorer: Scorer, token_counts: list[int]) -> float:
    """Forward FLOPs of scoring these documents: every window's linears and causal attention, and
    the LM head on scored positions only (what the scorer computes)."""
    d, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    kv = config.num_key_value_heads * (d // config.num_attention_heads)
    per_position = 2 * layers * (2 * d * d + 2 * d * kv + 3 * d * inter)
    flops = 0.0
    for n in token_counts:
        for span in scorer.spans(n):
            # QKᵀ and PV: 2 · 2 · d FLOPs per (query, key) pair, (L + 1) · L / 2 pairs under the causal mask.
            flops += span.length * per_position + 2 * d * layers * span.length * (span.length + 1)
        flops += n * 2 * d * config.vocab_size
    return flops


def rounds(variants: dict, n_rounds: int, n_tokens: int) -> dict[str, float]:
    """Run every variant `n_rounds` times in round-robin; each one's best tokens/s (a variant may
    return its own seconds, else it is timed whole)."""
    best: dict[str, float] = {}
    for round_ in range(n_rounds):
        for name, run in variants.items():
            started = time.perf_counter()
            inner = run()
            seconds = inner if isinstance(inner, float) else time.perf_counter() - started
            best[name] = max(best.get(name, 0.0), n_tokens / seconds)
            print(f"round {round_ + 1} {name}: {n_tokens / seconds:,.0f} tokens/s", flush=True)
    return best


def measure(models: dict, texts: list[str], n_rounds: int, routing: LinearRouting):
    """Every variant and baseline on `texts`; returns (best tokens/s by variant, results, fp32 scorer,
    per-document token counts)."""
    documents = list(enumerate(texts, start=1))
    ours, plain = models["ours"], models["plain"]
    scorer = Scorer(ours, RunOptions(), max_batch_tokens=MAX_BATCH_TOKENS, routing=routing)
    bf16_scorer = Scorer(models["bf16"], RunOptions(dtype="bfloat16"), max_batch_tokens=MAX_BATCH_TOKENS, routing=routing)
    reference = scorer.score(documents)  # warm-up, and the fp32 arrays bf16 is compared with
    bf16_scorer.score(documents[:2])  # oneDNN's bf16 kernels are slow on their first calls
    counts = [r.n_tokens for r in reference]
    n_tokens = sum(counts)
    print(f"{len(texts)} documents, {n_tokens} tokens, longest {max(counts)}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        database = Database(Path(tmp), texts, RunOptions(), shard_chars=Settings().shard_chars, weights_sha256="smollm2")

        def e2e():
            database.reset()
            cache = database.model_cache(ours, device="cpu", routing=routing, max_batch_tokens=MAX_BATCH_TOKENS)
            tokens, seconds, _ = database.score(ours, cache)
            assert tokens == n_tokens
            return seconds

        best = rounds({
            "ours_fp32": lambda: results.__setitem__("fp32", scorer.score(documents)),
            "ours_e2e_sqlite": e2e,
            "ours_bf16": lambda: results.__setitem__("bf16", bf16_scorer.score(documents)),
            "naive": lambda: results.__setitem__("naive", naive(plain, texts)),
            "lm_eval": lambda: results.__setitem__("lm_eval", lm_eval_rolling(plain, texts)),
        }, n_rounds, n_tokens)
        database.close()
    return best, results, scorer, counts


def report(best: dict[str, float], results: dict, config, scorer: Scorer, counts: list[int]) -> None:
    """Check the variants against each other and the baselines, print the summary, record it."""
    fp32_totals = np.array([r.arrays["logprob"].astype(np.float64).sum() for r in results["fp32"]])
    lm_eval_totals = np.array(results["lm_eval"])
    assert np.allclose(fp32_totals, lm_eval_totals, rtol=1e-4), (fp32_totals, lm_eval_totals)
    assert abs(fp32_totals.sum() / results["naive"] - 1) < 1e-4
    bf16 = logprob_deviation(results["fp32"], results["bf16"])
    n_tokens = sum(counts)

    rates = matmul_rates(config)
    flops = model_flops(config, scorer, counts)
    ceilings = {name: n_tokens / (flops / rate) for name, rate in rates.items()}
    print(f"matmul GFLOP/s: {', '.join(f'{k} {v / 1e9:.0f}' for k, v in rates.items())}; "
          f"{flops / n_tokens / 1e6:.0f} MFLOP per scored token; fp32 ceiling tokens/s: "
          f"{', '.join(f'{k} {v:.0f}' for k, v in ceilings.items())}; ours fp32 at "
          f"{best['ours_fp32'] / ceilings['onednn']:.0%} of the oneDNN ceiling, "
          f"{best['ours_fp32'] / ceilings['mkl']:.0%} of the MKL one; padding {scorer.counters.padding_fraction:.1%}", flush=True)
    print(f"bf16 vs fp32: |Δ logprob| p99 {bf16['p99']:.3f}, max {bf16['max']:.3f}; "
          f"document totals within {bf16['max_total_rel']:.1e} relative", flush=True)

    baselines = {"naive": best["naive"], "lm_eval": best["lm_eval"]}
    device, peak = f"{cpu_name()} (torch {torch.__version__}, {torch.get_num_threads()} threads)", peak_rss_mb()
    common = dict(bench="score_cpu", device=device, n_tokens=n_tokens, baselines=baselines, peak_mem_mb=peak)
    record(model=f"{MODEL} fp32, all fields (fp32 ceiling: oneDNN {ceilings['onednn']:.0f}, MKL {ceilings['mkl']:.0f} tokens/s)",
           tokens_per_s=best["ours_fp32"], **common)
    record(model=f"{MODEL} fp32, all fields, end to end: SQLite → committed", tokens_per_s=best["ours_e2e_sqlite"], **common)
    record(model=f"{MODEL} bf16 APPROXIMATE (|Δlogprob| vs fp32: p99 {bf16['p99']:.2f}, "
                 f"max {bf16['max']:.2f}; totals {bf16['max_total_rel']:.0e} rel)", tokens_per_s=best["ours_bf16"], **common)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scenes", type=int, default=None, help="only the first N scenes")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    gguf = smollm2_gguf()
    directory = gguf_as_safetensors(gguf, hashlib.sha256(gguf.read_bytes()).hexdigest(), Settings().cache_dir)
    cpu = torch.device("cpu")
    models = {
        "plain": load_safetensors_dir(directory, device=cpu, dtype=torch.float32),  # baselines: untouched
        "ours": load_safetensors_dir(directory, device=cpu, dtype=torch.float32),
        "bf16": load_safetensors_dir(directory, device=cpu, dtype=torch.bfloat16),
    }
    texts = [d.text for d in heldout_documents()][: args.scenes]
    # As in a worker: linear kernels are timed once, for every scorer of this process.
    best, results, scorer, counts = measure(models, texts, args.rounds, LinearRouting())
    report(best, results, models["ours"].model.config, scorer, counts)


if __name__ == "__main__":
    main()
