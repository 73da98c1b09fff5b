"""The dashboard against a server that requires tokens (uvicorn in this process, no worker): it asks for
a token, says when one is refused, keeps the accepted one in the tab's sessionStorage and sends it, with
fetch and with the checkpoint upload's XMLHttpRequest; and the Content-Security-Policy is enforced (an
injected inline script does not run, and the violation watcher that every browser test uses sees it)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from playwright.sync_api import Page, expect

from app.core.config import Settings
from app.db.base import Base
from app.main import create_app
from app.services import corpora, corpus_files, tokens
from tests.support.browser import UI_TIMEOUT_MS, watched_page
from tests.support.csp import watch_csp
from tests.support.live import live_app
from tests.support.timing import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-access")
    settings = Settings(_env_file=None, data_dir=root, database_url=f"sqlite:///{root / 'db.sqlite'}",
                        require_token=True, model_roots=[root / "models"], max_checkpoint_upload_mb=0.01)
    app = create_app(settings)
    Base.metadata.create_all(app.state.engine)
    with app.state.sessions() as session:
        secret = tokens.create_token(session=session, name="reader", scope="read").secret
        corpora.create_corpus(session=session, name="guarded-corpus", description="",
                              documents=corpus_files.read_bytes("a.txt", b"Fair is foul."))
        session.commit()
    with live_app(app) as url:
        yield SimpleNamespace(url=url, secret=secret)


@pytest.fixture
def page(browser, guarded):
    with watched_page(browser, guarded) as instance:
        yield instance


def test_the_dashboard_asks_for_a_token_and_sends_it(page: Page, guarded):
    page.goto("/#/corpora")
    form = page.get_by_test_id("token-form")
    expect(form).to_contain_text("This server needs an API token")
    expect(form).to_contain_text("this server needs an API token with scope 'read'")

    form.get_by_label("API token").fill("fs_not-a-token")
    form.get_by_role("button", name="Use token").click()
    expect(form).to_contain_text("The server did not accept the token. the API token is unknown or revoked")

    form.get_by_label("API token").fill(guarded.secret)
    form.get_by_role("button", name="Use token").click()
    expect(page.get_by_test_id("corpus-row").filter(has_text="guarded-corpus")).to_be_visible()
    expect(page.get_by_test_id("token-form")).to_have_count(0)
    expect(page.get_by_test_id("health")).to_contain_text("busy worker")
    stored = page.evaluate("() => [sessionStorage.getItem('focalscope.token'), localStorage.length]")
    assert stored == [guarded.secret, 0]


def test_the_checkpoint_upload_shows_the_limit_and_sends_the_token(page: Page, guarded):
    page.goto("/#/models")
    form = page.get_by_test_id("token-form")
    form.get_by_label("API token").fill(guarded.secret)
    form.get_by_role("button", name="Use token").click()
    page.get_by_text("Upload a checkpoint").click()
    expect(page.get_by_test_id("upload-limit")).to_contain_text("Up to 10.2 KB per checkpoint")
    upload = page.get_by_role("form", name="Upload a checkpoint")
    status = page.get_by_test_id("upload-status")
    # Over the limit: refused in the page, before a byte is sent.
    upload.get_by_label("Checkpoint file", exact=True).set_input_files(
        {"name": "big.gguf", "mimeType": "application/octet-stream", "buffer": b"GGUF" + bytes(20 * 1024)})
    upload.get_by_role("button", name="Upload", exact=True).click()
    expect(status).to_contain_text("Cannot upload this")
    expect(status).to_contain_text("big.gguf is 20.0 KB; this server takes checkpoints of up to 10.2 KB.")
    expect(page.get_by_test_id("upload-progress")).to_have_attribute("data-state", "idle")
    # Sent with the tab's read token (without one the server would answer 401 and the token form come back).
    upload.get_by_label("Checkpoint file", exact=True).set_input_files(
        {"name": "small.gguf", "mimeType": "application/octet-stream", "buffer": b"GGUF"})
    upload.get_by_role("button", name="Upload", exact=True).click()
    expect(status).to_contain_text("this needs a token with scope 'write'; this token's scope is 'read'")
    expect(status).to_contain_text("HTTP 403")
    expect(page.get_by_test_id("token-form")).to_have_count(0)
    # Cancel aborts an upload in flight (held here, unanswered, in the page's network layer).
    page.route("**/api/v1/checkpoints/upload", lambda route: None)
    upload.get_by_role("button", name="Upload", exact=True).click()
    cancel = upload.get_by_role("button", name="Cancel")
    expect(cancel).to_be_enabled()
    cancel.click()
    expect(status).to_contain_text("Upload cancelled; nothing was registered.")
    expect(page.get_by_test_id("upload-progress")).to_have_attribute("data-state", "cancelled")
    expect(cancel).to_be_disabled()


def test_the_policy_blocks_an_injected_inline_script(browser, guarded):
    context = browser.new_context(base_url=guarded.url)
    context.set_default_timeout(UI_TIMEOUT_MS)
    violations: list[str] = []
    watch_csp(context, violations)
    page = context.new_page()
    page.goto("/static/css/app.css")  # any answer of the server carries the policy
    outcome = page.evaluate("""() => new Promise((resolve) => {
      document.addEventListener("securitypolicyviolation",
        (event) => resolve([window.injected === true, event.effectiveDirective]), { once: true });
      const script = document.createElement("script");
      script.textContent = "window.injected = true";
      document.body.append(script);
    })""")
    assert outcome == [False, "script-src-elem"]
    wait_until(lambda: any("script-src-elem blocked inline" in v for v in violations), what="the watcher's report")
    context.close()
