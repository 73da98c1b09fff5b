"""The Content-Security-Policy: scripts only from the app itself (no inline script, no code built from
strings: no 'unsafe-eval'), styles from the app plus the exact inline styles plotly injects, nothing
framed.

No 'unsafe-eval' thanks to plotly.js's strict bundle (frontend/vendor): the regular bundle compiles the
WebGL traces' drawing code (regl, behind the cartography scatter's `scattergl`) with `Function(...)`;
the strict one ships that code precompiled. The browser test that opens every view fails on a
violation, so a bundle that needs eval again shows up there.

Plotly adds `<style>` elements at run time: empty ones that it fills through the CSSOM (allowed by any
policy) and one with MapLibre's CSS. Instead of 'unsafe-inline', the policy allows those texts by
their sha256, read from the served bundle, so an update of it keeps working; a style it injects in
some new way shows up as a violation in the browser tests."""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path

# A string literal assigned to a style element's textContent in the minified bundle.
STYLE_TEXT = re.compile(r"createElement\(\"style\"\)[^']{0,300}?textContent='([^'\\]*)'")


def csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


@lru_cache(maxsize=4)
def injected_style_hashes(script: Path) -> tuple[str, ...]:
    """The CSP hashes of the empty text and of each style text the script assigns (read once per file)."""
    texts = {"", *STYLE_TEXT.findall(script.read_text(encoding="utf-8"))}
    return tuple(sorted(csp_hash(text) for text in texts))


def content_security_policy(style_hashes: tuple[str, ...] = ()) -> str:
    return "; ".join((
        "default-src 'self'", "script-src 'self'", " ".join(("style-src 'self'", *style_hashes)),
        # The favicon is a data: URL; plotly's "download as PNG" draws through data: and blob: images.
        "img-src 'self' data: blob:", "connect-src 'self'", "object-src 'none'", "base-uri 'none'",
        "form-action 'self'", "frame-ancestors 'none'",
    ))
