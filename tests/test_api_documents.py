"""REST API, on SQLite and PostgreSQL: a document's neighbours among a run's documents, and every
id in a path, query or body checked (404 for a missing row) and bounded (422 past the largest id)."""

from __future__ import annotations

import pytest

from tests.support.api import API, error_of
from tests.support.scored_runs import seed_run

# The largest id a row can have (PostgreSQL's 32-bit integer), one past it, and past 64 bits.
LARGEST_ID = 2**31 - 1
HUGE_ID = 2**31


def test_document_neighbours_among_1000_documents(api, sessions):
    scored = {p for p in range(1000) if p % 7 == 3} | {998}
    run_id, ids = seed_run(sessions, 1000, scored)
    listed = [item for offset in (0, 500)
              for item in api.get(f"{API}/runs/{run_id}/documents", params={"offset": offset, "limit": 500}).json()["items"]]
    assert [d["document_id"] for d in listed] == ids and {p for p, d in enumerate(listed) if d["scored"]} == scored
    for index in (0, 1, 2, 3, 4, 10, 499, 500, 501, 990, 994, 997, 998, 999):
        body = api.get(f"{API}/runs/{run_id}/documents/{ids[index]}/neighbours").json()
        before = [d for d in listed[:index] if d["scored"]]
        after = [d for d in listed[index + 1:] if d["scored"]]
        assert body == {"previous": before[-1] if before else None, "next": after[0] if after else None,
                        "position": index + 1, "total": 1000}, index
    edges = api.get(f"{API}/runs/{run_id}/documents/{ids[3]}/neighbours").json()
    assert edges["previous"] is None and edges["next"]["position"] == 10 and edges["next"]["mean_loss"] == pytest.approx(0.01)
    assert api.get(f"{API}/runs/{run_id}/documents/{ids[999]}/neighbours").json()["previous"]["position"] == 998

    unscored_run, unscored_ids = seed_run(sessions, 3, set(), name="unscored")
    assert api.get(f"{API}/runs/{unscored_run}/documents/{unscored_ids[1]}/neighbours").json() == {
        "previous": None, "next": None, "position": 2, "total": 3}


def test_document_neighbours_errors(api, sessions):
    run_id, ids = seed_run(sessions, 3, {0, 2})
    _, other_ids = seed_run(sessions, 1, set(), name="other")
    neighbours = f"{API}/runs/{{}}/documents/{{}}/neighbours"
    assert error_of(api.get(neighbours.format(999, ids[0])), 404, "not_found") == "run 999 not found"
    assert error_of(api.get(neighbours.format(run_id, 999)), 404, "not_found") == "document 999 not found"
    assert "is not in run" in error_of(api.get(neighbours.format(run_id, other_ids[0])), 404, "not_found")
    assert "is not in run" in error_of(api.get(f"{API}/runs/{run_id}/documents/{other_ids[0]}/tokens"), 404, "not_found")
    assert "document_id" in error_of(api.get(neighbours.format(run_id, HUGE_ID)), 422, "invalid_input")
    assert "run_id" in error_of(api.get(neighbours.format(HUGE_ID, ids[0])), 422, "invalid_input")
    error_of(api.get(neighbours.format(run_id, 0)), 422, "invalid_input")


@pytest.mark.parametrize("path,thing", [
    ("/runs/{}", "run"), ("/runs/{}/documents", "run"), ("/runs/{}/summary", "run"), ("/corpora/{}", "corpus"),
    ("/corpora/{}/documents", "corpus"), ("/documents/{}", "document"), ("/checkpoints/{}", "checkpoint"),
    ("/jobs/{}", "job"), ("/experiments/{}", "experiment"), ("/experiments/{}/comparison", "experiment"),
    ("/series/{}/curve", "series"),
])
def test_every_path_id_is_checked_once_and_bounded(api, path, thing):
    url = API + path
    assert error_of(api.get(url.format(LARGEST_ID)), 404, "not_found") == f"{thing} {LARGEST_ID} not found"
    for huge in (HUGE_ID, 2**64):
        assert "less than or equal to" in error_of(api.get(url.format(huge)), 422, "invalid_input")
    assert "greater than or equal to 1" in error_of(api.get(url.format(0)), 422, "invalid_input")


def test_query_and_body_ids_are_bounded(api, settings):
    for path, name in (("/jobs", "run_id"), ("/runs", "corpus_id"), ("/runs", "checkpoint_id"), ("/checkpoints", "series_id")):
        assert name in error_of(api.get(f"{API}{path}", params={name: HUGE_ID}), 422, "invalid_input")
        assert api.get(f"{API}{path}", params={name: LARGEST_ID}).json()["total"] == 0
    body = {"checkpoint_id": HUGE_ID, "corpus_id": 1}
    assert "checkpoint_id" in error_of(api.post(f"{API}/runs", json=body), 422, "invalid_input")
    assert error_of(api.post(f"{API}/runs", json={**body, "checkpoint_id": LARGEST_ID}), 404, "not_found") == (
        f"checkpoint {LARGEST_ID} not found")
    path = str(settings.model_roots[0] / "m.gguf")
    assert "step" in error_of(api.post(f"{API}/checkpoints", json={"path": path, "step": HUGE_ID}), 422, "invalid_input")
