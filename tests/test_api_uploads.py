"""Checkpoint uploads through the REST API, on SQLite and PostgreSQL: archives and GGUF files
registered and recognised when sent again, refusals named by the uploaded file, the size limit, and
upload names that cannot leave the upload directory (hostile archives: test_hostile_files.py)."""

from __future__ import annotations

import pytest

from app.services.uploads import safe_filename
from tests.support.api import API, error_of


def test_checkpoint_upload_archives_and_gguf(client, model_root, tmp_path):
    import io
    import tarfile
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in (model_root / "tiny").iterdir():
            bundle.write(path, f"tiny/{path.name}")
    response = client.post(f"{API}/checkpoints/upload", files={"file": ("tiny.zip", archive.getvalue())},
                           data={"series": "uploaded", "step": "5"})
    assert response.status_code == 201, response.text
    checkpoint = response.json()
    assert (checkpoint["series_name"], checkpoint["step"], checkpoint["format"]) == ("uploaded", 5, "safetensors")
    again = client.post(f"{API}/checkpoints/upload", files={"file": ("tiny.zip", archive.getvalue())},
                        data={"series": "uploaded", "step": "5"})
    assert again.status_code == 200 and again.json()["id"] == checkpoint["id"]

    def tar_with(member: tarfile.TarInfo, payload: bytes = b"") -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
            bundle.addfile(member, io.BytesIO(payload) if member.isfile() else None)
        return buffer.getvalue()

    escape = tarfile.TarInfo("../../evil.json")
    escape.size = 2
    assert "unsafe path" in error_of(client.post(f"{API}/checkpoints/upload", files={"file": ("x.tar.gz", tar_with(escape, b"{}"))}), 422, "invalid_input")
    link = tarfile.TarInfo("config.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    assert "not a regular file" in error_of(client.post(f"{API}/checkpoints/upload", files={"file": ("x.tar.gz", tar_with(link))}), 422, "invalid_input")
    pickle_member = tarfile.TarInfo("pytorch_model.bin")
    pickle_member.size = 2
    assert "convert them to safetensors" in error_of(client.post(f"{API}/checkpoints/upload", files={"file": ("x.tar.gz", tar_with(pickle_member, b"\x80\x04"))}), 422, "invalid_input")
    no_weights = tarfile.TarInfo("config.json")
    no_weights.size = 2
    refused = error_of(client.post(f"{API}/checkpoints/upload", files={"file": ("mine.tar.gz", tar_with(no_weights, b"{}"))}), 422, "invalid_input")
    assert refused == "mine.tar.gz: no *.safetensors weights"  # named by the upload, not by the server's staging path
    assert "not a valid zip" in error_of(client.post(f"{API}/checkpoints/upload", files={"file": ("x.zip", b"garbage")}), 422, "invalid_input")
    assert "not a GGUF file" in error_of(client.post(f"{API}/checkpoints/upload", files={"file": ("m.gguf", b"NOPE" * 10)}), 422, "invalid_input")
    assert "empty" in error_of(client.post(f"{API}/checkpoints/upload", files={"file": ("m.gguf", b"")}), 422, "invalid_input")
    assert "upload a .gguf" in error_of(client.post(f"{API}/checkpoints/upload", files={"file": ("m.safetensors", b"{}")}), 422, "invalid_input")
    assert "m.bin: pickle-based weights are never loaded (unpickling runs arbitrary code); convert them to safetensors" in error_of(
        client.post(f"{API}/checkpoints/upload", files={"file": ("m.bin", b"\x80\x04")}), 422, "invalid_input")
    # Failed uploads leave nothing behind.
    uploads_dir = tmp_path / "data" / "models" / "uploads"
    assert len(list(uploads_dir.iterdir())) == 1


def test_checkpoint_upload_size_limit(client, settings):
    settings.max_checkpoint_upload_mb = 0.001
    assert "limit" in error_of(client.post(f"{API}/checkpoints/upload", files={"file": ("m.gguf", b"GGUF" + b"\0" * 5000)}), 413, "too_large")


@pytest.mark.parametrize("uploaded,saved", [
    ("tiny.zip", "tiny.zip"), ("../../etc/a b.gguf", "a_b.gguf"), ("..", "checkpoint"), (".", "checkpoint"),
    ("", "checkpoint"), (None, "checkpoint"), ("C:\\models\\m.gguf", "C__models_m.gguf"),
])
def test_uploaded_file_names_stay_inside_the_upload_directory(uploaded, saved):
    assert safe_filename(uploaded) == saved
