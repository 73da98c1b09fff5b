"""`focalscope report REF --out report.html`: a study (or one experiment) as a self-contained offline
HTML report — plotly.min.js embedded from the installed plotly package, no network — with every chart
and table, the exact command, versions and seeds; and a Markdown summary beside it (same name, .md).

Numbers come from app.services.study.study_view; every text from the data goes through html.escape.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from pathlib import Path

from plotly.offline import get_plotlyjs
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.services.study import study_view
from focalscope.report_charts import all_charts

# Columns of the summary table: (metric, header, digits).
COLUMNS = (
    ("ce", "held-out CE", 3), ("perplexity", "ppl", 1), ("ece", "ECE", 4), ("brier", "Brier", 4),
    ("coverage_0.5", "cover@0.5", 3), ("coverage_0.9", "cover@0.9", 3), ("coverage_0.95", "cover@0.95", 3),
    ("entropy_gap", "H − CE", 3), ("temperature", "best T", 3), ("temperature_gain", "NLL gain at T", 4),
    ("rare_loss", "rare loss", 3), ("frequent_loss", "frequent loss", 3), ("easy_share", "easy share", 3),
)


def add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ref", help="study name, or experiment id or name")
    parser.add_argument("--out", type=Path, required=True, help="HTML file to write (the Markdown summary goes beside it)")
    parser.add_argument("--images", type=Path, help="also save every chart as a PNG into this folder (headless Chromium)")


def report_command(args: argparse.Namespace, settings: Settings, sessions) -> int:
    with sessions() as session:
        markdown = write_report(session=session, ref=args.ref, out=args.out)
    print(markdown)
    print(f"report: {args.out} (and {args.out.with_suffix('.md')})")
    if args.images:
        from focalscope.report_images import ChartImagesUnavailable, save_chart_images

        try:
            for path in save_chart_images(args.out, args.images):
                print(f"chart: {path}")
        except ChartImagesUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return 0


def write_report(*, session: Session, ref: str, out: Path) -> str:
    """Write OUT (HTML) and OUT with .md; returns the Markdown."""
    view = study_view(session=session, ref=ref)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(view), encoding="utf-8")
    markdown = render_markdown(view)
    out.with_suffix(".md").write_text(markdown, encoding="utf-8")
    return markdown


def _cell(entry: dict, digits: int) -> str:
    if entry["mean"] is None:
        return "—"
    text = f"{entry['mean']:.{digits}f}"
    return text + (f" ± {entry['sd']:.{digits}f}" if entry["sd"] is not None else "")


def _delta(entry: dict) -> str:
    d = entry.get("vs_baseline")
    if d is None:
        return "baseline"
    if d["mean"] is None:
        return "—"
    if d["half_width"] is None:
        return f"{d['mean']:+.3f} (one seed)"
    verdict = "beyond seed noise" if d["resolved"] else "within seed noise"
    return f"{d['mean']:+.3f} ± {d['half_width']:.3f} ({verdict})"


def _collapse(view: dict, loss: str) -> str:
    flagged = [f"seed {seed}: {kind} at step {step}" for seed, row in sorted(view["runs"][loss].items())
               for kind, step in (row.get("collapse") or {}).items() if step is not None]
    return "; ".join(flagged) or "none"


def table_rows(view: dict) -> list[list[str]]:
    header = ["loss", "seeds", "Δ CE vs ce (95% CI)", *(h for _, h, _ in COLUMNS), "collapse"]
    rows = [header]
    for loss, metrics in view["table"].items():
        rows.append([loss, str(metrics["ce"]["n"]), _delta(metrics["ce"]),
                     *(_cell(metrics[c], digits) for c, _, digits in COLUMNS), _collapse(view, loss)])
    return rows


# Metrics whose difference from ce the second table tests (paired by seed, 95% t-interval).
DELTA_COLUMNS = (("ce", "held-out CE"), ("coverage_0.5", "cover@0.5"), ("coverage_0.9", "cover@0.9"),
                 ("entropy_gap", "H − CE"), ("temperature", "best T"), ("ece", "ECE"), ("rare_loss", "rare loss"),
                 ("frequent_loss", "frequent loss"))


def delta_rows(view: dict) -> list[list[str]]:
    """Per loss, each metric's difference from ce: "+0.012 ± 0.008 *" (* beyond the seed noise)."""
    rows = [["loss", *(h for _, h in DELTA_COLUMNS)]]
    for loss, metrics in view["table"].items():
        if "vs_baseline" not in metrics["ce"]:
            continue
        cells = []
        for metric, _ in DELTA_COLUMNS:
            d = metrics[metric].get("vs_baseline") or {}
            if d.get("mean") is None:
                cells.append("—")
            elif d.get("half_width") is None:
                cells.append(f"{d['mean']:+.3f}")
            else:
                cells.append(f"{d['mean']:+.3f} ± {d['half_width']:.3f}{' *' if d['resolved'] else ''}")
        rows.append([loss, *cells])
    return rows


def _markdown_table(rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
            + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows[1:]])


def _html_table(rows: list[list[str]]) -> str:
    return ("<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in rows[0]) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
            + "</tbody></table>")


def _settings(view: dict) -> list[tuple[str, str]]:
    study = view["study"]
    config = view["comparisons"][0].experiment.config if view["comparisons"] else {}
    shown = {k: config.get(k) for k in ("preset", "steps", "save_every", "batch_size", "seq_len", "lr",
                                         "vocab_size", "tokenizer")}
    return [("command", study.get("command", "")), ("seeds", ", ".join(map(str, study.get("seeds", [config.get("seed")])))),
            ("experiments", ", ".join(view["experiments"])), ("training", json.dumps(shown)),
            ("versions", json.dumps(study.get("versions", {}))), ("started", str(study.get("started", "")))]


def render_markdown(view: dict) -> str:
    rows = table_rows(view)
    lines = [f"# Study {view['study'].get('name', '')}", ""]
    lines += [f"- **{key}**: `{value}`" for key, value in _settings(view)]
    lines += ["", "Mean ± sample standard deviation over seeds, final checkpoint, held-out Macbeth acts I–II. "
              "Δ: paired by seed, 95% t-interval; a difference inside it is within the seed noise.", ""]
    lines += _markdown_table(rows)
    lines += ["", "Differences from ce, paired by seed: mean ± 95% t half-width; * = beyond the seed noise.", ""]
    lines += _markdown_table(delta_rows(view))
    return "\n".join(lines + _samples_markdown(view)) + "\n"


def _samples_markdown(view: dict) -> list[str]:
    """The first seed's samples as code blocks (line breaks shown as ⏎, so each continuation is one line)."""
    series = [s for s in view["comparisons"][0].series if s.samples] if view["comparisons"] else []
    if not series:
        return []
    lines = ["", "Samples (first seed; same prompts, same sampling seed, top-p 0.9):"]
    for i, sample in enumerate(series[0].samples):
        lines += ["", "```text", f"prompt: {_one_line(sample.prompt)}"]
        lines += [f"{s.loss or s.name}: …{_one_line(s.samples[i].continuation)}" for s in series if i < len(s.samples)]
        lines.append("```")
    return lines


def _one_line(text: str) -> str:
    return text.replace("```", "ʼʼʼ").replace("\n", "⏎")


def _samples_html(view: dict) -> str:
    if not view["comparisons"]:
        return ""
    series = [s for s in view["comparisons"][0].series if s.samples]
    if not series:
        return "<p>No samples (the runs have not finished).</p>"
    blocks = []
    for i, sample in enumerate(series[0].samples):
        items = "".join(f"<tr><td>{html.escape(s.loss or s.name)}</td><td class=mono>…{html.escape(s.samples[i].continuation)}"
                        "</td></tr>" for s in series if i < len(s.samples))
        blocks.append(f"<h3>Prompt {i + 1}</h3><p class=mono>{html.escape(sample.prompt)}</p><table>{items}</table>")
    return "".join(blocks)


def render_html(view: dict) -> str:
    table = _html_table(table_rows(view)) + (
        "<p>Differences from ce, paired by seed: mean ± 95% t half-width; * = beyond the seed noise.</p>"
        + _html_table(delta_rows(view)))
    settings = "".join(f"<tr><th>{html.escape(k)}</th><td class=mono>{html.escape(v)}</td></tr>" for k, v in _settings(view))
    charts = "".join(
        f'<div class=chart id="chart-{cid}" data-chart="{cid}"></div>'
        f"<script>Plotly.newPlot('chart-{cid}', ...(f => [f.data, f.layout, {{displaylogo: false}}])({fig.to_json()}));</script>"
        for cid, fig in all_charts(view))
    title = html.escape(f"Study {view['study'].get('name', '')}")
    return f"""<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:1300px}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}}.mono{{font-family:monospace;white-space:pre-wrap}}
.chart{{width:100%;max-width:1000px;height:380px;margin:1em 0}}</style>
<script>{get_plotlyjs()}</script></head><body>
<h1>{title}</h1><table>{settings}</table>
<h2>Final checkpoints: mean ± sd over seeds</h2><p>Held-out: Macbeth acts I–II. Δ CE: paired by seed with a 95% t-interval;
“within seed noise” means the interval contains 0. Collapse: held-out CE more than 0.1 nats above its best; training CE
above 1.3× / gradient norm above 10× the median of the (up to) 20 logged steps before.</p>{table}
<h2>Charts</h2>{charts}
<h2>Samples (first seed, same prompts and sampling seed, top-p 0.9)</h2>{_samples_html(view)}
</body></html>"""
