"""A study's numbers across seeds: mean ± spread of a metric per loss, and each loss's difference from
the baseline (cross-entropy) paired by seed, called resolved only when it is larger than the seed noise.

Paired difference: d_s = metric(loss, seed s) − metric(ce, seed s) over the seeds both have; its mean
d̄, sample standard deviation s_d, and the 95% t half-width t_{0.975, n−1} · s_d / √n. The difference
is "resolved" when |d̄| exceeds that half-width (a paired t-test at 5%); otherwise it is within the
seed noise. With one seed there is no spread and nothing is resolved.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

# Two-sided 95% quantiles of Student's t for 1–10 degrees of freedom; beyond 10 the normal 1.96 is
# within 12% of the exact value (2.23 at 10).
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
T_975_NORMAL = 1.96


def t_quantile(degrees_of_freedom: int) -> float:
    return T_975.get(degrees_of_freedom, T_975_NORMAL)


def mean_spread(values: Iterable[float | None]) -> dict:
    """{mean, sd (sample, ddof=1; None below two values), n} of the values that are not None."""
    kept = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if not kept.size:
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": float(kept.mean()), "sd": float(kept.std(ddof=1)) if kept.size > 1 else None, "n": int(kept.size)}


def paired_difference(values: dict[int, float | None], baseline: dict[int, float | None]) -> dict:
    """Difference from the baseline, paired by seed: {mean, sd, n, half_width, resolved}."""
    pairs = [(values[s], baseline[s]) for s in values
             if s in baseline and values[s] is not None and baseline[s] is not None]
    diffs = np.array([a - b for a, b in pairs], dtype=np.float64)
    if not diffs.size:
        return {"mean": None, "sd": None, "n": 0, "half_width": None, "resolved": False}
    if diffs.size == 1:
        return {"mean": float(diffs[0]), "sd": None, "n": 1, "half_width": None, "resolved": False}
    sd = float(diffs.std(ddof=1))
    half = t_quantile(diffs.size - 1) * sd / math.sqrt(diffs.size)
    return {"mean": float(diffs.mean()), "sd": sd, "n": int(diffs.size), "half_width": half,
            "resolved": bool(abs(diffs.mean()) > half)}


def summarise_study(runs: dict[str, dict[int, dict]], metrics: Iterable[str], baseline: str = "ce") -> dict:
    """runs[loss][seed] = {metric: value}. Per loss and metric: mean_spread, and (losses other than the
    baseline) the paired difference from the baseline."""
    table: dict[str, dict] = {}
    base = runs.get(baseline, {})
    for loss, by_seed in runs.items():
        table[loss] = {}
        for metric in metrics:
            values = {seed: row.get(metric) for seed, row in by_seed.items()}
            entry = mean_spread(values.values())
            if loss != baseline and base:
                entry["vs_baseline"] = paired_difference(values, {s: row.get(metric) for s, row in base.items()})
            table[loss][metric] = entry
    return table
