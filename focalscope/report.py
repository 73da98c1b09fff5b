"""`focalscope report REF --out report.html`: a study (or one experiment) as a self-contained offline
HTML report — plotly.min.js embedded from the installed plotly package, no network — with every chart
and table, the exact command, versions and seeds; and a Markdown summary beside it (same name, .md).

Numbers come from app.services.study.study_view, the tables' text from app.services.study_table (the
dashboard's Study page shows the same); every text from the data goes through html.escape.
"""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path

from plotly.offline import get_plotlyjs
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.services.study import study_view
from app.services.study_table import delta_rows, settings_rows, table_rows
from focalscope.report_charts import all_charts


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


def _markdown_table(rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
            + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows[1:]])


def _html_table(rows: list[list[str]]) -> str:
    return ("<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in rows[0]) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
            + "</tbody></table>")


def render_markdown(view: dict) -> str:
    rows = table_rows(view)
    lines = [f"# Study {view['study'].get('name', '')}", ""]
    lines += [f"- **{key}**: `{value}`" for key, value in settings_rows(view)]
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
    settings = "".join(f"<tr><th>{html.escape(k)}</th><td class=mono>{html.escape(v)}</td></tr>" for k, v in settings_rows(view))
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
