"""Hostile requests against the API: bodies over the limit cut off as they arrive, uploads recognised
by their sha256, paths with NUL bytes or links out of the model roots, integers past 64 bits,
corpus uploads that must not half-import, and concurrent writes on SQLite. Only 4xx, never a 500."""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from app.models import ModelSeries
from app.services import corpora
from tests.support.api import API, error_of, own_settings, upload

CHUNK = 64 * 1024
HEAD = b'--b\r\nContent-Disposition: form-data; name="file"; filename="m.gguf"\r\n\r\n'
HUGE = "32589158477190044729"  # past 64 bits


@pytest.fixture
def model_root(settings, tmp_path, tiny_llama_dir):
    root = tmp_path / "models"
    shutil.copytree(tiny_llama_dir, root / "tiny")
    settings.model_roots = [root]
    return root


def drive(app, path: str, chunks: int, *, declared: int | None = None, content_type: str = "multipart/form-data; boundary=b"):
    """POST `chunks` chunks of CHUNK bytes to the ASGI app as a server would, one receive() at a time;
    returns (status, body, chunks the app asked for). TestClient would read the whole body first."""
    pulled = 0
    messages = []
    headers = [(b"host", b"testserver"), (b"content-type", content_type.encode())]
    if declared is not None:
        headers.append((b"content-length", str(declared).encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": API + path, "raw_path": (API + path).encode(), "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}

    async def receive():
        nonlocal pulled
        pulled += 1
        if pulled > chunks:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": (HEAD if pulled == 1 else b"") + b"a" * CHUNK, "more_body": True}

    async def send(message):
        messages.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, body.decode(), min(pulled, chunks)


def chunks_to_pass(limit: int) -> int:
    """The chunk whose bytes take the body past `limit`: the last one the server should read."""
    return (limit - len(HEAD)) // CHUNK + 1


@pytest.fixture
def offline_settings(tmp_path, sqlite_url) -> Settings:
    """Settings for requests refused before any database access (one dialect is enough)."""
    return own_settings(tmp_path / "data", sqlite_url)


def test_bodies_are_cut_off_as_they_arrive(offline_settings):
    offline_settings.max_upload_mb = offline_settings.max_checkpoint_upload_mb = 0.5
    app = create_app(offline_settings, serve_ui=False)
    for path in ("/corpora", "/checkpoints/upload"):
        # 100 chunks (6.4 MB) sent without a length: reading stops at the chunk that passes the
        # limit plus the multipart allowance (0.5 MB + 64 KB: the 9th).
        status, body, pulled = drive(app, path, 100)
        assert (status, pulled) == (413, chunks_to_pass(512 * 1024 + 64 * 1024)) == (413, 9), body
        assert '"code":"too_large"' in body and "limit for this route" in body
        # A declared length over the limit: refused before a byte is read.
        status, body, pulled = drive(app, path, 100, declared=100 * CHUNK)
        assert (status, pulled) == (413, 0) and f"request body of {100 * CHUNK} bytes" in body
    # Every other route takes JSON of at most 1 MB.
    status, body, pulled = drive(app, "/runs", 100, content_type="application/json")
    assert (status, pulled) == (413, chunks_to_pass(1024 * 1024)) == (413, 16) and "1 MB limit" in body


def zipped(directory) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for path in sorted(directory.iterdir()):
            bundle.write(path, f"model/{path.name}")
    return buffer.getvalue()


def test_the_same_upload_twice_is_recognised_and_its_files_reused(api, settings, model_root):
    archive = zipped(model_root / "tiny")
    uploads_dir = settings.data_dir / "models" / "uploads"

    def send(series, step, name="tiny.zip", content=archive):
        return api.post(f"{API}/checkpoints/upload", files={"file": (name, content)}, data={"series": series, "step": step})

    first = send("a", 1)
    assert first.status_code == 201, first.text
    assert first.json()["upload_sha256"] == hashlib.sha256(archive).hexdigest()
    assert (first.json()["upload_bytes"], first.json()["reused"]) == (len(archive), False)
    again = send("a", 1)
    assert (again.status_code, again.json()["id"], again.json()["reused"]) == (200, first.json()["id"], True)
    other = send("b", 2, name="renamed.zip")
    assert other.status_code == 201 and other.json()["reused"] is True
    assert other.json()["path"] == first.json()["path"] and other.json()["id"] != first.json()["id"]
    assert len(list(uploads_dir.iterdir())) == 1  # one copy of the files on disk
    # An upload named ".." stays a file name inside its own directory: a 4xx, no 500.
    assert "upload a .gguf" in error_of(send("c", 3, name="..", content=archive[:-1]), 422, "invalid_input")
    assert len(list(uploads_dir.iterdir())) == 1


def test_registration_refuses_nul_bytes_and_files_linked_from_outside(api, model_root, tiny_llama_dir):
    path = str(model_root / "tiny")
    assert "NUL byte" in error_of(api.post(f"{API}/checkpoints", json={"path": path + "\x00x"}), 422, "invalid_input")
    assert "NUL byte" in error_of(api.post(f"{API}/series/register", json={"path": path + "\x00"}), 422, "invalid_input")
    linked = model_root / "linked"
    linked.mkdir()
    for file in tiny_llama_dir.iterdir():  # a folder inside the roots, every file a link to outside
        (linked / file.name).symlink_to(file)
    for route in ("/checkpoints", "/series/register"):
        message = error_of(api.post(f"{API}{route}", json={"path": str(linked)}), 403, "forbidden")
        assert "a link to a file outside the server's model roots" in message
    # A link deeper in: its file would be in the manifest, served to workers.
    nested = model_root / "nested"
    shutil.copytree(tiny_llama_dir, nested)
    (nested / "extra").mkdir()
    (nested / "extra" / "notes.json").symlink_to(tiny_llama_dir / "config.json")
    message = error_of(api.post(f"{API}/checkpoints", json={"path": str(nested)}), 403, "forbidden")
    assert "notes.json: a link to a file outside the server's model roots" in message
    assert api.get(f"{API}/checkpoints").json()["total"] == 0


def test_integers_past_64_bits_are_422(offline_settings):
    with TestClient(create_app(offline_settings, serve_ui=False)) as api:
        check_integers_past_64_bits(api)


def check_integers_past_64_bits(api):
    for url in (f"/runs?offset={HUGE}", f"/corpora?offset={HUGE}", f"/jobs?offset={HUGE}", f"/series?offset={HUGE}",
                f"/experiments?offset={HUGE}", f"/checkpoints?offset={HUGE}", f"/training/save-steps?save_every={HUGE}"):
        assert error_of(api.get(API + url), 422, "invalid_input")
    for body in ({"path": "/x", "step": int(HUGE)}, {"path": "/x", "tokens_seen": int(HUGE)}):
        assert error_of(api.post(f"{API}/checkpoints", json=body), 422, "invalid_input")
    training = {"corpus_id": int(HUGE), "series": "s"}
    assert "corpus_id" in error_of(api.post(f"{API}/training/jobs", json=training), 422, "invalid_input")
    assert error_of(api.post(f"{API}/checkpoints/upload", files={"file": ("m.gguf", b"GGUF")}, data={"step": HUGE}),
                    422, "invalid_input")


def test_a_corpus_with_one_bad_file_imports_nothing(api, settings):
    settings.max_line_mb = 0.001
    files = [("files", ("good.txt", b"fine text", "text/plain")),
             ("files", ("bad.jsonl", b'{"text": "ok"}\n{"text": "' + b"x" * 2000 + b'"}\n', "application/jsonl"))]
    assert error_of(upload(api, files=files), 422, "invalid_input").startswith("bad.jsonl, line 2: longer than 1048 bytes")
    files[1] = ("files", ("bad.txt", b"text\n\x00binary", "text/plain"))
    assert error_of(upload(api, files=files), 422, "invalid_input").startswith("bad.txt, line 2: a NUL byte")
    assert api.get(f"{API}/corpora").json()["total"] == 0


def test_concurrent_writes_answer_2xx(settings, sessions, tiny_llama_dir):
    """Eight threads cancel and retry one run while others create runs and upload corpora: on a SQLite
    file, before writes took the lock up front, about half of these were 500s "database is locked"."""
    settings.model_roots = [tiny_llama_dir.parent]
    with TestClient(create_app(settings, serve_ui=False), raise_server_exceptions=False) as client:
        corpus = upload(client).json()
        checkpoint = client.post(f"{API}/checkpoints", json={"path": str(tiny_llama_dir)}).json()
        run = client.post(f"{API}/runs", json={"checkpoint_id": checkpoint["id"], "corpus_id": corpus["id"]}).json()
        start = threading.Barrier(8)

        def write(i: int) -> list[int]:
            start.wait()
            codes = []
            for k in range(6):
                action = ("cancel", "retry", "runs", "corpus")[(i + k) % 4]
                if action == "runs":
                    options = {"max_length": 16 + i * 8 + k}
                    response = client.post(f"{API}/runs", json={"checkpoint_id": checkpoint["id"],
                                                                 "corpus_id": corpus["id"], "options": options})
                elif action == "corpus":
                    response = upload(client, name=f"c{i}-{k}")
                else:
                    response = client.post(f"{API}/runs/{run['id']}/{action}")
                codes.append(response.status_code)
            return codes

        with ThreadPoolExecutor(8) as pool:
            codes = [code for codes in pool.map(write, range(8)) for code in codes]
    assert len(codes) == 48 and all(code in (200, 201) for code in codes), sorted(codes)
    with sessions() as session:
        assert len(corpora.list_corpora(session=session, offset=0, limit=100)[0]) == 1 + 12
        assert session.query(ModelSeries).count() == 1
