"""The baseline of bench/summary.py: the run summary as focalscope computed it before it streamed (kept
verbatim for the benchmark only). It reads every token of the run into memory (read_run_arrays), then
sorts them all: exact np.quantile loss quantiles and a Lorenz curve over every token in order."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.analytics import calibration, focal
from app.analytics.summary import (
    BUDGET_FRACTIONS,
    ENTROPY_EDGES,
    FOCAL_GAMMAS,
    FREQUENCY_BUCKETS,
    GLTR_BUCKETS,
    LORENZ_POINTS,
    LOSS_EDGES,
    P_EDGES,
    QUANTILES,
    VOCAB_MIN_COUNT,
    VOCAB_TOP,
    RunArrays,
)
from app.models.run import TokenScores

# Rows fetched per round trip while reading a run's arrays.
READ_BATCH_ROWS = 256


def read_run_arrays(*, session: Session, run_id: int) -> RunArrays:
    columns = (TokenScores.n_tokens, TokenScores.top_k, TokenScores.token_id, TokenScores.logprob,
               TokenScores.entropy, TokenScores.rank, TokenScores.top_logprobs, TokenScores.sum_p2)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in RunArrays.__dataclass_fields__}
    result = session.execute(
        select(*columns).where(TokenScores.run_id == run_id).order_by(TokenScores.document_id)
        .execution_options(yield_per=READ_BATCH_ROWS)
    )
    for n, k, token_id, logprob, entropy, rank, top_logprobs, sum_p2 in result:
        if n == 0:
            continue
        parts["token_id"].append(token_id)
        parts["logprob"].append(logprob)
        parts["entropy"].append(entropy)
        parts["rank"].append(rank)
        parts["top1_logprob"].append(top_logprobs.reshape(n, k)[:, 0])
        parts["sum_p2"].append(sum_p2)
    empty = {"token_id": np.int32, "rank": np.int32}
    return RunArrays(**{
        name: np.concatenate(chunks) if chunks else np.empty(0, empty.get(name, np.float32))
        for name, chunks in parts.items()
    })


def summarize(arrays: RunArrays, token_text: dict[int, str]) -> dict:
    n = int(arrays.logprob.size)
    if n == 0:
        return {"n_tokens": 0, "mean_loss": 0.0, "perplexity": 1.0, "ece": 0.0, "brier": 0.0,
                "top1_accuracy": 0.0, "stats": {"empty": True}}
    logprob = arrays.logprob.astype(np.float64)
    loss = -logprob
    p = np.exp(logprob)
    correct = arrays.rank == 0
    reliability = calibration.reliability(np.exp(arrays.top1_logprob.astype(np.float64)), correct)
    brier = calibration.brier(logprob, arrays.sum_p2)
    mean_loss = float(loss.mean())
    stats = {
        "loss_histogram": _histogram(loss, LOSS_EDGES),
        "entropy_histogram": _histogram(arrays.entropy.astype(np.float64), ENTROPY_EDGES),
        "p_histogram": _histogram(p, P_EDGES),
        "loss_quantiles": {str(q): float(v) for q, v in zip(QUANTILES, np.quantile(loss, QUANTILES))},
        "gltr": _gltr(arrays.rank),
        "calibration": reliability,
        "focal": _focal_budget(logprob, arrays.sum_p2.astype(np.float64)),
        "vocabulary": _vocabulary(arrays.token_id, loss, p, token_text),
    }
    return {
        "n_tokens": n,
        "mean_loss": mean_loss,
        "perplexity": float(np.exp(min(mean_loss, 700.0))),
        "ece": reliability["ece"],
        "brier": float(brier.mean()),
        "top1_accuracy": float(correct.mean()),
        "stats": stats,
    }


def _histogram(values: np.ndarray, edges: np.ndarray) -> dict:
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return {"edges": edges.tolist(), "counts": counts.tolist(), "overflow": int((values > edges[-1]).sum())}


def _gltr(rank: np.ndarray) -> list[dict]:
    buckets = []
    for lo, hi in GLTR_BUCKETS:
        mask = rank >= lo if hi is None else (rank >= lo) & (rank < hi)
        label = f"≥{lo}" if hi is None else f"<{hi}"
        buckets.append({"label": label, "lo": lo, "hi": hi, "count": int(mask.sum())})
    return buckets


def _focal_budget(logprob: np.ndarray, sum_p2: np.ndarray) -> list[dict]:
    """For each γ: the share of the total gradient norm held by the hardest x% of tokens (a Lorenz
    curve, tokens sorted hardest first), and the effective number of tokens (Σw)²/Σw²."""
    order = np.argsort(logprob, kind="stable")  # lowest log p (hardest) first
    ce_norm = focal.ce_gradient_norm(logprob, sum_p2)[order]
    sorted_logprob = logprob[order]
    n = logprob.size
    curve_at = np.linspace(0, n, LORENZ_POINTS).astype(np.int64)
    result = []
    for gamma in FOCAL_GAMMAS:
        weight = focal.focal_weight(sorted_logprob, gamma)
        grad = np.abs(focal.gradient_multiplier(sorted_logprob, gamma)) * ce_norm
        cumulative = np.concatenate([[0.0], np.cumsum(grad)])
        total = cumulative[-1] if cumulative[-1] > 0 else 1.0
        result.append({
            "gamma": gamma,
            "effective_tokens": focal.effective_tokens(weight),
            "effective_fraction": focal.effective_tokens(weight) / n,
            "mean_focal_loss": float(focal.focal_loss(sorted_logprob, gamma).mean()),
            "budget_share": {str(f): float(cumulative[int(round(f * n))] / total) for f in BUDGET_FRACTIONS},
            "lorenz": [float(cumulative[i] / total) for i in curve_at],
        })
    return result


def _vocabulary(token_id: np.ndarray, loss: np.ndarray, p: np.ndarray, token_text: dict[int, str]) -> dict:
    """Per token type: count, mean loss, mean p; the hardest and easiest frequent types; and mean
    loss by frequency bucket (does difficulty follow rarity, as the class-imbalance story says?)."""
    types, inverse, counts = np.unique(token_id, return_inverse=True, return_counts=True)
    mean_loss = np.bincount(inverse, weights=loss) / counts
    mean_p = np.bincount(inverse, weights=p) / counts

    def row(i: int) -> dict:
        tid = int(types[i])
        return {"token_id": tid, "text": token_text.get(tid, ""), "count": int(counts[i]),
                "mean_loss": float(mean_loss[i]), "mean_p": float(mean_p[i])}

    frequent = np.flatnonzero(counts >= VOCAB_MIN_COUNT)
    by_loss = frequent[np.argsort(-mean_loss[frequent], kind="stable")]
    # Frequency buckets over tokens (not types): each bucket holds ~1/10 of the corpus's tokens,
    # from the rarest types to the most frequent ones.
    type_order = np.argsort(counts, kind="stable")
    token_share = np.cumsum(counts[type_order]) / counts.sum()
    bucket_of_type = np.empty_like(type_order)
    bucket_of_type[type_order] = np.minimum((token_share * FREQUENCY_BUCKETS - 1e-12).astype(np.int64), FREQUENCY_BUCKETS - 1)
    token_bucket = bucket_of_type[inverse]
    bucket_counts = np.bincount(token_bucket, minlength=FREQUENCY_BUCKETS)
    bucket_loss = np.bincount(token_bucket, weights=loss, minlength=FREQUENCY_BUCKETS)
    buckets = [
        {"bucket": b, "tokens": int(bucket_counts[b]),
         "mean_loss": float(bucket_loss[b] / bucket_counts[b]) if bucket_counts[b] else None}
        for b in range(FREQUENCY_BUCKETS)
    ]
    return {
        "n_types": int(types.size),
        "hardest": [row(i) for i in by_loss[:VOCAB_TOP]],
        "easiest": [row(i) for i in by_loss[::-1][:VOCAB_TOP]],
        "frequency_buckets": buckets,
    }
