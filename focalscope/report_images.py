"""The report's charts as PNG files, rendered by headless Chromium (playwright) from the HTML report
itself — so the images are exactly the report's charts, offline (plotly is embedded), without kaleido."""

from __future__ import annotations

import os
from pathlib import Path

# Chromium to drive: FOCALSCOPE_CHROMIUM, else the system one.
CHROMIUM = os.environ.get("FOCALSCOPE_CHROMIUM", "/usr/bin/chromium")
RENDER_TIMEOUT_MS = 30_000


class ChartImagesUnavailable(RuntimeError):
    """Playwright or Chromium is missing: the HTML report is written, its PNGs cannot be."""


def save_chart_images(report: Path, folder: Path) -> list[Path]:
    """One PNG per chart of `report` (an HTML report), named after the chart's id; returns the paths."""
    try:
        from playwright.sync_api import Error as PlaywrightError, sync_playwright
    except ImportError:
        raise ChartImagesUnavailable("--images needs playwright (pip install playwright) and Chromium") from None
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        except PlaywrightError as exc:
            raise ChartImagesUnavailable(f"cannot start Chromium at {CHROMIUM} (set FOCALSCOPE_CHROMIUM): "
                                         f"{str(exc).splitlines()[0]}") from None
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(report.resolve().as_uri())
            page.wait_for_selector(".chart .main-svg", timeout=RENDER_TIMEOUT_MS)
            for chart in page.query_selector_all(".chart"):
                path = folder / f"{chart.get_attribute('data-chart')}.png"
                chart.screenshot(path=str(path))
                saved.append(path)
        finally:
            browser.close()
    return saved
