"""Workers on hosts without the server's disk: a worker process with its own data directory, which
does not read the registered path, scores a run by fetching the checkpoint through a live API with
a write token, once; later jobs, in that process and in another worker on its data directory, use
the cache. A file tampered with on the server is refused and never loaded. A checkpoint registered
at an S3 URL (moto's S3 server on loopback) is fetched from there by a worker without the API. Two fetches of one checkpoint on a host at once leave one whole copy."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from app.db.engine import make_engine, make_sessionmaker
from app.main import create_app
from app.models.checkpoint import Checkpoint
from app.models.job import Job
from app.schemas.run import RunOptions
from app.services import checkpoints, corpora, runs, tokens
from app.services.checkpoint_manifest import FileEntry, Manifest
from app.services.queue import Claim
from app.vocab import FAILED, KIND_SCORE
from tests.support.api import own_settings
from tests.support.cli import REPO
from tests.support.data import TEXTS, make_run
from tests.support.live import live_app
from workers.checkpoint_fetch import CheckpointSource, fetch_into_cache, local_checkpoint
from workers.context import JobContext, JobInterrupted
from workers.loop import Worker
from workers.scoring.job import fetch_reporter

FILE_ROUTE = "/api/v1/checkpoints/{checkpoint_id}/files/{name}"
MANIFEST_ROUTE = "/api/v1/checkpoints/{checkpoint_id}/files"
WORKER_TIMEOUT_S = 180


def requests_served(app, route: str) -> int:
    """Answered 200s of `route`, from the API's own metrics."""
    value = app.state.metrics.registry.get_sample_value(
        "focalscope_http_request_duration_seconds_count", {"method": "GET", "route": route, "status": "200"})
    return int(value or 0)


def run_status(sessions, run_id):
    with sessions() as session:
        return runs.run_progress(session=session, run_ids=[run_id])[run_id]


@pytest.fixture
def server(settings, sessions, tiny_llama_dir, tmp_path):
    """A live API that requires tokens, with a write token and a run of a checkpoint in its data dir:
    (app, base URL, token, run id, checkpoint id, the checkpoint's folder)."""
    import shutil

    folder = shutil.copytree(tiny_llama_dir, settings.data_dir / "models" / "tiny")
    run_id = make_run(sessions, folder)
    with sessions() as session:
        secret = tokens.create_token(session=session, name="gpu-host", scope="write").secret
        checkpoint_id = session.scalar(select(Checkpoint.id))
        session.commit()
    app = create_app(settings.model_copy(update={"require_token": True}), serve_ui=False)
    with live_app(app) as url:
        yield app, url, secret, run_id, checkpoint_id, folder


def remote_settings(settings, tmp_path, url, secret):
    """A worker's settings on another host: its own data dir, never the registered paths, the API."""
    return settings.model_copy(update={"data_dir": tmp_path / "remote", "api_url": url, "api_token": SecretStr(secret),
                                       "use_registered_paths": False})


# Many hosts share a PostgreSQL database; a worker process costs seconds, so it runs on that one
# dialect (the in-process tests below run on both).
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_worker_elsewhere_fetches_a_checkpoint_once_and_reuses_it(server, settings, sessions, tmp_path):
    app, url, secret, first_run, checkpoint_id, _ = server
    with sessions() as session:  # the same options on another corpus: the worker keeps its scorer
        corpus = corpora.create_corpus(session=session, name="again", documents=[
            corpora.DocumentIn(text=t, source=f"{i}.txt") for i, t in enumerate(TEXTS)])
        second_run = runs.create_run(session=session, checkpoint_id=checkpoint_id, corpus_id=corpus.id,
                                     options=RunOptions(max_length=16), shard_chars=10_000)[0].id
        session.commit()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FOCALSCOPE_") and k != "DATABASE_URL"}
    environment.update(FOCALSCOPE_DATA_DIR=str(tmp_path / "remote"), FOCALSCOPE_DATABASE_URL=settings.db_url,
                       FOCALSCOPE_API_URL=url, FOCALSCOPE_API_TOKEN=secret)
    worker = subprocess.run(
        [sys.executable, "-m", "workers", "--device", "cpu", "--kinds", KIND_SCORE, "--exit-when-idle",
         "--fetch-checkpoints"],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    assert worker.returncode == 0, worker.stderr
    assert secret not in worker.stdout + worker.stderr
    assert [run_status(sessions, r).documents_done for r in (first_run, second_run)] == [5, 5]
    with sessions() as session:
        checkpoint = session.get(Checkpoint, checkpoint_id)
        names = [f.name for f in checkpoint.files]
        cached = tmp_path / "remote" / "cache" / "checkpoints" / checkpoint.manifest_sha256
    assert sorted(p.name for p in cached.iterdir()) == names
    assert [p.name for p in cached.parent.iterdir()] == [cached.name]  # no staging folder left
    # Two jobs, one fetch: each file was downloaded once.
    assert (requests_served(app, MANIFEST_ROUTE), requests_served(app, FILE_ROUTE)) == (1, len(names))

    # Another worker process on that host (a fresh model cache) loads the cached copy; no request.
    with sessions() as session:
        third_run = runs.create_run(session=session, checkpoint_id=checkpoint_id, corpus_id=1,
                                    options=RunOptions(max_length=8), shard_chars=10_000)[0].id
        session.commit()
    Worker(remote_settings(settings, tmp_path, url, secret), kinds=(KIND_SCORE,)).run_forever(exit_when_idle=True)
    assert run_status(sessions, third_run).documents_done == 5
    assert (requests_served(app, MANIFEST_ROUTE), requests_served(app, FILE_ROUTE)) == (1, len(names))


def test_a_file_tampered_with_on_the_server_is_refused_and_never_loaded(server, settings, sessions, tmp_path):
    app, url, secret, run_id, checkpoint_id, folder = server
    # Untouched, it fetches, reporting its progress to the end.
    with sessions() as session:
        source = CheckpointSource.of(session.get(Checkpoint, checkpoint_id))
    # A worker stopping (or a job cancelled) mid-fetch stops it and keeps nothing.
    stopping = threading.Event()
    stopping.set()
    stopped = JobContext(claim=Claim(1, KIND_SCORE, {}, run_id, "token", 1, 1), settings=settings, sessions=sessions,
                         device="cpu", stopping=stopping)
    with pytest.raises(JobInterrupted):
        local_checkpoint(source, remote_settings(settings, tmp_path / "stopped", url, secret), report=fetch_reporter(stopped))
    assert list((tmp_path / "stopped" / "remote" / "cache" / "checkpoints").iterdir()) == []
    progress = []
    fetched = local_checkpoint(source, remote_settings(settings, tmp_path / "first", url, secret), report=progress.append)
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert fetched.path == str(tmp_path / "first" / "remote" / "cache" / "checkpoints" / source.manifest_sha256)
    assert progress[-1] == {"file": "tokenizer_config.json", "bytes_done": total, "bytes_total": total}

    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size: only its sha256 tells
    weights.write_bytes(bytes(data))
    Worker(remote_settings(settings, tmp_path, url, secret), kinds=(KIND_SCORE,)).run_forever(exit_when_idle=True)
    state = run_status(sessions, run_id)
    assert state.status == FAILED
    assert "'model.safetensors' arrived with sha256" in state.errors[0] and "not kept or loaded" in state.errors[0]
    with sessions() as session:
        assert session.scalar(select(Job.attempts).where(Job.run_id == run_id)) == 1  # permanent: no retries
        fingerprint = session.scalar(select(Checkpoint.tokenizer_fingerprint))
        # Nothing was loaded: the first load of a tokenizer stores its vocabulary.
        assert checkpoints.load_vocabulary(session=session, fingerprint=fingerprint) is None
    assert list((tmp_path / "remote" / "cache" / "checkpoints").iterdir()) == []


@pytest.fixture
def s3(monkeypatch):
    """An S3 server (moto's server mode) on loopback, and an s3fs filesystem on it; the environment
    points every S3 client of this process at it, as credentials in a host's environment would."""
    import s3fs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}"}.items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()  # a cached client would still know another test's server
    yield s3fs.S3FileSystem()
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def test_a_checkpoint_at_an_s3_url_is_registered_and_fetched_from_there(s3, cli, tiny_llama_dir, tmp_path):
    s3.mkdir("models")
    for path in tiny_llama_dir.iterdir():
        s3.put_file(str(path), f"models/run/step-100/{path.name}")
    url = "s3://models/run/step-100"
    added = cli("model", "add", url, "--series", "s3-tiny", "--step", "100").stdout
    assert f"registered checkpoint 1: s3-tiny@100 (safetensors, llama) at {url}" in added
    assert "s3://models/nothing: nothing there" in cli("model", "add", "s3://models/nothing", expect=2).stderr
    assert "install the fsspec package for this protocol" in cli("model", "add", "gs://models/run", expect=2).stderr
    database = f"sqlite:///{tmp_path / 'data' / 'focalscope.db'}"
    sessions = make_sessionmaker(make_engine(database))
    with sessions() as session:
        checkpoint = session.get(Checkpoint, 1)
        manifest_sha256, names = checkpoint.manifest_sha256, [f.name for f in checkpoint.files]
        corpus = corpora.create_corpus(session=session, name="scenes", documents=[corpora.DocumentIn(text=t, source=f"{i}.txt") for i, t in enumerate(TEXTS)])
        session.commit()

    def new_run(max_length: int) -> int:
        with sessions() as session:
            run, _ = runs.create_run(session=session, checkpoint_id=1, corpus_id=corpus.id,
                                     options=RunOptions(max_length=max_length), shard_chars=10_000)
            session.commit()
            return run.id

    assert names == sorted(p.name for p in tiny_llama_dir.iterdir())
    # The registering host checked its copy in its cache; a worker elsewhere, without the API, fetches its own.
    assert sorted(p.name for p in (tmp_path / "data" / "cache" / "checkpoints" / manifest_sha256).iterdir()) == names
    elsewhere = own_settings(tmp_path / "elsewhere", database)
    scored = new_run(16)
    Worker(elsewhere, kinds=(KIND_SCORE,)).run_forever(exit_when_idle=True)
    assert run_status(sessions, scored).documents_done == 5
    assert sorted(p.name for p in (elsewhere.cache_dir / "checkpoints" / manifest_sha256).iterdir()) == names

    # Changed in the bucket since registration: refused on a host that fetches it now, nothing kept.
    weights = bytearray(s3.cat_file("models/run/step-100/model.safetensors"))
    weights[-1] ^= 0xFF
    s3.pipe_file("models/run/step-100/model.safetensors", bytes(weights))
    another = own_settings(tmp_path / "another", database)
    refused = new_run(8)
    Worker(another, kinds=(KIND_SCORE,)).run_forever(exit_when_idle=True)
    state = run_status(sessions, refused)
    assert state.status == FAILED and "'model.safetensors' arrived with sha256" in state.errors[0]
    assert list((another.cache_dir / "checkpoints").iterdir()) == []


def test_two_fetches_of_one_checkpoint_on_a_host_leave_one_whole_copy(tmp_path):
    files = {"config.json": b"{}", "model.safetensors": bytes(range(256)) * 5000}
    manifest = Manifest(tuple(FileEntry(name, len(data), hashlib.sha256(data).hexdigest())
                              for name, data in sorted(files.items())))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ".fetch-999999999-left").mkdir()  # by a worker killed mid-fetch (no such process)
    both_staged = threading.Barrier(2, timeout=WORKER_TIMEOUT_S)

    @contextmanager
    def opener(name):
        if name == "model.safetensors":  # the last file: both fetches have staged the rest, then race
            both_staged.wait()
        yield io.BytesIO(files[name])

    with ThreadPoolExecutor(2) as pool:
        folders = list(pool.map(lambda _: fetch_into_cache(opener, manifest, cache), range(2)))
    assert folders == [cache / manifest.sha256] * 2
    assert {p.name: p.read_bytes() for p in folders[0].iterdir()} == files
    assert [p.name for p in cache.iterdir()] == [manifest.sha256]  # no staging folder left, the dead one's neither
