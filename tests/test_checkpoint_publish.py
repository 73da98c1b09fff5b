"""Trained checkpoints published back through the API: the store's routes (content checked, limits,
scopes), downloads falling back to it, and a training job killed on one host that resumes on another
whose disk it never shared, through a live API."""

from __future__ import annotations

import hashlib
import os
import shutil
import time

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from app.main import create_app
from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.job import Job
from app.models.training import TrainingMetric
from app.services import checkpoint_store, checkpoints, tokens
from app.training_specs import train_directory
from app.vocab import DONE, KIND_TRAIN
from tests.support.api import API, error_of
from tests.support.live import live_app
from tests.support.timing import clock_past_leases
from tests.support.training import enqueue
from workers.api_client import ApiClient
from workers.context import JobInterrupted
from workers.loop import Worker
from workers.training import job as train_job

STORE = f"{API}/checkpoint-files"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_store_keeps_a_file_only_under_its_own_hash(api, settings):
    body = b"model bytes" * 1000
    digest = sha256(body)
    assert api.post(f"{STORE}/missing", json={"sha256": [digest, digest]}).json() == {"missing": [digest]}
    answer = api.put(f"{STORE}/{digest}", content=body)
    assert (answer.status_code, answer.json()) == (201, {"sha256": digest, "size": len(body), "stored": True})
    assert checkpoint_store.stored_file(settings.data_dir, digest).read_bytes() == body
    again = api.put(f"{STORE}/{digest}", content=body)
    assert (again.status_code, again.json()["stored"]) == (200, False)
    assert api.post(f"{STORE}/missing", json={"sha256": [digest]}).json() == {"missing": []}

    # Bytes that are not what the name says are dropped whole; no temporary file stays.
    other = sha256(b"other")
    assert sha256(body) in error_of(api.put(f"{STORE}/{other}", content=body), 422, "invalid_input")
    assert checkpoint_store.stored_file(settings.data_dir, other) is None
    assert not list(checkpoint_store.store_root(settings.data_dir).rglob(f"{checkpoint_store.TEMPORARY_PREFIX}*"))
    for bad in ("../../etc/passwd", "A" * 64, "0" * 63):
        assert api.put(f"{STORE}/{bad}", content=b"x").status_code in (404, 422)
    error_of(api.post(f"{STORE}/missing", json={"sha256": ["not-a-hash"]}), 422, "invalid_input")


def test_a_dead_uploads_temporary_is_swept_when_the_api_starts(settings, engine):
    folder = checkpoint_store.stored_path(settings.data_dir, "ab" * 32).parent
    folder.mkdir(parents=True)
    dead, live = folder / f"{checkpoint_store.TEMPORARY_PREFIX}dead", folder / f"{checkpoint_store.TEMPORARY_PREFIX}live"
    for temporary in (dead, live):
        temporary.write_bytes(b"half a file")
    old = time.time() - checkpoint_store.ABANDONED_AFTER_S - 60
    os.utime(dead, (old, old))
    with TestClient(create_app(settings, serve_ui=False)):
        pass
    assert (dead.exists(), live.exists()) == (False, True)


def test_store_limits_and_scopes(settings, engine):
    settings.max_checkpoint_upload_mb = 0.001  # 1,048 bytes per file
    with TestClient(create_app(settings.model_copy(update={"require_token": True}), serve_ui=False)) as api:
        with api.app.state.sessions() as session:
            read = tokens.create_token(session=session, name="notebook", scope="read").secret
            write = tokens.create_token(session=session, name="gpu-host", scope="write").secret
            session.commit()
        small, large = b"s" * 100, b"l" * 5000
        error_of(api.put(f"{STORE}/{sha256(small)}", content=small), 401, "unauthorized")
        error_of(api.put(f"{STORE}/{sha256(small)}", content=small, headers=bearer(read)), 403, "forbidden")
        assert api.put(f"{STORE}/{sha256(small)}", content=small, headers=bearer(write)).status_code == 201
        assert "limit" in error_of(api.put(f"{STORE}/{sha256(large)}", content=large, headers=bearer(write)),
                                   413, "too_large")
        assert checkpoint_store.stored_file(settings.data_dir, sha256(large)) is None


def test_a_full_server_disk_is_a_507_and_keeps_nothing(settings, engine, small_disk):
    settings.data_dir = small_disk  # 3 MiB
    body = bytes(range(256)) * 16384  # 4 MiB
    with TestClient(create_app(settings, serve_ui=False)) as api:
        message = error_of(api.put(f"{STORE}/{sha256(body)}", content=body), 507, "insufficient_storage")
    assert "could not store" in message and "/" not in message.split(":", 1)[1]  # no server path
    assert not [p for p in checkpoint_store.store_root(small_disk).rglob("*") if p.is_file()]


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def test_a_checkpoint_whose_files_are_elsewhere_is_served_from_the_store(api, settings, sessions, tiny_llama_dir, tmp_path):
    elsewhere = shutil.copytree(tiny_llama_dir, tmp_path / "worker-host" / "step-000004")
    with sessions() as session:
        checkpoint, _ = checkpoints.register_checkpoint(session=session, path=elsewhere, series="trained", step=4)
        session.commit()
        checkpoint_id, names = checkpoint.id, {f.name: f.sha256 for f in checkpoint.files}
    shutil.rmtree(elsewhere)  # the worker's host, not the server's
    conflict = error_of(api.get(f"{API}/checkpoints/{checkpoint_id}/files/config.json"), 409, "conflict")
    assert "no worker published it" in conflict
    for name, digest in names.items():
        api.put(f"{STORE}/{digest}", content=(tiny_llama_dir / name).read_bytes())
    for name, digest in names.items():
        served = api.get(f"{API}/checkpoints/{checkpoint_id}/files/{name}")
        assert served.status_code == 200 and sha256(served.content) == digest


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_training_job_killed_on_one_host_resumes_on_another(settings, sessions, macbeth_corpora, tmp_path,
                                                             monkeypatch):
    """Host A trains to step 6 of 12 (saving every 4) and dies; host B, with its own disk, takes the
    job over: it fetches step 4 through the API (published by A), resumes there and publishes what it
    saves. The server's disk holds neither host's series directory."""
    train_id, _, _ = macbeth_corpora
    monkeypatch.setattr(train_job, "METRIC_FLUSH_SECONDS", 0.0)
    with sessions() as session:
        secret = tokens.create_token(session=session, name="gpu-hosts", scope="write").secret
        session.commit()
    job_id = enqueue(sessions, settings, series="roaming", corpus_id=train_id, loss="focal:2", steps=12, save_every=4,
                     seed=3)
    app = create_app(settings.model_copy(update={"require_token": True}), serve_ui=False)
    with live_app(app) as url:
        host = {name: settings.model_copy(update={"data_dir": tmp_path / name, "api_url": url,
                                                  "api_token": SecretStr(secret), "use_registered_paths": False})
                for name in ("host-a", "host-b")}

        def dies_at_6(ctx):
            ctx.on_report = lambda progress: ctx.stopping.set() if progress.done >= 6 else None
            with pytest.raises(JobInterrupted):
                train_job.run_train(ctx)

        first = Worker(host["host-a"], kinds=(KIND_TRAIN,), handlers={KIND_TRAIN: dies_at_6})
        assert first.run_one()
        first.engine.dispose()
        a_dir, b_dir = (train_directory(host[name].data_dir, "roaming") for name in ("host-a", "host-b"))
        assert sorted(p.name for p in a_dir.iterdir()) == ["step-000000", "step-000004"]
        # Host A is gone, and its disk with it: this test's server could read it, a real one could not.
        shutil.rmtree(host["host-a"].data_dir)
        second = Worker(host["host-b"], kinds=(KIND_TRAIN,), clock=clock_past_leases(settings))
        assert second.run_one()
        second.engine.dispose()

        with sessions() as session:
            job = session.get(Job, job_id)
            assert (job.status, job.attempts, job.error) == (DONE, 2, None)
            saved = {c.step: (c.path, c.manifest_sha256, [(f.name, f.sha256) for f in c.files])
                     for c in session.scalars(select(Checkpoint).join(ModelSeries).where(ModelSeries.name == "roaming"))}
            metric_steps = list(session.scalars(select(TrainingMetric.step).order_by(TrainingMetric.step)))
        # B adopted step 4 (fetched from A's published files) and saved 8 and 12 itself.
        assert sorted(p.name for p in b_dir.iterdir()) == ["step-000004", "step-000008", "step-000012"]
        assert sorted(saved) == [0, 4, 8, 12] and metric_steps == list(range(1, 13))
        assert saved[4][0] == str(a_dir / "step-000004") and saved[12][0] == str(b_dir / "step-000012")
        for name, digest in saved[4][2]:
            assert sha256((b_dir / "step-000004" / name).read_bytes()) == digest
        # Every file of every checkpoint is in the store, each content once; a host with neither
        # disk gets B's last checkpoint through the API.
        digests = {digest for _, _, files in saved.values() for _, digest in files}
        assert len(digests) < sum(len(files) for _, _, files in saved.values())  # configs are shared
        client = ApiClient(url, SecretStr(secret))
        assert client.missing(sorted(digests)) == []
        checkpoint_12 = next(iter(session_ids(sessions, 12)))
        assert client.manifest(checkpoint_12).sha256 == saved[12][1]
        with client.file(checkpoint_12, "model.safetensors") as response:
            assert sha256(response.read()) == dict(saved[12][2])["model.safetensors"]


def session_ids(sessions, step: int) -> list[int]:
    with sessions() as session:
        return list(session.scalars(select(Checkpoint.id).where(Checkpoint.step == step)))
