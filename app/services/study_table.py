"""A study's tables as text, shared by `focalscope report` (focalscope/report.py) and the dashboard's
Study page (GET /api/v1/studies/{name}), so that both show the same cells: mean ± sd per loss over the
seeds, each loss's difference from ce paired by seed with its 95% t half-width, the collapse flags,
the settings (command, seeds, versions) and the held-out CE per step across seeds. Input: the dict of
app.services.study.study_view."""

from __future__ import annotations

import json

from app.analytics.study import mean_spread
from app.services.study import loss_label

# Columns of the summary table: (metric, header, digits).
COLUMNS = (
    ("ce", "held-out CE", 3), ("perplexity", "ppl", 1), ("ece", "ECE", 4), ("brier", "Brier", 4),
    ("coverage_0.5", "cover@0.5", 3), ("coverage_0.9", "cover@0.9", 3), ("coverage_0.95", "cover@0.95", 3),
    ("entropy_gap", "H − CE", 3), ("temperature", "best T", 3), ("temperature_gain", "NLL gain at T", 4),
    ("rare_loss", "rare loss", 3), ("frequent_loss", "frequent loss", 3), ("easy_share", "easy share", 3),
)
# Metrics whose difference from ce the second table tests (paired by seed, 95% t-interval).
DELTA_COLUMNS = (("ce", "held-out CE"), ("coverage_0.5", "cover@0.5"), ("coverage_0.9", "cover@0.9"),
                 ("entropy_gap", "H − CE"), ("temperature", "best T"), ("ece", "ECE"), ("rare_loss", "rare loss"),
                 ("frequent_loss", "frequent loss"))
TABLE_HEADER = ["loss", "seeds", "Δ CE vs ce (95% CI)", *(h for _, h, _ in COLUMNS), "collapse"]
DELTA_HEADER = ["loss", *(h for _, h in DELTA_COLUMNS)]


def cell(entry: dict, digits: int) -> str:
    if entry["mean"] is None:
        return "—"
    text = f"{entry['mean']:.{digits}f}"
    return text + (f" ± {entry['sd']:.{digits}f}" if entry["sd"] is not None else "")


def delta_text(entry: dict) -> str:
    d = entry.get("vs_baseline")
    if d is None:
        return "baseline"
    if d["mean"] is None:
        return "—"
    if d["half_width"] is None:
        return f"{d['mean']:+.3f} (one seed)"
    verdict = "beyond seed noise" if d["resolved"] else "within seed noise"
    return f"{d['mean']:+.3f} ± {d['half_width']:.3f} ({verdict})"


def collapse_flags(view: dict, loss: str) -> list[tuple[int, str, int]]:
    """(seed, kind, step) of every collapse sign of the loss's runs, seed order."""
    return [(seed, kind, step) for seed, row in sorted(view["runs"][loss].items())
            for kind, step in (row.get("collapse") or {}).items() if step is not None]


def collapse_text(view: dict, loss: str) -> str:
    return "; ".join(f"seed {seed}: {kind} at step {step}" for seed, kind, step in collapse_flags(view, loss)) or "none"


def table_rows(view: dict) -> list[list[str]]:
    """The header, then per loss: seeds, Δ CE vs ce, every COLUMNS cell, collapse."""
    rows = [TABLE_HEADER]
    for loss, metrics in view["table"].items():
        rows.append([loss, str(metrics["ce"]["n"]), delta_text(metrics["ce"]),
                     *(cell(metrics[c], digits) for c, _, digits in COLUMNS), collapse_text(view, loss)])
    return rows


def noise_verdict(difference: dict) -> str | None:
    """"beyond" or "within" the seed noise; None without an interval (one seed, or no value)."""
    if difference.get("mean") is None or difference.get("half_width") is None:
        return None
    return "beyond" if difference["resolved"] else "within"


def delta_cells(metrics: dict) -> list[tuple[str, str | None]]:
    """Each DELTA_COLUMNS metric's difference from ce as (text, noise_verdict)."""
    cells = []
    for metric, _ in DELTA_COLUMNS:
        d = metrics[metric].get("vs_baseline") or {}
        if d.get("mean") is None:
            text = "—"
        elif d.get("half_width") is None:
            text = f"{d['mean']:+.3f}"
        else:
            text = f"{d['mean']:+.3f} ± {d['half_width']:.3f}{' *' if d['resolved'] else ''}"
        cells.append((text, noise_verdict(d)))
    return cells


def delta_rows(view: dict) -> list[list[str]]:
    """Per loss but ce, each metric's difference from ce: "+0.012 ± 0.008 *" (* beyond the seed noise)."""
    return [DELTA_HEADER, *([loss, *(text for text, _ in delta_cells(metrics))]
                            for loss, metrics in view["table"].items() if "vs_baseline" in metrics["ce"])]


def settings_rows(view: dict) -> list[tuple[str, str]]:
    """(name, value): the command that reruns the study, seeds, experiments, training options, versions."""
    study = view["study"]
    config = view["comparisons"][0].experiment.config if view["comparisons"] else {}
    shown = {k: config.get(k) for k in ("preset", "steps", "save_every", "batch_size", "seq_len", "lr",
                                         "vocab_size", "tokenizer")}
    return [("command", study.get("command", "")), ("seeds", ", ".join(map(str, study.get("seeds", [config.get("seed")])))),
            ("experiments", ", ".join(view["experiments"])), ("training", json.dumps(shown)),
            ("versions", json.dumps(study.get("versions", {}))), ("started", str(study.get("started", "")))]


def series_by_loss(view: dict) -> dict[str, list]:
    """loss label -> its series in every experiment (seed order)."""
    found: dict[str, list] = {}
    for comparison in view["comparisons"]:
        for series in comparison.series:
            found.setdefault(loss_label(series.loss), []).append(series)
    return found


def heldout_by_step(view: dict) -> dict[str, dict]:
    """Per loss: the checkpoint steps after 0 and the held-out CE's mean_spread over seeds at each."""
    curves = {}
    for loss, series in series_by_loss(view).items():
        steps = sorted({c.step for s in series for c in s.checkpoints if c.heldout and c.step > 0})
        curves[loss] = {"steps": steps, "stats": [
            mean_spread(next((c.heldout.ce for c in s.checkpoints if c.step == step and c.heldout), None) for s in series)
            for step in steps]}
    return curves
