"""Content-Security-Policy violations in a Playwright browser context, reported to a list: each page
reports its `securitypolicyviolation` events through an exposed function, and Chromium's console
messages about the policy are caught too (some blocks, such as an inline script in the HTML, are logged
before any script of the page could listen)."""

from __future__ import annotations

REPORTER = "__focalscopeCspViolation"
LISTEN = f"""document.addEventListener("securitypolicyviolation", (event) => window.{REPORTER}(
  `${{event.effectiveDirective}} blocked ${{event.blockedURI || "inline"}} at ${{event.sourceFile}}:${{event.lineNumber}}`));"""


def watch_csp(context, problems: list[str]) -> None:
    """Append a line to `problems` for every CSP violation in the pages of `context` (call before opening pages)."""
    context.expose_function(REPORTER, lambda text: problems.append(f"CSP violation: {text}"))
    context.add_init_script(LISTEN)
    context.on("page", lambda page: page.on("console", lambda message: _console(message, problems)))


def _console(message, problems: list[str]) -> None:
    if "Content Security Policy" in message.text:
        problems.append(f"CSP console: {message.text}")
