"""The checkpoint axis in a real browser against a real server: a series of three tiny Llamas (the same
tokenizer, different random weights) at steps 0, 100 and 200, each scored on a three-document corpus by
the server's worker; then the document view's checkpoint scrubber, the transitions, cartography and
series pages, each checked against the numbers the API gives for the same question.

    .venv/bin/python -m pytest tests/test_browser_series.py -q -s   (-s prints the scrubber's timings)
"""

from __future__ import annotations

import math
import re
import statistics

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import (MARKUP_TITLE, SeededSeries, Server, api_get, fixed, seed_series, serving, upload_corpus,
                                   wait_run_done)
from tests.support.colours import backgrounds, rgb_list
from tests.support.models import build_series_folder

pytestmark = pytest.mark.slow

STEPS = [0, 100, 200]
RUN_STEP = 1  # the document view opens the run of step 100: the scrubber can move both ways


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("series-models")
    build_series_folder(root / "tiny-run", STEPS)
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory, models_root):
    with serving(tmp_path_factory.mktemp("browser-series") / "data", [models_root]) as srv:
        yield srv


@pytest.fixture(scope="module")
def seeded(server, models_root) -> SeededSeries:
    try:
        return seed_series(server.url, models_root / "tiny-run", STEPS)
    except Exception as error:
        raise AssertionError(f"{error}\n--- server log ---\n{server.log()[-6000:]}") from error


def on_corpus(seeded: SeededSeries) -> str:
    return f"/series/{seeded.series_id}/corpora/{seeded.corpus['id']}"


def biggest_move(server: Server, seeded: SeededSeries) -> tuple[dict, int, int, list[list[float]]]:
    """(document, target step index, token, p per step) where p moves most between the run's step and another."""
    best = None
    for doc in seeded.documents:
        trajectory = api_get(server, f"{on_corpus(seeded)}/documents/{doc['document_id']}/trajectory")
        p = [[math.exp(lp) for lp in row] for row in trajectory["logprob"]]
        for target in (0, 2):
            moves = [abs(p[target][i] - p[RUN_STEP][i]) for i in range(trajectory["n_tokens"])]
            token = max(range(len(moves)), key=moves.__getitem__)
            if best is None or moves[token] > best[0]:
                best = (moves[token], doc, target, token, p)
    return best[1:]


def test_scrubber_recolours_the_tokens_whose_p_moved(page: Page, server: Server, seeded: SeededSeries):
    doc, target, moved, p = biggest_move(server, seeded)
    still = min(range(len(p[0])), key=lambda i: max(p[RUN_STEP][i], p[target][i]))
    # Coloured by p on 256 levels: a move of 0.05 is 12 levels; p below 1e-3 at both steps is the same level.
    assert abs(p[target][moved] - p[RUN_STEP][moved]) > 0.05
    assert max(p[RUN_STEP][still], p[target][still]) < 1e-3
    trajectory_requests = []
    page.on("request", lambda request: trajectory_requests.append(request.url) if "/trajectory" in request.url else None)
    run = seeded.runs[RUN_STEP]
    page.goto(f"/#/runs/{run['id']}/documents/{doc['document_id']}?color=p")
    label = page.get_by_test_id("scrubber-step")
    expect(label).to_have_text(f"step {STEPS[RUN_STEP]} (this run)")
    before = backgrounds(page, [moved, still])

    page.get_by_test_id("scrubber-range").fill(str(target))
    expect(label).to_have_text(f"step {STEPS[target]}")
    after = backgrounds(page, [moved, still])
    assert after[0] != before[0], f"token {moved}: p {p[RUN_STEP][moved]:.4f} → {p[target][moved]:.4f}, colour unchanged"
    assert after[1] == before[1], f"token {still}: p {p[RUN_STEP][still]:.2e} → {p[target][still]:.2e}, colour changed"
    expect(page).to_have_url(re.compile(rf"[?&]step={STEPS[target]}(&|$)"))  # the address keeps the step
    # The tooltip follows the scrubber: the moved token's p at the shown step, not at the run's.
    page.locator(f'[data-testid="token"][data-index="{moved}"]').hover()
    tooltip = page.get_by_test_id("token-tooltip")
    expect(tooltip.get_by_test_id("tooltip-step")).to_have_text(f"at step {STEPS[target]}")
    shown_p = "async (p) => (await import('/static/js/format.js')).fmtProb(p)"
    expect(tooltip.locator(".tt-row", has=page.locator("dt", has_text=re.compile("^p$"))).locator("dd")).to_have_text(
        page.evaluate(shown_p, p[target][moved]))
    # Back at the run's own step, the run's colours again.
    page.get_by_test_id("scrubber-range").fill(str(RUN_STEP))
    assert backgrounds(page, [moved, still]) == before

    # Every step came from the one trajectory request; each step's input-to-paint time is measured.
    for index in range(len(STEPS)):
        page.get_by_test_id("scrubber-range").fill(str(index))
    page.wait_for_function("() => performance.getEntriesByName('scrubber-step').length >= 6")
    durations = page.evaluate("() => performance.getEntriesByName('scrubber-step').map(e => e.duration)")
    print(f"\nscrubber step, input to painted ({doc['n_tokens']} tokens): median {statistics.median(durations):.1f} ms, "
          f"worst {max(durations):.1f} ms over {len(durations)} steps")
    assert len(trajectory_requests) == 1, trajectory_requests

    # A shared link opens at the same step.
    page.goto(f"/#/runs/{run['id']}/documents/{doc['document_id']}?color=p&step={STEPS[target]}")
    expect(label).to_have_text(f"step {STEPS[target]}")
    assert backgrounds(page, [moved, still]) == after


def test_play_steps_through_the_checkpoints_and_a_token_shows_its_trajectory(page: Page, server: Server, seeded: SeededSeries):
    run = seeded.runs[RUN_STEP]
    doc = seeded.documents[0]
    page.goto(f"/#/runs/{run['id']}/documents/{doc['document_id']}?step=0")
    label = page.get_by_test_id("scrubber-step")
    expect(label).to_have_text("step 0")
    play = page.get_by_test_id("scrubber-play")
    play.click()
    expect(play).to_have_attribute("aria-pressed", "true")
    expect(label).to_have_text(f"step {STEPS[-1]}")
    expect(play).to_have_attribute("aria-pressed", "false")  # it stops at the last checkpoint

    position = 3
    token = api_get(server, f"{on_corpus(seeded)}/documents/{doc['document_id']}/tokens/{position}")
    page.locator(f'[data-testid="token"][data-index="{position}"]').click()
    rows = page.get_by_test_id("token-step-row")
    expect(rows).to_have_count(len(STEPS))
    assert rows.evaluate_all("els => els.map(e => Number(e.dataset.step))") == STEPS
    shown_p = rows.evaluate_all("els => els.map(e => e.children[1].textContent)")
    assert shown_p == page.evaluate("async (ps) => { const f = await import('/static/js/format.js'); return ps.map(f.fmtProb); }", token["p"])
    expect(page.get_by_test_id("token-trajectory")).to_have_class(re.compile(r"\bjs-plotly-plot\b"))
    expect(rows.first.locator(".topk-chip")).to_have_count(len(token["top_ids"][0]))


def test_a_transition_cell_lists_exactly_its_stored_count(page: Page, server: Server, seeded: SeededSeries):
    tau = 10  # nats: splits these random models' tokens into sizeable H and L groups
    answer = api_get(server, f"{on_corpus(seeded)}/transitions", a=0, b=200, tau=tau)
    page.goto(f"/#/series/{seeded.series_id}/corpora/{seeded.corpus['id']}?tab=transitions&a=0&b=200")
    expect(page.get_by_role("tab", name="Transitions")).to_have_attribute("aria-selected", "true")
    button = lambda cell: page.locator(f'[data-testid="transition-cell"][data-cell="{cell}"]')  # noqa: E731
    expect(page.get_by_test_id("transition-matrix")).to_contain_text("τ = 0.6931 nats")
    # A cell that takes more than one page when there is one.
    sizes = sorted((count, cell) for cell, count in answer["counts"].items() if count)
    count, cell = next(((n, c) for n, c in sizes if 25 < n <= 100), sizes[0])
    shown = button(cell).element_handle()
    # As a user does it: type τ, then click the cell straight away. Leaving the field applies τ
    # (a reload starts on the button's press) and the click must still select the cell: the matrix
    # is updated in place, never rebuilt under the pointer.
    page.get_by_label("Loss threshold τ (nats)").fill(str(tau))
    button(cell).click()
    for each, n in answer["counts"].items():
        expect(button(each).get_by_test_id("cell-count")).to_have_text(f"{n:,}")
    expect(button(cell)).to_have_attribute("aria-pressed", "true")
    assert shown.evaluate("b => b.isConnected")
    expect(page.get_by_test_id("occurrences-total")).to_have_text(f"{count:,} {'occurrence' if count == 1 else 'occurrences'}")
    expect(page).to_have_url(re.compile(rf"[?&]cell={cell}(&|$)"))
    expect(page).to_have_url(re.compile(rf"[?&]tau={tau}(&|$)"))

    listed = []
    rows = page.get_by_test_id("occurrence-row")
    while True:
        expect(rows.first).to_be_visible()
        listed += rows.evaluate_all("els => els.map(e => [Number(e.dataset.documentId), Number(e.dataset.position)])")
        following = page.get_by_role("button", name="Next →")
        if following.count() == 0 or following.is_disabled():
            break
        following.click()
        expect(page.get_by_test_id("occurrences").locator(".pager-info")).to_contain_text(f"{len(listed) + 1:,}–")
    stored = api_get(server, f"{on_corpus(seeded)}/transitions/occurrences", a=0, b=200, tau=tau, cell=cell, limit=500)
    assert stored["total"] == count == len(listed)
    assert listed == [[o["document_id"], o["position"]] for o in stored["items"]]

    # Each occurrence links into its document at step b, with the token focused.
    first = stored["items"][-1]
    page.get_by_role("link", name=f"doc {first['document_id']}, token {first['position']:,}").click()
    expect(page).to_have_url(re.compile(rf"#/runs/{answer['run_b']}/documents/{first['document_id']}\?token={first['position']}"))
    expect(page.get_by_test_id("scrubber-step")).to_have_text("step 200 (this run)")
    expect(page.locator(f'[data-testid="token"][data-index="{first["position"]}"]')).to_be_focused()


# The point of the scatter farthest from any other, and where it is on the screen.
FARTHEST_POINT = """el => {
  const xa = el._fullLayout.xaxis, ya = el._fullLayout.yaxis, box = el.getBoundingClientRect();
  const points = el.data.flatMap(t => t.x.map((x, k) => ({ i: t.customdata[k],
    x: box.left + xa._offset + xa.l2p(x), y: box.top + ya._offset + ya.l2p(t.y[k]) })));
  let best = null, gap = -1;
  for (const a of points) {
    let d = Infinity;
    for (const b of points) if (b !== a) d = Math.min(d, Math.hypot(a.x - b.x, a.y - b.y));
    if (d > gap) { gap = d; best = a; }
  }
  return { ...best, gap };
}"""


def test_cartography_hover_shows_the_token_the_api_lists(page: Page, server: Server, seeded: SeededSeries):
    cartography = api_get(server, f"{on_corpus(seeded)}/cartography", max_points=5000, types_limit=50)
    page.goto(f"/#/series/{seeded.series_id}/corpora/{seeded.corpus['id']}?tab=cartography")
    for region in cartography["regions"]:
        row = page.locator(f'[data-testid="region-row"][data-region="{region["region"]}"]')
        expect(row.get_by_test_id("region-occurrences")).to_have_text(f"{region['occurrences']:,}")

    scatter = page.get_by_test_id("cartography-scatter")
    expect(scatter.locator("canvas").first).to_be_attached()
    scatter.scroll_into_view_if_needed()
    point = scatter.evaluate(FARTHEST_POINT)
    assert point["gap"] > 2, point
    points = cartography["points"]
    i = point["i"]
    page.mouse.move(point["x"], point["y"])
    hover = page.get_by_test_id("cartography-hover")
    expect(hover).to_be_visible()
    visible = page.evaluate("async (t) => (await import('/static/js/tokens.js')).visibleText(t)", points["text"][i])
    expect(hover.get_by_test_id("hover-token")).to_have_text(visible)
    expect(hover.get_by_test_id("hover-where")).to_have_text(f"doc {points['document_id'][i]} · token {points['position'][i]:,}")
    expect(hover.get_by_test_id("hover-context").locator("mark")).to_have_text(points["text"][i])
    occurrence = api_get(server, f"{on_corpus(seeded)}/documents/{points['document_id'][i]}/tokens/{points['position'][i]}")
    expect(hover.get_by_test_id("hover-context")).to_have_text(
        f"…{occurrence['context_before']}{points['text'][i]}{occurrence['context_after']}…")

    # The token types, most frequent first; the count header reverses the order (kept in the address).
    counts = page.get_by_test_id("type-row").evaluate_all("els => els.map(e => Number(e.dataset.count))")
    assert counts == [t["count"] for t in cartography["types"]["items"]]
    page.get_by_test_id("sort-count").click()
    assert page.get_by_test_id("type-row").evaluate_all("els => els.map(e => Number(e.dataset.count))") == sorted(counts)
    expect(page).to_have_url(re.compile(r"[?&]sort=count-asc(&|$)"))


def test_series_page_lists_checkpoints_and_scores_the_missing_ones(page: Page, server: Server, seeded: SeededSeries):
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=30) as client:
        corpus = upload_corpus(client, "one-line", {"line.txt": "Fair is foul, and foul is fair.\n"})
        first = client.post("/runs", json={"checkpoint_id": seeded.checkpoints[0]["id"], "corpus_id": corpus["id"],
                                            "options": {"max_length": 64, "top_k": 5}}).json()
        wait_run_done(client, first["id"])

    page.goto("/#/series")
    row = page.locator(f'[data-testid="series-list-row"][data-series-id="{seeded.series_id}"]')
    expect(row.get_by_test_id("series-checkpoints")).to_have_text(str(len(STEPS)))
    row.get_by_role("link", name="tiny-series").click()
    expect(page).to_have_url(re.compile(rf"#/series/{seeded.series_id}$"))
    checkpoint_rows = page.get_by_test_id("series-checkpoint-row")
    expect(checkpoint_rows).to_have_count(len(STEPS))
    assert checkpoint_rows.evaluate_all("els => els.map(e => Number(e.dataset.step))") == STEPS

    scored = page.locator(f'[data-testid="corpus-scoring"][data-corpus-id="{seeded.corpus["id"]}"]')
    expect(scored.get_by_test_id("across-link")).to_have_count(3)
    section = page.locator(f'[data-testid="corpus-scoring"][data-corpus-id="{corpus["id"]}"]')
    chips = section.get_by_test_id("step-chip")
    expect(chips).to_have_count(len(STEPS))
    assert chips.evaluate_all("els => els.map(e => e.dataset.status)") == ["done", "missing", "missing"]
    expect(section.get_by_test_id("across-link")).to_have_count(0)

    section.get_by_test_id("score-missing").click()
    expect(page.get_by_test_id("form-status")).to_contain_text("Queued 2 runs on one-line")
    detail = api_get(server, f"/series/{seeded.series_id}")
    on_line = next(c for c in detail["corpora"] if c["corpus_id"] == corpus["id"])
    assert sorted(r["step"] for r in on_line["runs"]) == STEPS
    # The page follows the new runs until they are done.
    for chip in chips.all():
        expect(chip).to_have_attribute("data-status", "done", timeout=60_000)
    expect(section.get_by_test_id("across-link")).to_have_count(3)


def test_register_a_folder_of_checkpoints_from_the_models_page(page: Page, models_root):
    page.goto("/#/models")
    page.get_by_text("Register a folder of checkpoints").click()
    form = page.get_by_role("form", name="Register a folder of checkpoints")
    form.get_by_label("Folder on the server").fill("/etc")
    form.get_by_role("button", name="Register folder").click()
    expect(page.get_by_test_id("register-folder-status")).to_contain_text("outside the server's model roots")

    form.get_by_label("Folder on the server").fill(str(models_root / "tiny-run"))
    form.get_by_label("Series name").fill("tiny-folder")
    form.get_by_role("button", name="Register folder").click()
    outcome = page.get_by_test_id("register-folder-outcome")
    expect(outcome).to_contain_text(f"Registered {len(STEPS)} checkpoints in series tiny-folder")
    expect(outcome.get_by_test_id("skipped-list")).to_contain_text(str(models_root / "tiny-run" / "notes"))
    outcome.get_by_role("link", name="tiny-folder").click()
    expect(page.get_by_test_id("series-checkpoint-row")).to_have_count(len(STEPS))


def test_compare_view_shows_the_apis_delta_and_colours_wins_and_losses_apart(page: Page, server: Server, seeded: SeededSeries):
    a, b, doc = seeded.runs[0]["id"], seeded.runs[2]["id"], seeded.documents[0]["document_id"]
    data = api_get(server, f"/compare/documents/{doc}", a=a, b=b)
    delta = data["units"]["delta"]
    better, worse = delta.index(max(delta)), delta.index(min(delta))
    assert data["alignment"] == "token" and delta[better] > 0 > delta[worse], delta  # one series: one tokenizer
    page.goto(f"/#/compare?a={a}&b={b}&doc={doc}")
    expect(page.get_by_test_id("unit")).to_have_count(data["n_units"])
    unit = page.locator(f'[data-testid="unit"][data-index="{better}"]')
    unit.hover()
    expect(page.get_by_test_id("tooltip-delta")).to_have_text(fixed(page, delta[better], 4))
    assert float(unit.get_attribute("data-delta")) == delta[better]
    # The legend runs from orange (B worse, red > blue) on the left to purple (B better, blue > red).
    legend = rgb_list(page.get_by_test_id("compare-legend-bar").evaluate("el => getComputedStyle(el).backgroundImage"))
    (r_better, _, b_better), (r_worse, _, b_worse) = (rgb_list(css)[0] for css in (
        page.locator(f'[data-testid="unit"][data-index="{i}"]').evaluate("el => getComputedStyle(el).backgroundColor")
        for i in (better, worse)))
    assert legend[0][0] > legend[0][2] and legend[-1][2] > legend[-1][0]
    assert b_better > r_better and r_worse > b_worse
    expect(page).to_have_url(re.compile(rf"[?&]doc={doc}(&|$)"))
    # The Document view colours by GLTR's buckets in GLTR's colours; the token types list is the API's.
    tokens = api_get(server, f"/runs/{a}/documents/{doc}/tokens")
    page.goto(f"/#/runs/{a}/documents/{doc}?color=gltr")
    expect(page.get_by_test_id("legend-categories").locator("li")).to_have_count(4)
    gltr = [(173, 255, 128), (255, 234, 128), (255, 146, 128), (229, 176, 255)]
    assert [rgb_list(css)[0] for css in backgrounds(page, [0, 1, 2])] == [gltr[k] for k in tokens["gltr_bucket"][:3]]
    first = api_get(server, f"/runs/{a}/types", sort="mean_loss", limit=1)["items"][0]["text"]
    page.goto(f"/#/runs/{a}/types?sort=mean_loss")
    shown = page.evaluate("async (t) => (await import('/static/js/tokens.js')).visibleText(t)", first)
    first_row = page.get_by_test_id("types-table").locator("tbody tr").first.locator("code")
    expect(first_row).to_have_text(shown)
    # Answers that arrive out of order: a filter's answer held back until the filter was cleared
    # (the newer answer shown) must not replace the newer one when it lands.
    held = []
    page.route(re.compile(r"/types\?.*text=zzz"), lambda route: held.append(route))
    search = page.get_by_role("searchbox")
    search.fill("zzz")
    search.dispatch_event("change")
    for _ in range(300):  # route handlers run while Playwright is called: wait in the page's time
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the filtered request never reached the route"
    search.fill("")
    search.dispatch_event("change")
    expect(page).not_to_have_url(re.compile(r"[?&]q=zzz"))
    expect(first_row).to_have_text(shown)
    with page.expect_response(lambda response: "text=zzz" in response.url):
        held[0].continue_()
    page.evaluate("() => new Promise((done) => setTimeout(done, 200))")  # the late answer's handlers run
    expect(first_row).to_have_text(shown)

def test_every_view_runs_under_the_content_security_policy(page: Page, seeded: SeededSeries):
    """The watched page fails the test on any CSP violation: open every view, its charts drawn, and /docs.
    The document with markup in its title and text (`<img src=x onerror=…>`, `<script>`) is among them:
    written as HTML anywhere, its handler would be a CSP violation and its elements would be in the page."""
    run, doc, across = seeded.runs[RUN_STEP]["id"], seeded.documents[0]["document_id"], on_corpus(seeded)
    markup = next(d["document_id"] for d in seeded.documents if d["title"] == MARKUP_TITLE)
    views = {"#/runs": "Runs", f"#/runs/{run}": "Run #", f"#/runs/{run}/documents/{doc}": "", "#/corpora": "Corpora",
             "#/experiments": "Experiments", "#/series": "Series", f"#/series/{seeded.series_id}": "tiny-series",
             "#/models": "Models", "#/jobs": "Jobs", f"#/runs/{run}/types": "",
             f"#/compare?a={seeded.runs[0]['id']}&b={run}&doc={doc}": "",
             f"#/runs/{run}/documents/{markup}": MARKUP_TITLE, f"#/compare?a={seeded.runs[0]['id']}&b={run}&doc={markup}": ""}
    page.goto("/#/runs")
    for address, heading in views.items():  # as the dashboard navigates: the hash changes, the page stays
        page.evaluate("address => { window.location.hash = address; }", address)
        expect(page.locator("main h1")).to_contain_text(heading)
        expect(page.locator("main .loading")).to_have_count(0)
        expect(page.locator("main img[src='x'], main script")).to_have_count(0)
        if address == f"#/runs/{run}":
            expect(page.locator("main .js-plotly-plot").first).to_be_visible()
    for tab, drawn in (("transitions", "table"), ("learned-at", ".js-plotly-plot"), ("cartography", ".js-plotly-plot")):
        page.evaluate("address => { window.location.hash = address; }", f"#{across}?tab={tab}")
        expect(page.locator(f"#series-tab-panel {drawn}").first).to_be_visible()
    page.goto("/docs")
    expect(page.get_by_text("/api/v1/runs/{run_id}/documents", exact=True).first).to_be_visible()
