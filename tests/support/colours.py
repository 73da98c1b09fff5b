"""Reading colours back from the page: the document text's token backgrounds, rgb() values in CSS."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect


def backgrounds(page: Page, indexes: list[int]) -> list[str]:
    """Computed backgrounds of these tokens, once the text's deferred colours (if any) are written."""
    expect(page.get_by_test_id("document-text")).not_to_have_attribute("aria-busy", "true")
    return [page.locator(f'[data-testid="token"][data-index="{i}"]').evaluate("el => getComputedStyle(el).backgroundColor")
            for i in indexes]


def rgb_list(css: str) -> list[tuple[int, int, int]]:
    """Every rgb(r, g, b) colour in a computed CSS value, in order."""
    return [tuple(map(int, found)) for found in re.findall(r"rgb\((\d+), (\d+), (\d+)\)", css)]
