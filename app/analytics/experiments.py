"""What an experiment compares per checkpoint beyond a run summary's headline numbers, read from the
summary's stats (app.analytics.summary): loss on rare vs frequent tokens, and the share of easy tokens."""

from __future__ import annotations

# Frequency buckets (app.analytics.summary: 10 buckets of ~equal token mass, rarest types first)
# that count as "rare" and as "frequent" tokens: the rarest 30% of the text vs the most common 30%.
RARE_BUCKETS = 3
FREQUENT_BUCKETS = 3
# A token is "easy" when the model gives it at least this probability (the DESIGN's default threshold).
EASY_P = 0.5


def rare_and_frequent_loss(stats: dict) -> tuple[float | None, float | None]:
    """Mean loss on the rarest and on the most frequent tokens, from a summary's frequency buckets."""
    buckets = (stats.get("vocabulary") or {}).get("frequency_buckets") or []
    return bucket_loss(buckets[:RARE_BUCKETS]), bucket_loss(buckets[-FREQUENT_BUCKETS:])


def bucket_loss(buckets: list[dict]) -> float | None:
    """Token-weighted mean loss over frequency buckets (empty buckets carry no weight)."""
    tokens = sum(b["tokens"] for b in buckets if b.get("mean_loss") is not None)
    if not tokens:
        return None
    return sum(b["mean_loss"] * b["tokens"] for b in buckets if b.get("mean_loss") is not None) / tokens


def easy_share(histogram: dict | None, threshold: float = EASY_P) -> float | None:
    """Share of tokens with p ≥ threshold, from a p histogram whose edges include the threshold."""
    if not histogram or not histogram.get("counts"):
        return None
    counts, edges = histogram["counts"], histogram["edges"]
    total = sum(counts)
    if not total:
        return None
    return sum(c for c, lo in zip(counts, edges[:-1]) if lo >= threshold - 1e-9) / total
