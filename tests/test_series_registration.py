"""A folder of checkpoints registered as one series, the series' overview, and scoring every checkpoint
of it: through the API and the CLI on SQLite and PostgreSQL, and once end to end with `--here`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.models import ModelSeries
from app.schemas.run import RunProgress
from app.services import corpora, runs, series as series_module
from app.services.checkpoint_folders import read_candidate
from app.vocab import CANCELLED, DONE, FAILED, QUEUED, RUNNING
from focalscope.cli import main
from focalscope.console import overall
from tests.support.api import API, error_of

# What the folder builder makes: three checkpoints of the tiny model and three entries that are not.
STEPS = [100, 200, 300]


def output_folder(root: Path, model_dir: Path) -> Path:
    """A training output folder as the Hugging Face Trainer leaves it, plus entries to skip:
    checkpoint-100 and checkpoint-200; step_3, whose trainer_state.json says step 300; notes/ (no
    step); checkpoint-400 holding pickle weights; a log file (not a folder: ignored)."""
    folder = root / "run"
    for name in ("checkpoint-100", "checkpoint-200", "step_3"):
        shutil.copytree(model_dir, folder / name)
    (folder / "step_3" / "trainer_state.json").write_text(json.dumps({"global_step": 300, "epoch": 1.5}))
    (folder / "notes").mkdir()
    (folder / "notes" / "README.md").write_text("what this run was")
    (folder / "checkpoint-400").mkdir()
    (folder / "checkpoint-400" / "pytorch_model.bin").write_bytes(b"\x80\x04")
    (folder / "checkpoint-400" / "config.json").write_text("{}")
    (folder / "train.log").write_text("loss 3.2")
    return folder


@pytest.fixture
def model_root(settings) -> Path:
    root = settings.model_roots[0]
    root.mkdir(parents=True)
    return root


@pytest.fixture
def corpus_id(sessions) -> int:
    with sessions() as session:
        corpus = corpora.create_corpus(session=session, name="witches", documents=[
            corpora.DocumentIn(text="When shall we three meet again?", source="a.txt"),
            corpora.DocumentIn(text="Fair is foul, and foul is fair.", source="b.txt")])
        session.commit()
        return corpus.id


@pytest.mark.parametrize("name, step", [
    ("checkpoint-500", 500), ("Checkpoint-5", 5), ("step-20", 20), ("step_20", 20), ("step20", 20),
    ("global_step1000", 1000), ("global_step_7", 7), ("iter-7", 7), ("iter_0000300", 300), ("iteration-5", 5),
    ("ckpt-9", 9), ("step-100.gguf", 100),
    ("final", None), ("checkpoint-", None), ("step-1a", None), ("runs", None), ("checkpoint-100.bak", None),
    ("epoch-3", None),
])
def test_steps_read_from_names(tmp_path, name, step):
    assert read_candidate(tmp_path / name).step == step


def test_trainer_state_wins_over_the_name(tmp_path):
    folder = tmp_path / "checkpoint-100"
    folder.mkdir()
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 120, "num_input_tokens_seen": 4096}))
    assert (read_candidate(folder).step, read_candidate(folder).tokens_seen) == (120, 4096)
    (folder / "trainer_state.json").write_text("not json")  # a broken state file: the name still says
    assert (read_candidate(folder).step, read_candidate(folder).tokens_seen) == (100, None)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": True}))
    assert read_candidate(folder).step == 100


def test_register_a_folder_see_the_series_and_score_the_missing_steps(api, model_root, tiny_llama_dir, corpus_id):
    folder = output_folder(model_root, tiny_llama_dir)
    response = api.post(f"{API}/series/register", json={"path": str(folder), "series": "tiny"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert [c["step"] for c in body["registered"]] == STEPS and body["existing"] == []
    assert [c["path"] for c in body["registered"]] == [str(folder / n) for n in ("checkpoint-100", "checkpoint-200", "step_3")]
    assert {c["series_id"] for c in body["registered"]} == {body["series_id"]} and body["series"] == "tiny"
    skipped = {Path(s["path"]).name: s["reason"] for s in body["skipped"]}
    assert set(skipped) == {"checkpoint-400", "notes"}
    assert "pickle" in skipped["checkpoint-400"] and "no step in its name" in skipped["notes"]
    again = api.post(f"{API}/series/register", json={"path": str(folder), "series": "tiny"}).json()
    assert again["registered"] == [] and [c["id"] for c in again["existing"]] == [c["id"] for c in body["registered"]]

    series_id, ids = body["series_id"], [c["id"] for c in body["registered"]]
    detail = api.get(f"{API}/series/{series_id}").json()
    assert (detail["name"], detail["n_checkpoints"], detail["corpora"], detail["n_corpora"]) == ("tiny", 3, [], 0)
    assert [(c["id"], c["step"]) for c in detail["checkpoints"]] == list(zip(ids, STEPS))

    first = api.post(f"{API}/runs", json={"checkpoint_id": ids[1], "corpus_id": corpus_id,
                                         "options": {"max_length": 16}}).json()
    assert first["checkpoint"]["series_id"] == series_id  # a run says which series it belongs to
    (on_corpus,) = api.get(f"{API}/series/{series_id}").json()["corpora"]
    assert (on_corpus["corpus_id"], on_corpus["corpus_name"], on_corpus["n_documents"]) == (corpus_id, "witches", 2)
    assert [(r["step"], r["run_id"], r["status"]) for r in on_corpus["runs"]] == [(200, first["id"], QUEUED)]
    assert on_corpus["runs"][0]["options"]["max_length"] == 16 and on_corpus["missing_steps"] == [100, 300]

    scored = api.post(f"{API}/series/{series_id}/corpora/{corpus_id}/score", json={"options": {"max_length": 16}})
    assert scored.status_code == 201, scored.text
    assert scored.json()["existing"] == [first["id"]] and len(scored.json()["created"]) == 2
    defaults = api.post(f"{API}/series/{series_id}/corpora/{corpus_id}/score").json()  # no body: default options
    assert defaults["existing"] == [] and len(defaults["created"]) == 3
    (on_corpus,) = api.get(f"{API}/series/{series_id}").json()["corpora"]
    # The newest run of each checkpoint: the default-options ones, ascending by step.
    assert [(r["step"], r["run_id"]) for r in on_corpus["runs"]] == list(zip(STEPS, defaults["created"]))
    assert {r["options"]["max_length"] for r in on_corpus["runs"]} == {2048} and on_corpus["missing_steps"] == []


def test_registration_refusals(api, sessions, settings, model_root, tiny_llama_dir, corpus_id, tmp_path):
    outside = tmp_path / "elsewhere"
    output_folder(outside, tiny_llama_dir)
    assert "outside the server's model roots" in error_of(
        api.post(f"{API}/series/register", json={"path": str(outside / "run"), "series": "s"}), 403, "forbidden")
    (model_root / "empty").mkdir()
    assert "no checkpoints in" in error_of(
        api.post(f"{API}/series/register", json={"path": str(model_root / "empty"), "series": "s"}), 422, "invalid_input")
    assert "no such file" in error_of(
        api.post(f"{API}/series/register", json={"path": str(model_root / "nope"), "series": "s"}), 422, "invalid_input")
    assert "series" in error_of(api.post(f"{API}/series/register", json={"path": str(model_root), "series": ""}),
                                422, "invalid_input")
    # Without a series name, the folder names the series.
    output_folder(model_root / "unnamed", tiny_llama_dir)
    named = api.post(f"{API}/series/register", json={"path": str(model_root / "unnamed" / "run")})
    assert named.status_code == 201 and named.json()["series"] == "run", named.text

    # Nothing registers: a pickle checkpoint, one that needs custom code, and a symlink out of the roots.
    refused = model_root / "refused"
    (refused / "checkpoint-1").mkdir(parents=True)
    (refused / "checkpoint-1" / "model.pt").write_bytes(b"\x80\x04")
    shutil.copytree(tiny_llama_dir, refused / "checkpoint-2")
    config = json.loads((refused / "checkpoint-2" / "config.json").read_text())
    (refused / "checkpoint-2" / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "x.Y"}}))
    (refused / "checkpoint-3").symlink_to(outside / "run" / "checkpoint-100")
    response = api.post(f"{API}/series/register", json={"path": str(refused), "series": "s"})
    assert "no checkpoint of" in error_of(response, 422, "invalid_input")
    reasons = [s["reason"] for s in response.json()["error"]["detail"]["skipped"]]
    assert len(reasons) == 3 and "pickle" in reasons[0] and "auto_map" in reasons[1] and "outside" in reasons[2]

    # A different model at a step the series has: skipped, the rest registers.
    (model_root / "a" / "checkpoint-5").parent.mkdir()
    shutil.copytree(tiny_llama_dir, model_root / "a" / "checkpoint-5")
    api.post(f"{API}/series/register", json={"path": str(model_root / "a"), "series": "s"})
    shutil.copytree(model_root / "a" / "checkpoint-5", model_root / "b" / "checkpoint-5")
    other = model_root / "b" / "checkpoint-5" / "model.safetensors"
    other.write_bytes(other.read_bytes()[:-4] + b"\0\0\0\0")
    shutil.copytree(tiny_llama_dir, model_root / "b" / "checkpoint-6")
    body = api.post(f"{API}/series/register", json={"path": str(model_root / "b"), "series": "s"}).json()
    assert [c["step"] for c in body["registered"]] == [6]
    assert "already has a different checkpoint at step 5" in body["skipped"][0]["reason"]


def test_series_overview_and_scoring_refusals(api, sessions, corpus_id):
    with sessions() as session:
        session.add(ModelSeries(name="empty"))
        session.commit()
        empty_id = session.query(ModelSeries.id).scalar()
    assert "has no checkpoints" in error_of(
        api.post(f"{API}/series/{empty_id}/corpora/{corpus_id}/score"), 422, "invalid_input")
    assert api.get(f"{API}/series/{empty_id}").json()["checkpoints"] == []
    assert "series 999 not found" in error_of(api.get(f"{API}/series/999"), 404, "not_found")
    assert "series 999" in error_of(api.post(f"{API}/series/999/corpora/{corpus_id}/score"), 404, "not_found")
    assert "corpus 999" in error_of(api.post(f"{API}/series/{empty_id}/corpora/999/score"), 404, "not_found")
    error_of(api.get(f"{API}/series/99999999999"), 422, "invalid_input")
    error_of(api.post(f"{API}/series/99999999999/corpora/1/score"), 422, "invalid_input")
    assert "max_length" in error_of(api.post(f"{API}/series/{empty_id}/corpora/{corpus_id}/score",
                                             json={"options": {"max_length": 1}}), 422, "invalid_input")


def run_cli(settings, capsys, *args: str) -> tuple[int, str, str]:
    """The CLI in this process on the test's database: (exit status, stdout, stderr)."""
    status = main(["--data-dir", str(settings.data_dir), "--database-url", settings.db_url, *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_registers_a_folder_and_enqueues_the_series(settings, capsys, model_root, tiny_llama_dir, tmp_path):
    folder = output_folder(model_root, tiny_llama_dir)
    (tmp_path / "witches.txt").write_text("When shall we three meet again?")
    assert run_cli(settings, capsys, "corpus", "add", str(tmp_path / "witches.txt"))[0] == 0  # migrates the database
    status, out, _ = run_cli(settings, capsys, "model", "add", str(folder), "--series", "tiny")
    lines = out.splitlines()
    assert status == 0 and len(lines) == 5
    assert [line.split(" from ")[0] for line in lines[:3]] == [
        f"registered checkpoint {i}: tiny@{step} (safetensors, llama)" for i, step in zip((1, 2, 3), STEPS)]
    assert lines[3].startswith(f"skipped {folder / 'checkpoint-400'}: ") and "pickle" in lines[3]
    assert lines[4].startswith(f"skipped {folder / 'notes'}: no step in its name")
    status, out, _ = run_cli(settings, capsys, "model", "add", str(folder / "checkpoint-200"), "--series", "tiny")
    assert (status, out.split(" from ")[0]) == (0, "already registered as checkpoint 2: tiny@200 (safetensors, llama)")
    status, out, _ = run_cli(settings, capsys, "model", "add", str(folder / "checkpoint-200"), "--series", "solo",
                             "--step", "7")
    assert out.startswith("registered checkpoint 4: solo@7 ")

    status, _, err = run_cli(settings, capsys, "model", "add", str(folder), "--step", "5")
    assert status == 2 and "applies to one checkpoint" in err
    (model_root / "empty").mkdir()
    status, _, err = run_cli(settings, capsys, "model", "add", str(model_root / "empty"))
    assert status == 2 and "no checkpoints in" in err

    status, out, _ = run_cli(settings, capsys, "score", "--series", "tiny", "--corpus", "witches", "--max-length", "16")
    assert (status, out.strip()) == (0, "series 'tiny' on witches: 3 runs enqueued, 0 exist (runs 1, 2, 3)")
    status, out, _ = run_cli(settings, capsys, "score", "--series", "tiny", "--corpus", "witches", "--max-length", "16")
    assert out.strip() == "series 'tiny' on witches: 0 runs enqueued, 3 exist (runs 1, 2, 3)"
    status, _, err = run_cli(settings, capsys, "score", "--series", "nope", "--corpus", "witches")
    assert status == 2 and "no series 'nope'" in err
    for both_or_neither in (["--model", "tiny", "--series", "tiny"], []):
        with pytest.raises(SystemExit) as exited:
            run_cli(settings, capsys, "score", *both_or_neither, "--corpus", "witches")
        assert exited.value.code == 2 and "--model" in capsys.readouterr().err


def test_register_and_score_a_series_end_to_end(cli, tmp_path, tiny_llama_dir, sessions_of_cli):
    folder = output_folder(tmp_path, tiny_llama_dir)
    (tmp_path / "witches.txt").write_text("When shall we three meet again?\nIn thunder, lightning, or in rain?")
    cli("corpus", "add", str(tmp_path / "witches.txt"), "--name", "witches")
    assert "registered checkpoint 3: tiny@300" in cli("model", "add", str(folder), "--series", "tiny").stdout
    scored = cli("score", "--series", "tiny", "--corpus", "witches", "--max-length", "16", "--here", "--device", "cpu")
    assert "series 'tiny' on witches: 3 runs enqueued" in scored.stdout
    # One bar over the three runs' documents, ending done.
    assert "tiny: 3 runs" in scored.stderr and "3/3" in scored.stderr and "done" in scored.stderr
    with sessions_of_cli() as session:
        states = runs.run_progress(session=session, run_ids=[1, 2, 3])
    assert {s.status for s in states.values()} == {DONE} and [s.documents_done for s in states.values()] == [1, 1, 1]


@pytest.fixture
def sessions_of_cli(tmp_path):
    """Sessions on the database the `cli` fixture's commands use."""
    from app.db.engine import make_engine, make_sessionmaker

    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'focalscope.db'}")
    yield make_sessionmaker(engine)
    engine.dispose()


def progress(status: str, done: int, total: int, tokens: int, rate: float | None = None, errors=()) -> RunProgress:
    return RunProgress(status=status, shards_total=1, shards_done=int(status == DONE), shards_failed=int(status == FAILED),
                       documents_total=total, documents_done=done, tokens_done=tokens, tokens_per_s=rate,
                       errors=list(errors))


@pytest.mark.parametrize("statuses, expected", [
    ((DONE, DONE), DONE), ((QUEUED, QUEUED), QUEUED), ((DONE, QUEUED), RUNNING), ((FAILED, RUNNING), RUNNING),
    ((DONE, FAILED, CANCELLED), FAILED), ((DONE, CANCELLED), CANCELLED),
])
def test_one_bar_over_several_runs(statuses, expected):
    states = [progress(status, 2, 3, 100 * (i + 1), rate=50.0 if status == RUNNING else None,
                       errors=["boom"] if status == FAILED else ()) for i, status in enumerate(statuses)]
    combined = overall(states)
    assert combined.status == expected
    assert (combined.documents_done, combined.documents_total) == (2 * len(states), 3 * len(states))
    assert combined.tokens_done == sum(100 * (i + 1) for i in range(len(states)))
    assert combined.tokens_per_s == (50.0 if RUNNING in statuses else None)
    assert combined.errors == (["boom"] if FAILED in statuses else [])
    assert combined.shards_failed == statuses.count(FAILED)


def test_folder_and_overview_caps(api, sessions, model_root, tiny_llama_dir, corpus_id, monkeypatch):
    crowded = model_root / "crowded"
    for step in range(1001):
        (crowded / f"checkpoint-{step}").mkdir(parents=True)
    assert "a series has at most 1000" in error_of(
        api.post(f"{API}/series/register", json={"path": str(crowded), "series": "s"}), 422, "invalid_input")

    series_id = api.post(f"{API}/series/register", json={"path": str(output_folder(model_root, tiny_llama_dir)),
                                                        "series": "tiny"}).json()["series_id"]
    with sessions() as session:
        other = corpora.create_corpus(session=session, name="other", documents=[corpora.DocumentIn("x", "x.txt")])
        session.commit()
        other_id = other.id
    for corpus in (corpus_id, other_id):
        api.post(f"{API}/series/{series_id}/corpora/{corpus}/score")
    monkeypatch.setattr(series_module, "MAX_CHECKPOINTS", 2)
    monkeypatch.setattr(series_module, "MAX_SERIES_CORPORA", 1)
    detail = api.get(f"{API}/series/{series_id}").json()
    assert (detail["n_checkpoints"], [c["step"] for c in detail["checkpoints"]]) == (3, [100, 200])
    assert (detail["n_corpora"], [c["corpus_id"] for c in detail["corpora"]]) == (2, [other_id])  # newest first
    assert [r["step"] for r in detail["corpora"][0]["runs"]] == [100, 200] and detail["corpora"][0]["missing_steps"] == []
