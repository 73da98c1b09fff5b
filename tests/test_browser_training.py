"""The experiments pages in a real browser against a real server: `focalscope serve` on a free port,
two corpora from The Tempest uploaded over the REST API, an experiment (ce vs focal:2, preset tiny,
6 steps, a checkpoint every 3) started through the form — after the server refused a bad loss with its
own message — then trained and scored by the server's worker while the page polls, and compared, side
by side and, through the final table's link, token by token in the Compare view.

    .venv/bin/python -m pytest tests/test_browser_training.py -q
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import (
    Server, api_get, fixed, seed_training_corpora, serving, wait_experiment_scored,
)
from tests.support.study_rows import seed_study_on_server

pytestmark = pytest.mark.slow

LOSSES = ["ce", "focal:2"]
STEPS, SAVE_EVERY = 6, 3
CHECKPOINT_STEPS = [0, 3, 6]
BATCH_SIZE, SEQ_LEN = 8, 64
CHARTS = ["train-loss", "heldout-loss", "perplexity", "ece", "rare-frequent", "easy-share"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("browser-training") / "data"
    with serving(data_dir, [data_dir / "models"]) as srv:
        yield srv


@pytest.fixture(scope="module")
def corpora(server):
    try:
        return seed_training_corpora(server.url)
    except Exception as error:
        raise AssertionError(f"{error}\n--- server log ---\n{server.log()}") from error


def trace_colors(page: Page, testid: str) -> list[str]:
    """The line colour of each trace of a Plotly chart, in trace order."""
    return page.get_by_test_id(testid).locator("g.trace.scatter path.js-line").evaluate_all(
        "els => els.map(e => getComputedStyle(e).stroke)")


def test_experiment_from_the_form_to_the_comparison(page: Page, server: Server, corpora):
    train, held_out = corpora
    page.goto("/#/experiments")
    expect(page.get_by_role("link", name="Experiments")).to_have_attribute("aria-current", "page")
    expect(page.get_by_test_id("experiments-table")).to_contain_text("No experiments yet")
    # With no experiment yet, the form is open.
    form = page.get_by_role("form", name="Start an experiment")
    expect(form).to_be_visible()
    form.get_by_label("Name").fill("tempest-cmp")
    form.get_by_label("Training corpus").select_option(str(train["id"]))
    form.get_by_label("Eval corpus").select_option(str(held_out["id"]))
    form.get_by_label("Preset").select_option("tiny")
    expect(page.get_by_test_id("preset-info")).to_contain_text("4 layers")
    form.get_by_label("Tokenizer").select_option("bpe")
    form.get_by_label("Steps").fill(str(STEPS))
    form.get_by_label("Save every").fill(str(SAVE_EVERY))
    form.get_by_label("Seed").fill("0")
    # Smaller batches than the preset's 16 × 256 tokens: the test waits on this training.
    form.get_by_text("Advanced: override the preset").click()
    expect(form.get_by_label("Batch size")).to_have_attribute("placeholder", "16")
    form.get_by_label("Batch size").fill(str(BATCH_SIZE))
    form.get_by_label("Sequence length").fill(str(SEQ_LEN))
    # The loss forms the server accepts are listed as help, from /training/losses.
    expect(page.get_by_test_id("loss-usage")).to_contain_text("focal:γ (e.g. focal:2)")

    # A bad loss: the server's own message, verbatim, in an alert; nothing is created.
    form.get_by_label("Losses").fill("ce, focal:-1")
    form.get_by_role("button", name="Start experiment").click()
    alert = page.get_by_role("alert").filter(has_text="loss 'focal:-1': γ (gamma) must be ≥ 0 and ≤ 20, got -1")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("HTTP 422")
    assert re.search(r"#/experiments$", page.url)

    form.get_by_label("Losses").fill(", ".join(LOSSES))
    # The page's plan agrees with the trainer's checkpoint steps (0, every save_every, the last).
    expect(page.get_by_test_id("experiment-plan")).to_contain_text(
        f"2 models × {STEPS} steps; {len(CHECKPOINT_STEPS)} checkpoints each (steps {', '.join(map(str, CHECKPOINT_STEPS))})")
    form.get_by_role("button", name="Start experiment").click()
    # Starting one opens its page.
    expect(page).to_have_url(re.compile(r"#/experiments/\d+$"))
    experiment_id = int(re.search(r"#/experiments/(\d+)$", page.url).group(1))
    expect(page.get_by_role("heading", level=1)).to_contain_text("tempest-cmp")

    # One progress row and one legend entry per loss, in the experiment's order.
    rows = page.get_by_test_id("series-row")
    expect(rows).to_have_count(2)
    assert rows.evaluate_all("els => els.map(e => e.dataset.loss)") == LOSSES
    expect(page.get_by_test_id("legend-item")).to_have_text(LOSSES)
    for chart in CHARTS:
        expect(page.get_by_test_id(f"chart-{chart}")).to_have_class(re.compile(r"\bjs-plotly-plot\b"))

    try:
        comparison = wait_experiment_scored(server.url, experiment_id)
    except AssertionError as error:
        raise AssertionError(f"{error}\n--- server log ---\n{server.log()[-6000:]}") from error
    assert [s["loss"] for s in comparison["series"]] == LOSSES
    assert comparison["experiment"]["train_corpus_id"] == train["id"]
    assert comparison["experiment"]["eval_corpus_id"] == held_out["id"]
    config = comparison["experiment"]["config"]
    assert (config["preset"], config["tokenizer"], config["steps"], config["save_every"]) == ("tiny", "bpe", STEPS, SAVE_EVERY)
    assert (config["batch_size"], config["seq_len"], config["lr"]) == (BATCH_SIZE, SEQ_LEN, 3e-3)

    # The page caught up by itself (it polls while anything is live): done, every step trained.
    expect(page.get_by_test_id("experiment-status")).to_have_text("done", timeout=20_000)
    for loss, row in zip(LOSSES, rows.all()):
        expect(row.get_by_test_id("status")).to_have_text("done")
        expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", str(STEPS))
        expect(row).to_contain_text(f"{len(CHECKPOINT_STEPS)} / {len(CHECKPOINT_STEPS)} checkpoints scored")

    # Each series links to its page and, scored on the eval corpus, to its statistics across checkpoints.
    for series, row in zip(comparison["series"], rows.all()):
        expect(row.get_by_test_id("series-link")).to_have_attribute("href", f"#/series/{series['series_id']}")
        expect(row.get_by_test_id("across-links").get_by_role("link", name="transitions")).to_have_attribute(
            "href", f"#/series/{series['series_id']}/corpora/{held_out['id']}?tab=transitions")

    # The final-checkpoint table: a row per loss with the API's numbers.
    final_rows = page.get_by_test_id("final-row")
    expect(final_rows).to_have_count(2)
    for series in comparison["series"]:
        final = series["final"]
        assert final["step"] == STEPS and final["scored"]
        row = page.locator(f'[data-testid="final-row"][data-loss="{series["loss"]}"]')
        expect(row.get_by_test_id("final-mean-loss")).to_have_text(fixed(page, final["mean_loss"], 3))
        expect(row.get_by_test_id("final-step")).to_have_text(str(STEPS))
        expect(row.get_by_role("link", name=f"run #{final['run_id']}")).to_be_visible()
        expect(row).to_contain_text(fixed(page, final["ece"], 4))

    # Charts: the held-out metrics have one line per loss with a point per checkpoint; the training
    # chart adds focal's plain-CE line; rare vs frequent has two lines per loss.
    expect(page.get_by_test_id("chart-heldout-loss").locator("g.trace.scatter")).to_have_count(2)
    expect(page.get_by_test_id("chart-heldout-loss").locator("g.trace.scatter").first.locator("g.points path")).to_have_count(3)
    expect(page.get_by_test_id("chart-train-loss").locator("g.trace.scatter")).to_have_count(3)
    expect(page.get_by_test_id("chart-rare-frequent").locator("g.trace.scatter")).to_have_count(4)
    # Each loss keeps its colour: the legend's swatches are the held-out chart's line colours.
    swatches = page.get_by_test_id("legend-item").locator(".swatch").evaluate_all(
        "els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert swatches == trace_colors(page, "chart-heldout-loss") == trace_colors(page, "chart-ece")
    assert len(set(swatches)) == 2
    # Hiding the untrained model (step 0) redraws the charts in place without it.
    page.get_by_label("Hide step 0 (untrained)").check()
    expect(page.get_by_test_id("chart-heldout-loss").locator("g.trace.scatter").first.locator("g.points path")).to_have_count(2)
    expect(page).to_have_url(re.compile(r"[?&]untrained=hide(&|$)"))

    # Every checkpoint, each loss's held-out loss linked to its scoring run.
    checkpoint_rows = page.get_by_test_id("checkpoint-row")
    expect(checkpoint_rows).to_have_count(len(CHECKPOINT_STEPS))
    assert checkpoint_rows.evaluate_all("els => els.map(e => Number(e.dataset.step))") == CHECKPOINT_STEPS
    expect(page.get_by_test_id("checkpoint-run")).to_have_count(2 * len(CHECKPOINT_STEPS))
    focal = comparison["series"][1]
    middle = next(c for c in focal["checkpoints"] if c["step"] == SAVE_EVERY)
    link = page.get_by_role("link", name=f"run #{middle['run_id']}: focal:2 at step {SAVE_EVERY}")
    expect(link.locator("xpath=..").get_by_test_id("checkpoint-loss")).to_have_text(fixed(page, middle["mean_loss"], 3))
    link.click()
    expect(page).to_have_url(re.compile(rf"#/runs/{middle['run_id']}$"))
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text(f"{focal['name']}@{SAVE_EVERY}")
    expect(heading.get_by_test_id("status")).to_have_text("done")
    expect(page.get_by_test_id("run-stats")).to_contain_text(fixed(page, middle["mean_loss"], 3))

    # The list shows the experiment with its losses and a summed status.
    page.goto("/#/experiments")
    row = page.get_by_test_id("experiment-row").filter(has=page.get_by_role("link", name="tempest-cmp", exact=True))
    expect(row).to_contain_text("ce")
    expect(row).to_contain_text("focal:2")
    expect(row).to_contain_text("tempest-train")
    expect(row.get_by_test_id("status")).to_have_text("done")
    expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", str(2 * STEPS))
    # Each loss links to its series across checkpoints on the eval corpus.
    eval_corpus = comparison["experiment"]["eval_corpus_id"]
    expect(row.get_by_test_id("experiment-series-link")).to_have_count(2)
    row.get_by_test_id("experiment-series-link").filter(has_text="focal:2").click()
    expect(page).to_have_url(re.compile(rf"#/series/{focal['series_id']}/corpora/{eval_corpus}(\?|$)"))

    # The final table links each pair of losses into the Compare view: ce's "vs focal:2" opens ce's
    # final run (A) against focal's (B), with the API's total Δ for the corpus and for the document shown.
    a, b = comparison["series"][0]["final"]["run_id"], focal["final"]["run_id"]
    page.goto(f"/#/experiments/{experiment_id}")
    page.locator('[data-testid="final-row"][data-loss="ce"]').get_by_test_id("compare-link").filter(has_text="vs focal:2").click()
    expect(page).to_have_url(re.compile(rf"#/compare\?a={a}&b={b}(&|$)"))
    summary = api_get(server, "/compare", a=a, b=b)
    total = page.get_by_test_id("compare-stats").locator(".stat", has=page.locator("dt", has_text="total Δ log p")).locator("dd")
    expect(total).to_have_text(page.evaluate("async (v) => (await import('/static/js/format.js')).fmtNum(v, 4)", summary["total_delta"]))
    shown = (summary["b_wins_most"] or summary["b_loses_most"])[0]["document_id"]
    document = api_get(server, f"/compare/documents/{shown}", a=a, b=b)
    expect(page.get_by_test_id("compare-document")).to_contain_text(f"total Δ {fixed(page, document['total_delta'], 3)} nats")


def test_study_page_shows_the_api_numbers(page: Page, server: Server, corpora):
    """A study written straight to the server's database (no training): listed on the Experiments page,
    its page shows the API's cells (the report's), marks differences within / beyond the seed noise,
    draws its charts, keeps the selected loss in the address, and shows samples as text."""
    train, _ = corpora
    seed_study_on_server(server.data_dir, name="tempest-study", losses=["ce", "focal:2"], seeds=[0, 1, 2],
                         train_corpus_id=train["id"], eval_corpus_id=None)
    study = api_get(server, "/studies/tempest-study")
    page.goto("/#/experiments")
    page.get_by_test_id("study-row").filter(has_text="tempest-study").get_by_test_id("study-link").click()
    expect(page).to_have_url(re.compile(r"#/studies/tempest-study$"))
    expect(page.get_by_test_id("study-command")).to_have_text(study["command"])
    for row in study["rows"]:
        shown = page.locator(f'[data-testid="study-row"][data-loss="{row["loss"]}"] td')
        expect(shown).to_have_text(row["cells"])
    focal = page.locator('[data-testid="study-row"][data-loss="focal:2"]')
    expect(focal.get_by_test_id("study-delta-ce")).to_have_attribute("data-noise", "within")
    within = focal.get_by_test_id("study-delta-ce").evaluate("e => getComputedStyle(e).opacity")
    cells = page.get_by_test_id("difference-cell")
    expect(cells).to_have_text([d["text"] for d in study["rows"][1]["deltas"]])
    beyond = page.locator('[data-testid="difference-cell"][data-noise="beyond"]').first
    assert (within, beyond.evaluate("e => getComputedStyle(e).opacity")) == ("0.75", "1")
    # Held-out CE: a band (two traces) and a line per loss, a point per step after 0.
    heldout = page.get_by_test_id("chart-study-heldout")
    expect(heldout.locator("g.trace.scatter")).to_have_count(6)
    expect(heldout.locator("g.trace.scatter").nth(2).locator("g.points path")).to_have_count(len(study["heldout"][0]["step"]))
    expect(page.get_by_test_id("chart-study-delta").locator("g.trace.bars g.point")).to_have_count(1)
    # Selecting a loss: its rows stand out and the address keeps it.
    focal.get_by_role("button", name="focal:2").click()
    expect(page).to_have_url(re.compile(r"[?&]loss=focal%3A2(&|$)"))
    expect(focal).to_have_class(re.compile(r"\bis-selected\b"))
    page.reload()
    expect(page.locator('[data-testid="study-row"][data-loss="focal:2"]')).to_have_class(re.compile(r"\bis-selected\b"))
    # Samples are text: the markup in a continuation is shown, not parsed.
    expect(page.get_by_test_id("study-sample").filter(has_text="<b>focal:2</b>")).to_have_count(1)
    expect(page.locator("main .sample b")).to_have_count(0)
    # Each experiment of the study links back to it.
    page.goto("/#/experiments")
    row = page.get_by_test_id("experiment-row").filter(has=page.get_by_role("link", name="tempest-study-s1", exact=True))
    row.get_by_test_id("experiment-study-link").click()
    expect(page).to_have_url(re.compile(r"#/studies/tempest-study$"))
