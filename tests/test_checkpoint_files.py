"""Checkpoints addressed by content, on the server side: the manifest recorded at registration (one
hashing pass that also gives the weight hash as it always was), computed on first request for a
checkpoint registered before manifests, and the download routes (only manifest names, never a path
outside the checkpoint, a changed file refused), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import shutil

import pytest
from sqlalchemy import delete, select, update

from app.models.checkpoint import Checkpoint, CheckpointFile
from app.services import checkpoint_downloads, checkpoints
from app.services.checkpoint_manifest import hash_checkpoint, manifest_digest, safe_name
from app.services.errors import InvalidInput, NotFound
from tests.support.api import API, error_of


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def registered(sessions, tiny_llama_dir, tmp_path):
    """A copy of the tiny Llama (the test may change its files), registered: (checkpoint id, its folder)."""
    folder = shutil.copytree(tiny_llama_dir, tmp_path / "server" / "tiny")
    with sessions() as session:
        checkpoint, _ = checkpoints.register_checkpoint(session=session, path=folder, series="tiny")
        session.commit()
        return checkpoint.id, folder


def test_manifest_lists_every_file_and_only_those_download_as_they_are(api, registered):
    checkpoint_id, folder = registered
    manifest = api.get(f"{API}/checkpoints/{checkpoint_id}/files").json()
    on_disk = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    assert [f["name"] for f in manifest["files"]] == sorted(on_disk)
    assert all((f["size"], f["sha256"]) == (len(on_disk[f["name"]]), sha256(on_disk[f["name"]])) for f in manifest["files"])
    assert manifest["total_bytes"] == sum(map(len, on_disk.values()))
    checkpoint = api.get(f"{API}/checkpoints/{checkpoint_id}").json()
    assert manifest["sha256"] == checkpoint["manifest_sha256"] == manifest_digest(hash_checkpoint(folder).manifest.files)
    for entry in manifest["files"]:
        response = api.get(f"{API}/checkpoints/{checkpoint_id}/files/{entry['name']}", headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200 and response.content == on_disk[entry["name"]]
        assert response.headers["x-checkpoint-file-sha256"] == entry["sha256"]
        assert response.headers["content-encoding"] == "identity"  # weights are not gzipped for nothing

    # Only names of the manifest are served.
    (folder.parent / "secret.txt").write_text("outside the checkpoint")
    (folder / "added-later.json").write_text("{}")  # in the folder, but not in the manifest
    files = f"{API}/checkpoints/{checkpoint_id}/files"
    assert "no file 'added-later.json'" in error_of(api.get(f"{files}/added-later.json"), 404, "not_found")
    error_of(api.get(f"{files}/nothing.json"), 404, "not_found")
    for name in ("%2E%2E/secret.txt", "%2Fetc%2Fpasswd", "/etc/passwd", "a/%2E%2E/%2E%2E/secret.txt", "x%5C..%5Csecret.txt"):
        assert "not a file name inside a checkpoint" in error_of(api.get(f"{files}/{name}"), 422, "invalid_input")
    error_of(api.get(f"{API}/checkpoints/999/files/config.json"), 404, "not_found")

    # A file changed since registration is refused, without showing where it lies.
    with (folder / "tokenizer.json").open("ab") as handle:
        handle.write(b" ")
    message = error_of(api.get(f"{API}/checkpoints/{checkpoint_id}/files/tokenizer.json"), 409, "conflict")
    assert "changed on this server since it was registered" in message and str(folder) not in message


def test_a_checkpoint_registered_before_manifests_gets_one_when_asked(api, registered, sessions):
    checkpoint_id, folder = registered
    expected = api.get(f"{API}/checkpoints/{checkpoint_id}/files").json()
    with sessions() as session:  # as the migration leaves an older checkpoint
        session.execute(delete(CheckpointFile))
        session.execute(update(Checkpoint).values(manifest_sha256=None))
        session.commit()
    assert api.get(f"{API}/checkpoints/{checkpoint_id}").json()["manifest_sha256"] is None
    assert api.get(f"{API}/checkpoints/{checkpoint_id}/files").json() == expected
    with sessions() as session:
        assert session.scalar(select(Checkpoint.manifest_sha256)) == expected["sha256"]
        assert len(session.scalars(select(CheckpointFile)).all()) == len(expected["files"])
        session.execute(delete(CheckpointFile))
        session.execute(update(Checkpoint).values(manifest_sha256=None))
        session.commit()
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\0")
    assert "weights of checkpoint" in error_of(api.get(f"{API}/checkpoints/{checkpoint_id}/files"), 409, "conflict")
    shutil.rmtree(folder)
    message = error_of(api.get(f"{API}/checkpoints/{checkpoint_id}/files"), 409, "conflict")
    assert "not on this server" in message and str(folder) not in message


def test_hashing_one_pass_keeps_the_weight_hash_and_skips_hidden_entries(tmp_path):
    folder = tmp_path / "sharded"
    (folder / "trainer_state").mkdir(parents=True)
    (folder / ".git" / "lfs").mkdir(parents=True)
    files = {"model-00002.safetensors": b"second", "model-00001.safetensors": b"first", "config.json": b"{}",
             "trainer_state/state.json": b"[1]", ".git/lfs/object": b"a copy", ".DS_Store": b"x"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "linked.json").symlink_to(folder / "config.json")
    hashed = hash_checkpoint(folder)
    assert hashed.weights_sha256 == sha256(b"first" + b"second")  # the registration's hash, as before manifests
    assert [(e.name, e.size) for e in hashed.manifest.files] == [
        ("config.json", 2), ("linked.json", 2), ("model-00001.safetensors", 5), ("model-00002.safetensors", 6),
        ("trainer_state/state.json", 3)]
    single = hash_checkpoint(folder / "config.json")  # a GGUF checkpoint's manifest is its one file
    assert [(e.name, e.sha256) for e in single.manifest.files] == [("config.json", sha256(b"{}"))]
    assert single.weights_sha256 == sha256(b"{}")


def test_names_and_a_gguf_checkpoints_one_file(tmp_path):
    for name in ("config.json", "trainer_state/state.json", "a b#?.json"):
        assert safe_name(name) == name
    for name in ("", "/abs", "../x", "a/../b", "a//b", "./a", "a\\b", "a\nb", "x" * 501):
        with pytest.raises(InvalidInput):
            safe_name(name)
    gguf = tmp_path / "models" / "smol.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF and weights")
    (tmp_path / "models" / "neighbour.txt").write_text("not part of it")
    checkpoint = Checkpoint(id=7, format="gguf", path=str(gguf))
    manifest = hash_checkpoint(gguf).manifest
    assert checkpoint_downloads.file_on_server(checkpoint, manifest, "smol.gguf", data_dir=tmp_path)[0] == gguf
    with pytest.raises(NotFound):
        checkpoint_downloads.file_on_server(checkpoint, manifest, "neighbour.txt", data_dir=tmp_path)
