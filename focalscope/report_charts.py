"""The report's charts, as plotly figure specs (plain data + layout dicts, drawn by the embedded
plotly.js) built from app.services.study.study_view's answer: across seeds as mean ± one standard
deviation (error bars), per step from the first seed's experiment. Plain dicts, not plotly's Python
figure objects: those validate every property and took most of a report's time."""

from __future__ import annotations

import json

import plotly.colors

from app.analytics.distribution import NUCLEUS_LEVELS
from app.services.study_table import heldout_by_step, series_by_loss

LAYOUT = {"height": 380, "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
          "legend": {"font": {"size": 10}}}


def _color(view: dict, loss: str) -> str:
    """One colour per loss in every chart (the table's order)."""
    palette = plotly.colors.qualitative.Plotly + plotly.colors.qualitative.Dark24
    order = list(view["table"])
    return palette[order.index(loss) % len(palette)] if loss in order else "#555"


class Chart:
    """A plotly figure spec: `data` (traces) and `layout`."""

    def __init__(self, layout: dict):
        self.data: list[dict] = []
        self.layout = layout

    def add_scatter(self, **trace) -> None:
        self.data.append({"type": "scatter", **_plotly_names(trace)})

    def add_bar(self, **trace) -> None:
        self.data.append({"type": "bar", **_plotly_names(trace)})

    def add_hline(self, y: float, line_dash: str = "dot", annotation_text: str | None = None) -> None:
        self.layout.setdefault("shapes", []).append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": y,
                                                     "y1": y, "line": {"dash": line_dash, "color": "#777"}})
        if annotation_text:
            self.layout.setdefault("annotations", []).append(
                {"xref": "paper", "x": 1, "y": y, "text": annotation_text, "showarrow": False, "yanchor": "bottom"})

    def to_json(self) -> str:
        # "<\/" for "</": a "</script>" inside a label must not end the script the spec is inlined into.
        return json.dumps({"data": self.data, "layout": self.layout}, default=_none).replace("</", "<\\/")


def _plotly_names(trace: dict) -> dict:
    """line_color= / marker_color= (plotly's "magic underscore" spelling) as nested dicts."""
    out: dict = {}
    for key, value in trace.items():
        if key in ("line_color", "marker_color"):
            out.setdefault(key.split("_")[0], {})["color"] = value
        else:
            out[key] = value
    return out


def _none(value):
    raise TypeError(f"not JSON: {value!r}")


def _figure(title: str, x_title: str, y_title: str, **layout) -> Chart:
    return Chart({**LAYOUT, "title": {"text": title}, "xaxis": {"title": {"text": x_title}},
                  "yaxis": {"title": {"text": y_title}}, **layout})


def heldout_over_steps(view: dict) -> Chart:
    fig = _figure("Held-out cross-entropy over training (mean ± sd over seeds)", "step", "held-out CE (nats)")
    for loss, curve in heldout_by_step(view).items():
        fig.add_scatter(x=curve["steps"], y=[m["mean"] for m in curve["stats"]], name=loss, mode="lines+markers",
                        error_y={"array": [m["sd"] or 0 for m in curve["stats"]], "visible": True},
                        line_color=_color(view, loss))
    return fig


def _bars(view: dict, metric: str, title: str, y_title: str, reference: float | None = None) -> Chart:
    fig = _figure(title, "loss", y_title)
    rows = [(loss, metrics[metric]) for loss, metrics in view["table"].items()]
    fig.add_bar(x=[loss for loss, _ in rows], y=[m["mean"] for _, m in rows], showlegend=False,
                marker_color=[_color(view, loss) for loss, _ in rows],
                error_y={"array": [m["sd"] or 0 for _, m in rows], "visible": True})
    if reference is not None:
        fig.add_hline(y=reference, line_dash="dot", annotation_text=f"{reference:g}")
    return fig


def delta_vs_ce(view: dict) -> Chart:
    fig = _figure("Held-out CE minus CE's, paired by seed (95% t-interval)", "loss", "Δ held-out CE (nats)")
    rows = [(loss, m["ce"]["vs_baseline"]) for loss, m in view["table"].items() if "vs_baseline" in m["ce"]]
    fig.add_bar(x=[loss for loss, _ in rows], y=[d["mean"] for _, d in rows], showlegend=False,
                marker_color=["#c0392b" if d["resolved"] else "#95a5a6" for _, d in rows],
                error_y={"array": [d["half_width"] or 0 for _, d in rows], "visible": True})
    fig.add_hline(y=0.0, line_dash="dot")
    return fig


def nucleus_reliability(view: dict) -> Chart:
    fig = _figure("Nucleus coverage: true token inside the smallest top-p set", "p", "coverage",
                  xaxis={"title": {"text": "p"}, "range": [0.45, 1.0]})
    fig.add_scatter(x=[0.45, 1.0], y=[0.45, 1.0], mode="lines", name="calibrated", line={"dash": "dot", "color": "#999"})
    for loss, metrics in view["table"].items():
        stats = [metrics[f"coverage_{level:g}"] for level in NUCLEUS_LEVELS]
        fig.add_scatter(x=list(NUCLEUS_LEVELS), y=[m["mean"] for m in stats], name=loss, mode="lines+markers",
                        error_y={"array": [m["sd"] or 0 for m in stats], "visible": True}, line_color=_color(view, loss))
    return fig


def entropy_vs_loss(view: dict) -> Chart:
    fig = _figure("Expected entropy vs realised loss (final models, first seed; equal-count bins)",
                  "mean predicted entropy (nats)", "mean loss (nats)")
    top = 0.0
    for loss, series in series_by_loss(view).items():
        last = next((c for c in reversed(series[0].checkpoints) if c.heldout), None)
        if last is None:
            continue
        bins = last.heldout.entropy_bins
        top = max([top, *(b["entropy"] for b in bins), *(b["loss"] for b in bins)])
        fig.add_scatter(x=[b["entropy"] for b in bins], y=[b["loss"] for b in bins], name=loss, mode="lines+markers",
                        line_color=_color(view, loss))
    fig.add_scatter(x=[0, top], y=[0, top], mode="lines", name="calibrated", line={"dash": "dot", "color": "#999"})
    return fig


def per_step(view: dict, column: str, title: str, y_title: str, log: bool = False) -> Chart:
    fig = _figure(title, "step", y_title, yaxis={"title": {"text": y_title}, "type": "log" if log else "linear"})
    for loss, series in series_by_loss(view).items():
        curve = series[0].curve
        rows = [(x, y) for x, y in zip(curve.step, getattr(curve, column)) if y is not None]
        if rows:
            fig.add_scatter(x=[x for x, _ in rows], y=[y for _, y in rows], name=loss, mode="lines",
                            line_color=_color(view, loss))
    return fig


def rare_frequent(view: dict) -> Chart:
    fig = _figure("Loss on rare vs frequent tokens (final, mean ± sd)", "loss", "held-out loss (nats)", barmode="group")
    for metric, name in (("rare_loss", "rarest 30% of the text"), ("frequent_loss", "most frequent 30%")):
        rows = [(loss, m[metric]) for loss, m in view["table"].items()]
        fig.add_bar(x=[loss for loss, _ in rows], y=[m["mean"] for _, m in rows], name=name,
                    error_y={"array": [m["sd"] or 0 for _, m in rows], "visible": True})
    return fig


def learned_at(view: dict) -> Chart:
    fig = _figure("Held-out tokens learned by each step (p ≥ 1/2 from then on; first seed)", "step", "share learned")
    for loss, curve in view.get("learned_at", {}).items():
        fig.add_scatter(x=curve["steps"], y=curve["learned_share"], name=loss, mode="lines+markers",
                        line_color=_color(view, loss))
    return fig


def all_charts(view: dict) -> list[tuple[str, Chart]]:
    """(id, figure) in report order."""
    return [
        ("delta-ce", delta_vs_ce(view)),
        ("heldout-ce", heldout_over_steps(view)),
        ("nucleus", nucleus_reliability(view)),
        ("temperature", _bars(view, "temperature", "Post-hoc temperature minimising held-out NLL (> 1: over-confident)",
                              "T", reference=1.0)),
        ("entropy-loss", entropy_vs_loss(view)),
        ("ece", _bars(view, "ece", "Top-label ECE (15 bins)", "ECE")),
        ("brier", _bars(view, "brier", "Brier score", "Brier")),
        ("rare-frequent", rare_frequent(view)),
        ("easy-share", _bars(view, "easy_share", "Share of easy tokens (p ≥ 0.5)", "share")),
        ("learned-at", learned_at(view)),
        ("train-ce", per_step(view, "ce_loss", "Training-batch cross-entropy per step (first seed)", "CE (nats)")),
        ("grad-norm", per_step(view, "grad_norm", "Gradient norm before clipping (first seed)", "‖g‖", log=True)),
        ("gamma", per_step(view, "gamma", "Effective γ per step (first seed)", "γ")),
    ]
