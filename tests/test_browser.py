"""The dashboard in a real browser against a real server (datasette's habit): `focalscope serve` on a
free port with one CPU worker, seeded over the REST API with a tiny random Llama and a three-document
corpus (newlines, unicode, an emoji, and markup that must stay text), then driven with Playwright and
the system Chromium. Elements are located by role, label or test id.

    .venv/bin/python -m pytest tests/test_browser.py -q
"""

from __future__ import annotations

import re
import shutil
import tarfile

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import MARKUP_LINE, MARKUP_TITLE, Seeded, Server, api_get, fixed, seed, serving

# Every page shows the seeded run: seed before the first test asks for a page.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("seeded")]

@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_llama_dir):  # noqa: F811
    root = tmp_path_factory.mktemp("browser")
    with serving(root / "data", [tiny_llama_dir]) as srv:
        yield srv


@pytest.fixture(scope="module")
def seeded(server, tiny_llama_dir) -> Seeded:  # noqa: F811
    try:
        return seed(server.url, tiny_llama_dir)
    except Exception as error:
        raise AssertionError(f"{error}\n--- server log ---\n{server.log()}") from error


def document_by_title(seeded: Seeded, title: str) -> dict:
    return next(d for d in seeded.documents if d["title"] == title)


def test_runs_page_lists_the_done_run(page: Page, seeded: Seeded):
    run = seeded.run
    page.goto("/#/runs")
    row = page.get_by_test_id("run-row").filter(has=page.get_by_role("link", name=f"#{run['id']}", exact=True))
    expect(row.get_by_test_id("status")).to_have_text("done")
    expect(row).to_contain_text("tiny-llama@100")
    expect(row).to_contain_text("macbeth-bits")
    expect(row.get_by_test_id("mean-loss")).to_have_text(fixed(page, run["summary"]["mean_loss"], 3))
    progress = row.get_by_role("progressbar")
    expect(progress).to_have_attribute("aria-valuenow", str(run["progress"]["documents_total"]))
    expect(progress).to_have_attribute("aria-valuemax", "3")
    expect(page.get_by_role("link", name="Runs")).to_have_attribute("aria-current", "page")


def test_run_page_shows_statistics_charts_and_documents(page: Page, server: Server, seeded: Seeded):
    run = seeded.run
    page.goto(f"/#/runs/{run['id']}")
    stats = page.get_by_test_id("run-stats")
    expect(stats).to_contain_text(f"{run['summary']['n_tokens']:,}")
    expect(stats).to_contain_text(fixed(page, run["summary"]["mean_loss"], 3))

    histogram = page.get_by_test_id("loss-histogram")
    expect(histogram).to_have_class(re.compile(r"\bjs-plotly-plot\b"))
    bars = histogram.locator("g.trace.bars g.point path")
    expect(bars.first).to_be_attached()
    nonzero_bins = sum(1 for c in run["summary"]["stats"]["loss_histogram"]["counts"] if c)
    assert bars.count() >= nonzero_bins
    for chart in ("reliability", "gltr", "focal-lorenz"):
        expect(page.get_by_test_id(chart).locator("svg.main-svg").first).to_be_attached()
    # One Lorenz curve per γ, plus the uniform diagonal.
    n_gammas = len(run["summary"]["stats"]["focal"])
    expect(page.get_by_test_id("focal-lorenz").locator("g.trace.scatter")).to_have_count(n_gammas + 1)
    expect(page.get_by_test_id("focal-table").locator("tbody tr")).to_have_count(n_gammas)

    rows = page.get_by_test_id("document-row")
    expect(rows).to_have_count(len(seeded.documents))
    for doc in seeded.documents:
        row = rows.filter(has=page.get_by_role("link", name=doc["title"], exact=True))
        expect(row).to_have_attribute("data-scored", "true")
        expect(row).to_contain_text(f"{doc['n_tokens']:,}")
        expect(row).to_contain_text(fixed(page, doc["mean_loss"], 3))
    expect(page.get_by_test_id("pending")).to_have_count(0)


def test_document_page_renders_every_token_and_the_exact_text(page: Page, server: Server, seeded: Seeded):
    run_id = seeded.run["id"]
    for doc in seeded.documents:
        tokens = api_get(server, f"/runs/{run_id}/documents/{doc['document_id']}/tokens")
        text = api_get(server, f"/documents/{doc['document_id']}")["text"]
        page.goto(f"/#/runs/{run_id}/documents/{doc['document_id']}")
        expect(page.get_by_test_id("token")).to_have_count(tokens["n_tokens"])
        assert tokens["n_tokens"] == doc["n_tokens"]
        # Tokens and the gaps between them give back the document, character for character.
        assert page.get_by_test_id("document-text").text_content() == text
        loss = [float(v) for v in page.get_by_test_id("token").evaluate_all("els => els.map(e => e.dataset.loss)")]
        assert loss == pytest.approx(tokens["loss"], rel=1e-6)
        indexes = page.get_by_test_id("token").evaluate_all("els => els.map(e => Number(e.dataset.index))")
        assert indexes == list(range(tokens["n_tokens"]))
        expect(page.get_by_test_id("legend")).to_contain_text("loss (nats)")


def test_hardest_and_easiest_tokens_get_different_colours(page: Page, server: Server, seeded: Seeded):
    run_id = seeded.run["id"]
    doc = document_by_title(seeded, "hamlet")
    tokens = api_get(server, f"/runs/{run_id}/documents/{doc['document_id']}/tokens")
    hardest = max(range(tokens["n_tokens"]), key=tokens["loss"].__getitem__)
    easiest = min(range(tokens["n_tokens"]), key=tokens["loss"].__getitem__)
    assert tokens["loss"][hardest] - tokens["loss"][easiest] > 1.0  # the check below means something
    page.goto(f"/#/runs/{run_id}/documents/{doc['document_id']}")

    def background(index: int) -> str:
        token = page.locator(f'[data-testid="token"][data-index="{index}"]')
        expect(token).to_have_attribute("data-loss", re.compile(r"\d"))
        return token.evaluate("el => getComputedStyle(el).backgroundColor")

    hard, easy = background(hardest), background(easiest)
    assert hard.startswith("rgb") and easy.startswith("rgb")
    assert hard != easy
    # Colouring by p keeps the order (a confident token is an easy one), so the colours stay apart.
    page.get_by_label("Colour by").select_option("p")
    expect(page.get_by_test_id("legend")).to_contain_text("p (true token)")
    assert background(hardest) != background(easiest)


def test_hover_shows_tooltip_with_top_k_alternatives(page: Page, server: Server, seeded: Seeded):
    run_id = seeded.run["id"]
    doc = document_by_title(seeded, "witches")
    tokens = api_get(server, f"/runs/{run_id}/documents/{doc['document_id']}/tokens", gamma=2)
    page.goto(f"/#/runs/{run_id}/documents/{doc['document_id']}")
    tooltip = page.get_by_test_id("token-tooltip")
    expect(tooltip).to_be_hidden()
    index = 5
    page.locator(f'[data-testid="token"][data-index="{index}"]').hover()
    expect(tooltip).to_be_visible()
    expect(tooltip.get_by_test_id("token-alternatives").locator("li")).to_have_count(tokens["top_k"])
    assert tokens["top_k"] == 5
    expect(tooltip).to_contain_text(f"{fixed(page, tokens['loss'][index], 3)} nats")
    expect(tooltip).to_contain_text(f"token {index} ")
    # The browser's focal weight (1-p)^γ agrees with the server's at the same γ.
    expect(tooltip).to_contain_text(fixed(page, tokens["focal_weight"][index], 4))
    expect(tooltip).to_contain_text(f"{tokens['context_len'][index]} tokens")

    # A whitespace-only token is shown visibly in the tooltip.
    newline = tokens["text"].index("\n")
    page.locator(f'[data-testid="token"][data-index="{newline}"]').hover()
    expect(tooltip.locator(".tok-chip-large")).to_have_text("↵")

    # Moving γ recomputes the focal weight client side: at γ = 0 every weight is 1.
    page.get_by_label("Focal γ").fill("0")
    page.locator(f'[data-testid="token"][data-index="{index}"]').hover()
    expect(tooltip).to_contain_text("focal w (γ=0)1.0000")


def test_byte_pieces_of_one_character_get_their_own_elements(page: Page, server: Server, seeded: Seeded):
    """Byte-level BPE splits "é" or an emoji into tokens with the same character span: the first shows
    the character, the others are empty (but visible, coloured and hoverable) elements."""
    run_id = seeded.run["id"]
    doc = document_by_title(seeded, "hamlet")
    tokens = api_get(server, f"/runs/{run_id}/documents/{doc['document_id']}/tokens")
    spans = list(zip(tokens["char_start"], tokens["char_end"]))
    pieces = [i for i in range(1, len(spans)) if spans[i] == spans[i - 1]]
    assert pieces, "the corpus should contain characters the tokenizer splits into bytes"
    page.goto(f"/#/runs/{run_id}/documents/{doc['document_id']}")
    piece = page.locator(f'[data-testid="token"][data-index="{pieces[0]}"]')
    expect(piece).to_have_text("")
    box = piece.bounding_box()
    assert box and box["width"] > 2 and box["height"] > 5
    piece.hover()
    tooltip = page.get_by_test_id("token-tooltip")
    expect(tooltip).to_contain_text("byte piece")
    expect(tooltip.locator(".tok-chip-large")).to_have_text(page.locator(
        f'[data-testid="token"][data-index="{pieces[0] - 1}"]').text_content())


def test_keyboard_focus_shows_tooltip_and_arrows_move(page: Page, seeded: Seeded):
    run_id = seeded.run["id"]
    doc = document_by_title(seeded, "witches")
    page.goto(f"/#/runs/{run_id}/documents/{doc['document_id']}")
    first = page.locator('[data-testid="token"][data-index="0"]')
    first.focus()
    tooltip = page.get_by_test_id("token-tooltip")
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text("token 0 ")
    page.keyboard.press("ArrowRight")
    expect(page.locator('[data-testid="token"][data-index="1"]')).to_be_focused()
    expect(tooltip).to_contain_text("token 1 ")
    page.keyboard.press("Escape")
    expect(tooltip).to_be_hidden()


def test_markup_in_documents_is_shown_as_text(page: Page, server: Server, seeded: Seeded):
    run_id = seeded.run["id"]
    doc = document_by_title(seeded, MARKUP_TITLE)
    # The run page lists the title as text.
    page.goto(f"/#/runs/{run_id}")
    expect(page.get_by_role("link", name=MARKUP_TITLE, exact=True)).to_be_visible()
    assert page.locator("main b, main img, main script").count() == 0

    page.goto(f"/#/runs/{run_id}/documents/{doc['document_id']}")
    text = page.get_by_test_id("document-text")
    expect(page.get_by_test_id("token")).to_have_count(doc["n_tokens"])
    expect(page.get_by_role("heading", level=1)).to_have_text(MARKUP_TITLE)
    assert MARKUP_LINE in text.text_content()
    assert text.locator("b").count() == 0
    assert page.locator("main b, main img, main script").count() == 0
    # The "<" token, on its own, is literal text in its own element.
    tokens = api_get(server, f"/runs/{run_id}/documents/{doc['document_id']}/tokens")
    markup_tokens = [i for i, t in enumerate(tokens["text"]) if "<" in t]
    assert markup_tokens
    expect(page.locator(f'[data-testid="token"][data-index="{markup_tokens[0]}"]')).to_have_text(tokens["text"][markup_tokens[0]])
    page.locator(f'[data-testid="token"][data-index="{markup_tokens[0]}"]').hover()
    expect(page.get_by_test_id("token-tooltip").locator(".tok-chip-large")).to_have_text(tokens["text"][markup_tokens[0]])


def test_api_errors_show_the_servers_message(page: Page):
    page.goto("/#/runs/99999")
    alert = page.get_by_role("alert").filter(has_text="run 99999 not found")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("HTTP 404")


def test_register_form_shows_the_servers_refusal(page: Page):
    page.goto("/#/models")
    page.get_by_text("Register a checkpoint").click()
    page.get_by_label("Server path").fill("/etc")
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.get_by_test_id("form-status")).to_contain_text("outside the server's model roots")


def test_upload_checkpoints_from_the_models_page(page: Page, tiny_llama_dir, tmp_path):
    """A .tar.gz of a safetensors directory; a checkpoint folder (sent as a tar built in the page, its
    other files left out), whose second upload the server recognises by the same sha256; pickle weights."""
    archive = tmp_path / "tiny-llama.tar.gz"
    with tarfile.open(archive, "w:gz") as bundle:
        for path in tiny_llama_dir.iterdir():
            bundle.add(path, f"tiny-llama/{path.name}")
    folder = shutil.copytree(tiny_llama_dir, tmp_path / "checkpoint-7")
    (folder / "optimizer.pt").write_bytes(b"\x80\x04K\x01.")
    (folder / "logs").mkdir()
    (folder / "logs" / "events.json").write_text("{}")
    page.goto("/#/models")
    page.get_by_text("Upload a checkpoint").click()
    expect(page.get_by_test_id("upload-limit")).to_contain_text("Up to 4.00 GB per checkpoint")
    form = page.get_by_role("form", name="Upload a checkpoint")
    status, progress = page.get_by_test_id("upload-status"), page.get_by_test_id("upload-progress")
    form.get_by_label("Checkpoint file", exact=True).set_input_files(archive)
    form.get_by_label("Series", exact=True).fill("uploaded-tiny")
    form.get_by_label("Step", exact=True).fill("5")
    form.get_by_role("button", name="Upload", exact=True).click()
    expect(status).to_contain_text("Uploaded and registered uploaded-tiny@5 (llama, safetensors,")
    expect(progress).to_have_attribute("data-state", "done")
    expect(progress).to_contain_text("sent (100%)")
    assert progress.locator("progress").evaluate("el => el.value === el.max && el.max > 100000")
    expect(page.get_by_test_id("checkpoints-table")).to_contain_text("uploaded-tiny@5")

    form.get_by_label("or a checkpoint folder", exact=True).set_input_files(folder)
    form.get_by_label("Series", exact=True).fill("")  # the folder's name
    form.get_by_label("Step", exact=True).fill("7")
    form.get_by_role("button", name="Upload", exact=True).click()
    expect(status).to_contain_text("Uploaded and registered checkpoint-7@7 (llama, safetensors,")
    expect(page.get_by_test_id("upload-left-out")).to_contain_text(
        "Left out 2 files that are no part of a checkpoint or in a subfolder: logs/events.json, optimizer.pt.")
    expect(page.get_by_test_id("checkpoints-table")).to_contain_text("checkpoint-7@7")
    form.get_by_role("button", name="Upload", exact=True).click()
    expect(status).to_contain_text("checkpoint-7@7 was registered already with these weights. "
                                   "The same file was uploaded before: its stored copy serves.")

    form.get_by_label("Checkpoint file", exact=True).set_input_files(
        {"name": "pytorch_model.bin", "mimeType": "application/octet-stream", "buffer": b"\x80\x04K\x01."})
    form.get_by_role("button", name="Upload", exact=True).click()
    expect(status).to_contain_text("pytorch_model.bin: pickle-based weights are never loaded")
    expect(status).to_contain_text("convert them to safetensors")
    expect(status).to_contain_text("HTTP 422")
    expect(progress).to_have_attribute("data-state", "failed")


def test_upload_corpus_through_the_form(page: Page, server: Server):
    page.goto("/#/corpora")
    page.get_by_text("Upload a corpus").click()
    page.get_by_label("Name").fill("uploaded-in-browser")
    page.get_by_label("Files").set_input_files([
        {"name": "a.txt", "mimeType": "text/plain", "buffer": "Out, damned spot!\n".encode()},
        {"name": "b.jsonl", "mimeType": "application/json", "buffer": b'{"text": "one"}\n{"text": "two", "title": "<i>t</i>"}\n'},
    ])
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_test_id("form-status")).to_contain_text("3 documents")
    row = page.get_by_test_id("corpus-row").filter(has_text="uploaded-in-browser")
    expect(row).to_be_visible()
    row.get_by_role("button", name="uploaded-in-browser").click()
    expect(page.get_by_test_id("corpus-documents")).to_contain_text("<i>t</i>")
    assert page.locator("main i").count() == 0
    # A second upload with the same name is refused, and the page says why.
    page.get_by_label("Name").fill("uploaded-in-browser")
    page.get_by_label("Files").set_input_files([{"name": "c.txt", "mimeType": "text/plain", "buffer": b"x"}])
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_test_id("form-status")).to_contain_text("exists already")


def test_pure_helpers_in_the_page(page: Page):
    """tokens.js, format.js and colors.js, imported as the dashboard imports them."""
    page.goto("/#/jobs")
    result = page.evaluate("""async () => {
      const t = await import('/static/js/tokens.js');
      const f = await import('/static/js/format.js');
      const c = await import('/static/js/colors.js');
      // "a🎭é b": the emoji is 1 code point (2 UTF-16 units) split into two byte pieces; "é" one token.
      const text = "a🎭é b";
      const segs = t.interleave(text, [0, 1, 1, 2, 4], [1, 2, 2, 3, 5]);
      const scale = c.makeScale({min: 0, max: 10});
      return {
        joined: segs.map(s => s.text).join(''),
        kinds: segs.map(s => s.kind + (s.continuation ? '+' : '')),
        visible: t.visibleText(" \\n\\t\\u0010x"),
        w: t.focalWeight(Math.log(0.25), 2),
        clamped: scale.color(50) === scale.color(10),
        distinct: scale.color(0) !== scale.color(10),
        prob: f.fmtProb(4.13e-5),
      };
    }""")
    assert result["joined"] == "a🎭é b"
    assert result["kinds"] == ["token", "token", "token+", "token", "gap", "token"]
    assert result["visible"] == "␣↵⇥␐x"
    assert result["w"] == pytest.approx(0.5625)
    assert result["clamped"] and result["distinct"]
    assert result["prob"] == "4.13e-5"
