"""The Document view's parts in a real browser, on data built in the page (nothing to score: an
in-process app with an empty database serves the stylesheet and the modules, in a bare page of the
server): on a long document, the text's blocks of lines partition the tokens and change nothing in its
layout, and the painter colours the tokens in view at once and every other token in the next frames;
a checkpoint of the scrubber has the top-1's log p of every token, for the margin."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from playwright.sync_api import Page

from app.core.config import Settings
from app.db.base import Base
from app.main import create_app
from tests.support.browser import watched_page
from tests.support.live import live_app

pytestmark = pytest.mark.slow

LINES, PARAGRAPH = 600, 900  # lines of two tokens ("w12", "\n"), then one paragraph of PARAGRAPH tokens

# Builds the text (each token coloured by i mod 3 on a three-level palette, every fifth dimmed) at
# the top of the page; what it shows once paint() has returned, before the next frame.
BUILD = """async ([lines, paragraph]) => {
  const sheet = Object.assign(document.createElement("link"), { rel: "stylesheet", href: "/static/css/app.css" });
  await new Promise((resolve, reject) => { sheet.onload = resolve; sheet.onerror = reject; document.head.append(sheet); });
  const { documentText } = await import('/static/js/views/document/text.js');
  const { TokenPainter, palette } = await import('/static/js/views/document/painter.js');
  const pieces = [];
  for (let k = 0; k < lines; k += 1) pieces.push(`w${k}`, "\\n");
  for (let k = 0; k < paragraph; k += 1) pieces.push(` p${k}`);
  const charStart = [];
  const charEnd = [];
  let at = 0;
  for (const piece of pieces) { charStart.push(at); at += piece.length; charEnd.push(at); }
  const n = pieces.length;
  const text = documentText({ text: pieces.join("") }, { n_tokens: n, char_start: charStart, char_end: charEnd, loss: new Array(n).fill(0) });
  text.el.id = "long-text";
  document.body.prepend(text.el);
  const levels = palette([[255, 255, 255], [0, 0, 0], [200, 0, 0]]);
  new TokenPainter(text).paint({ min: 0, max: 2, invert: false, n, value: (i) => i % 3, dim: (i) => i % 5 === 0, colours: levels });
  const levelOf = (i) => levels.classes.find((name) => text.spans[i].classList.contains(name)) ?? null;
  window.longText = { text, levels, n };
  return {
    n, classes: levels.classes, firstShown: levelOf(0), lastShown: levelOf(n - 1),
    blocks: text.blocks.map((block) => [block.from, block.to, block.el.textContent.endsWith("\\n")]),
    sameText: text.el.textContent === pieces.join(""),
  };
}"""

# Tokens whose classes are not their level's (and dim for every fifth); the last token's background.
PAINTED = """() => {
  const { text, levels, n } = window.longText;
  const wrong = [];
  for (let i = 0; i < n; i += 1) {
    const list = text.spans[i].classList;
    if (!list.contains(levels.classes[i % 3]) || list.contains("dim") !== (i % 5 === 0)) wrong.push(i);
  }
  return { wrong, lastBackground: getComputedStyle(text.spans[n - 1]).backgroundColor };
}"""

# Every token's box with the blocks laid out, then with their contents put back into the text itself.
BOXES = """() => {
  const { text } = window.longText;
  const boxes = () => text.spans.map((span) => { const r = span.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; });
  for (const block of text.blocks) block.el.style.contentVisibility = "visible";
  const inBlocks = boxes();
  for (const block of text.blocks) block.el.replaceWith(...block.el.childNodes);
  return [inBlocks, boxes()];
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-document-text")
    settings = Settings(_env_file=None, data_dir=root, database_url=f"sqlite:///{root / 'db.sqlite'}",
                        model_roots=[root / "models"])
    app = create_app(settings)
    Base.metadata.create_all(app.state.engine)
    with live_app(app) as url:
        yield SimpleNamespace(url=url)


@pytest.fixture
def page(browser, server):
    with watched_page(browser, server) as instance:
        yield instance


def test_long_text_is_cut_at_line_ends_and_painted_in_view_first(page: Page):
    page.goto("/static/css/app.css")  # a page of the server, without the dashboard's scripts: its origin and policy
    built = page.evaluate(BUILD, [LINES, PARAGRAPH])
    n, blocks = built["n"], built["blocks"]
    assert built["sameText"]
    # The blocks partition the tokens in order; each but the last ends with a line break, and the
    # paragraph without one stays whole in the last block.
    assert len(blocks) > 1 and blocks[0][0] == 0 and blocks[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    assert all(ends for _, _, ends in blocks[:-1]) and blocks[-1][1] - blocks[-1][0] >= PARAGRAPH
    # Once paint() returns, the first token (in view) has its colour, the last (far below) not yet.
    assert built["firstShown"] == built["classes"][0] and built["lastShown"] is None

    page.wait_for_function("() => !document.getElementById('long-text').hasAttribute('aria-busy')")
    painted = page.evaluate(PAINTED)
    assert painted["wrong"] == []
    assert painted["lastBackground"] == ["rgb(255, 255, 255)", "rgb(0, 0, 0)", "rgb(200, 0, 0)"][(n - 1) % 3]

    in_blocks, flat = page.evaluate(BOXES)
    moved = [i for i in range(n) if in_blocks[i] != flat[i]]
    assert moved == [], f"{len(moved)} tokens move when the blocks are removed, first {moved[:3]}"


def test_a_checkpoint_of_the_scrubber_has_every_tokens_top1(page: Page):
    """The trajectory lists the top-1's log p only where the rank is above 0; a step's colouring
    source has it for every token (the true token's own where it is the top-1), for the margin."""
    page.goto("/static/css/app.css")
    top1 = page.evaluate("""async () => {
      const { stepSource } = await import('/static/js/views/document/scrubber.js');
      const trajectory = { n_tokens: 4, logprob: [[-1, -1], [-0.1, -2, -0.5, -3]], rank: [[0, 0], [0, 2, 0, 1]],
                           entropy: [[1, 1], [1, 1, 1, 1]], top1_logprob: [[], [-0.7, -0.2]] };
      return Array.from(stepSource(trajectory, 1).top1_logprob);
    }""")
    assert top1 == [-0.1, -0.7, -0.5, -0.2]
