"""The report's charts as PNG files, rendered by headless Chromium (playwright) from the HTML report
itself — so the images are exactly the report's charts, offline (plotly is embedded), without kaleido."""

from __future__ import annotations

import os
from pathlib import Path

# Chromium to drive: FOCALSCOPE_CHROMIUM, else the system one.
CHROMIUM = os.environ.get("FOCALSCOPE_CHROMIUM", "/usr/bin/chromium")
RENDER_TIMEOUT_MS = 30_000


def save_chart_images(report: Path, folder: Path) -> list[Path]:
    """One PNG per chart of `report` (an HTML report), named after the chart's id; returns the paths."""
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
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
