"""Training over the REST API: presets, losses, jobs, experiments, their status and comparison."""

from __future__ import annotations

import pytest

from tests.support.api import API, error_of, upload
from workers.loop import Worker

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

TEXT = ("When shall we three meet again? In thunder, lightning, or in rain? " * 30).encode()


def corpus(api, name: str) -> int:
    response = upload(api, name=name, files=[("files", (f"{name}.txt", TEXT, "text/plain"))])
    assert response.status_code == 201
    return response.json()["id"]


def test_presets_and_losses(api):
    presets = {p["name"]: p for p in api.get(f"{API}/training/presets").json()}
    assert presets["tiny"]["params"]["bpe"] == 1_088_256 and presets["base"]["arch"] == "gpt2"
    losses = {l["name"] for l in api.get(f"{API}/training/losses").json()}
    assert losses == {"ce", "focal", "poly1", "polyfocal", "focal-schedule", "flsd53", "sigmoid-polyfocal", "mile",
                      "focal-adaptive", "rho1"}


@pytest.mark.parametrize("changes,fragment", [
    ({"loss": "focal:-1"}, "must be ≥ 0"),
    ({"loss": "polyfocal:x"}, "needs 2 parameters"),
    ({"loss": "polyfocal:x:2"}, "not a number"),
    ({"preset": "huge"}, "preset: Input should be 'tiny', 'small', 'base'"),
    ({"steps": 0}, "steps: Input should be greater than or equal to 1"),
    ({"steps": 10, "save_every": 20}, "save_every (20) must not exceed steps (10)"),
    ({"series": "../escape"}, "series: series name '../escape'"),
    ({"experiment_id": 1}, "experiment_id: Extra inputs are not permitted"),
])
def test_bad_training_requests_are_422(api, changes, fragment):
    body = {"corpus_id": corpus(api, "train"), "series": "s1", "loss": "ce", "steps": 10, "save_every": 5} | changes
    assert fragment in error_of(api.post(f"{API}/training/jobs", json=body), 422, "invalid_input")
    assert api.get(f"{API}/jobs").json()["total"] == 0


def test_save_steps(api):
    assert api.get(f"{API}/training/save-steps", params={"steps": 300, "save_every": 50}).json() == {
        "steps": 300, "save_every": 50, "save_steps": [0, 50, 100, 150, 200, 250, 300]}
    assert api.get(f"{API}/training/save-steps", params={"steps": 100, "save_every": 30}).json()["save_steps"] == [
        0, 30, 60, 90, 100]
    for params, fragment in (({"steps": 10, "save_every": 20}, "save_every (20) must not exceed steps (10)"),
                             ({"steps": 0, "save_every": 1}, "steps: Input should be greater than or equal to 1"),
                             ({"steps": 1_000_000, "save_every": 1}, "at most 998"),
                             ({"steps": "many", "save_every": 1}, "steps: Input should be a valid integer")):
        assert fragment in error_of(api.get(f"{API}/training/save-steps", params=params), 422, "invalid_input")


def test_every_training_route_describes_its_response(api):
    paths = api.get(f"{API}/openapi.json").json()["paths"]
    routes = [("get", "/training/presets"), ("get", "/training/losses"), ("get", "/training/save-steps"),
              ("post", "/training/jobs"), ("post", "/experiments"), ("get", "/experiments"),
              ("get", "/experiments/{experiment_id}"), ("get", "/experiments/{experiment_id}/comparison"),
              ("get", "/series/{series_id}/curve")]
    for method, path in routes:
        responses = paths[f"{API}{path}"][method]["responses"]
        (ok,) = [responses[code] for code in ("200", "201") if code in responses]
        assert ok["content"]["application/json"]["schema"] != {}, (method, path)


def test_experiment_trains_scores_and_compares(api, settings):
    train_id, eval_id = corpus(api, "train"), corpus(api, "heldout")
    body = {"name": "tiny-exp", "corpus_id": train_id, "eval_corpus_id": eval_id, "losses": ["ce", "focal:2"],
            "steps": 4, "save_every": 2, "batch_size": 4, "seq_len": 32, "vocab_size": 512}
    created = api.post(f"{API}/experiments", json=body)
    assert created.status_code == 201, created.text
    experiment = created.json()
    assert experiment["status"]["jobs"] == {"queued": 2} and experiment["status"]["steps_total"] == 8
    assert "exists already" in error_of(api.post(f"{API}/experiments", json=body), 409, "conflict")
    assert "corpus 999 not found" in error_of(api.post(f"{API}/experiments", json={**body, "name": "x", "corpus_id": 999}), 404, "not_found")

    Worker(settings, device="cpu").run_forever(exit_when_idle=True)

    status = api.get(f"{API}/experiments/{experiment['id']}").json()["status"]
    assert status == {"jobs": {"done": 2}, "steps_done": 8, "steps_total": 8, "checkpoints": 6, "scored": 6,
                      "scoring_failed": 0}
    assert api.get(f"{API}/experiments").json()["items"][0]["status"] == status
    comparison = api.get(f"{API}/experiments/{experiment['id']}/comparison").json()
    assert comparison["experiment"]["created_at"].endswith("Z")
    # The keys the experiment pages read (frontend/js/views/experiment*.js).
    assert set(comparison["experiment"]) == {"id", "name", "train_corpus_id", "eval_corpus_id", "config", "created_at"}
    assert set(comparison["series"][0]) == {"series_id", "name", "loss", "meta", "job", "checkpoints", "final", "curve",
                                            "samples", "collapse"}
    assert set(comparison["series"][0]["job"]) == {"id", "status", "progress_done", "progress_total", "tokens_per_s",
                                                   "detail", "error"}
    assert set(comparison["series"][0]["checkpoints"][0]) == {
        "checkpoint_id", "step", "tokens_seen", "train_loss", "train_ce", "run_id", "run_status", "scored", "n_tokens",
        "mean_loss", "perplexity", "ece", "brier", "top1_accuracy", "rare_loss", "frequent_loss", "easy_share",
        "heldout"}
    assert set(comparison["series"][0]["curve"]) == {"series_id", "total_points", "step", "tokens_seen", "loss",
                                                     "ce_loss", "lr", "tokens_per_s", "grad_norm", "gamma"}
    assert experiment["job_ids"] == [s["job"]["id"] for s in comparison["series"]]
    assert experiment["series_ids"] == [s["series_id"] for s in comparison["series"]]
    assert [s["loss"] for s in comparison["series"]] == ["ce", "focal:2"]
    for series in comparison["series"]:
        assert [c["step"] for c in series["checkpoints"]] == [0, 2, 4]
        assert all(c["scored"] and c["run_status"] == "done" and c["mean_loss"] > 0 for c in series["checkpoints"])
        assert series["final"]["step"] == 4 and series["job"]["status"] == "done"
        curve = api.get(f"{API}/series/{series['series_id']}/curve", params={"max_points": 2}).json()
        assert curve["total_points"] == 4 and curve["step"] == [1, 4]
    # Both series start from the same untrained model (same seed): same step-0 held-out loss.
    step0 = [s["checkpoints"][0]["mean_loss"] for s in comparison["series"]]
    assert step0[0] == pytest.approx(step0[1], rel=1e-6)
    error_of(api.get(f"{API}/experiments/999"), 404, "not_found")
    error_of(api.get(f"{API}/experiments/{experiment['id']}/comparison", params={"max_points": 0}), 422, "invalid_input")
    error_of(api.get(f"{API}/series/999/curve"), 404, "not_found")
