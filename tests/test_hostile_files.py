"""Hostile files, proven harmless without a database: pickles that would run code, checkpoints that
need custom code, archives that escape or explode, safetensors headers that lie, corpus files that
are binary or pathological. Each test states its pass criterion; the API side is tests/test_hostile_api.py."""

from __future__ import annotations

import io
import json
import pickle
import re
import shutil
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from app.services import corpus_files
from app.services.checkpoint_files import check_safetensors_header, inspect
from app.services.errors import InvalidInput, TooLarge
from app.services.uploads import MAX_MEMBERS, unpack_checkpoint

LIMIT = 64 * 1024 * 1024


class Canary:
    """Unpickling this creates the file `path`: what a malicious pickle checkpoint would do."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_pickle_weights_are_refused_and_never_unpickled(tmp_path, tiny_llama_dir):
    # The payload is live: unpickling it does create its canary.
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(Canary(proof))).close()
    assert proof.exists()

    canary = tmp_path / "canary"
    payload = pickle.dumps(Canary(canary))
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(payload)
    shutil.copy(tiny_llama_dir / "config.json", folder / "config.json")
    single = tmp_path / "weights.pt"
    single.write_bytes(payload)
    for path in (folder, single):
        with pytest.raises(InvalidInput, match="convert them to safetensors"):
            inspect(path)
    archive = _tar({"model/config.json": b"{}", "model/pytorch_model.bin": payload}, tmp_path / "model.tar.gz")
    with pytest.raises(InvalidInput, match="pytorch_model.bin.*convert them to safetensors"):
        unpack_checkpoint(archive, tmp_path / "unpacked", LIMIT)
    assert not canary.exists()


@pytest.mark.parametrize("change,why", [
    (lambda d: _edit_json(d / "config.json", auto_map={"AutoModelForCausalLM": "modeling.Model"}), "auto_map in config.json"),
    (lambda d: (d / "modeling_evil.py").write_text("open('/tmp/pwned', 'w')\n"), "modeling_evil.py is a Python file"),
    (lambda d: _edit_json(d / "tokenizer_config.json", extra={"loader": {"trust_remote_code": True}}),
     "trust_remote_code in tokenizer_config.json"),
])
def test_custom_code_is_refused_at_registration_and_by_the_worker_alike(tmp_path, tiny_llama_dir, change, why):
    from workers.context import PermanentError
    from workers.models import _config

    checkpoint = shutil.copytree(tiny_llama_dir, tmp_path / "custom")
    change(checkpoint)
    expected = f"{checkpoint}: the model needs custom code ({why}); it is never run"
    with pytest.raises(InvalidInput) as registration:
        inspect(checkpoint)
    assert registration.value.message == expected
    with pytest.raises(PermanentError) as worker:
        _config(checkpoint)
    assert str(worker.value) == expected


def test_a_plain_checkpoint_passes_the_same_checks(tiny_llama_dir):
    files = inspect(tiny_llama_dir)
    assert files.format == "safetensors" and files.architecture == "llama" and len(files.weights_sha256) == 64


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize("members,fragment", [
    ({"../evil.json": b"{}"}, "unsafe path"),
    ({"a/../../evil.json": b"{}"}, "unsafe path"),
    ({"/tmp/evil.json": b"{}"}, "unsafe path"),
    ({"config.json": _special("config.json", tarfile.SYMTYPE, "/etc/passwd")}, "not a regular file (link)"),
    ({"config.json": _special("config.json", tarfile.LNKTYPE, "/etc/passwd")}, "not a regular file (link)"),
    ({"null.json": _special("null.json", tarfile.CHRTYPE)}, "device or special file"),
    ({"pipe.json": _special("pipe.json", tarfile.FIFOTYPE)}, "device or special file"),
    ({f"f{i}.json": b"{}" for i in range(MAX_MEMBERS + 1)}, f"more than {MAX_MEMBERS} files"),
    ({"config.json": b"{}", "./config.json": b"{}"}, "holds it twice"),
])
def test_hostile_tar_members_are_refused_before_anything_is_written(tmp_path, members, fragment):
    archive = _tar(members, tmp_path / "upload.tar.gz")
    destination = tmp_path / "staging" / "checkpoint"
    with pytest.raises(InvalidInput, match=re.escape(fragment)):
        unpack_checkpoint(archive, destination, LIMIT)
    assert list(destination.rglob("*")) == []
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["checkpoint", "staging", "upload.tar.gz"]


def test_zip_links_devices_and_bombs_are_refused(tmp_path):
    link = zipfile.ZipInfo("config.json")
    link.external_attr = (0o120777 << 16)
    device = zipfile.ZipInfo("tokenizer.json")
    device.external_attr = (0o020644 << 16)
    for member, fragment in ((link, "symbolic link"), (device, "not a regular file")):
        archive = tmp_path / "m.zip"
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr(member, "/etc/passwd")
        with pytest.raises(InvalidInput, match=fragment):
            unpack_checkpoint(archive, tmp_path / "out" / member.filename, LIMIT)

    # 32 MB of zeros deflate to ~32 KB: a ratio of ~1000 is refused before a byte is inflated.
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("config.json", b"{}")
        bundle.writestr("model.safetensors", bytes(32 * 1024 * 1024))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(InvalidInput, match="compression bomb"):
        unpack_checkpoint(bomb, tmp_path / "bomb-out", LIMIT)
    assert list((tmp_path / "bomb-out").rglob("*")) == []
    with pytest.raises(TooLarge, match="unpacked size exceeds"):
        unpack_checkpoint(bomb, tmp_path / "small-limit", 1024 * 1024)


def _safetensors(header: dict, data: bytes, *, length: int | None = None) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


TENSOR = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize("content,fragment", [
    (_safetensors({"w": TENSOR}, bytes(8), length=2**40), "header length 1099511627776 does not fit"),
    (_safetensors({"w": TENSOR}, bytes(8), length=10_000), "header length 10000 does not fit"),
    (b"\x05\x00", "header length -1"),
    (_safetensors({"w": TENSOR}, bytes(4)), "past the end"),
    (_safetensors({"w": {**TENSOR, "data_offsets": [0, 12]}}, bytes(12)), "invalid header entry"),
    (_safetensors({"w": {**TENSOR, "dtype": "X9"}}, bytes(8)), "invalid header entry"),
    (_safetensors({"w": TENSOR, "v": TENSOR}, bytes(8)), "overlapping"),
    (_safetensors([1, 2], b""), "not a JSON object"),
])
def test_lying_safetensors_headers_are_refused(tmp_path, content, fragment):
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=fragment):
        check_safetensors_header(path)


def test_a_header_claiming_gigabytes_is_refused_from_the_header_alone(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(_safetensors({"w": {"dtype": "F32", "shape": [2**30], "data_offsets": [0, 2**32]}}, b""))
    with path.open("r+b") as handle:  # a sparse 3 GB file: reading it whole would take seconds
        handle.truncate(3 * 2**30)
    read_before = _bytes_read()
    with pytest.raises(InvalidInput, match="past the end"):
        check_safetensors_header(path)
    assert _bytes_read() - read_before < 1 << 20  # the header, not the 3 GB
    path.write_bytes(_safetensors({"w": TENSOR, "__metadata__": {"format": "pt"}}, bytes(8)))
    check_safetensors_header(path)  # a truthful header passes


@pytest.mark.parametrize("filename,data,message", [
    ("bin.txt", b"line one\nline two\x00\x01\x02", "bin.txt, line 2: a NUL byte"),
    ("nul.jsonl", b'{"text": "a"}\n{"text": "b\\u0000c"}\n', "nul.jsonl, line 2: a NUL character"),
    ("latin.txt", "ok\nok\ncaf\u00e9\n".encode("latin-1"), "latin.txt, line 3: not valid UTF-8"),
    ("long.jsonl", b'{"text": "a"}\n{"text": "' + b"x" * 2000 + b'"}\n', "long.jsonl, line 2: longer than 1024 bytes"),
    ("blank.txt", b"\n" * 10**6, "blank.txt: the file is empty"),
    ("blank.jsonl", b"\n" * 10**6, "blank.jsonl: the file is empty"),
])
def test_pathological_corpus_files_name_the_file_and_line(filename, data, message):
    with pytest.raises(InvalidInput) as refused:
        list(corpus_files.read_bytes(filename, data, max_line_bytes=1024))
    assert refused.value.message.startswith(message)


def test_a_million_empty_lines_around_one_document_make_one_document():
    documents = list(corpus_files.read_bytes("sparse.jsonl", b"\n" * 10**6 + b'{"text": "x"}\n' + b"\n" * 10**6))
    assert [(d.text, d.source) for d in documents] == [("x", f"sparse.jsonl:{10**6 + 1}")]


def _bytes_read() -> int:
    """Bytes this process has read through read() calls so far (Linux /proc/self/io, rchar)."""
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["rchar"])


def _tar(members: dict, path: Path) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        for name, content in members.items():
            if isinstance(content, tarfile.TarInfo):
                bundle.addfile(content)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(content)
                bundle.addfile(info, io.BytesIO(content))
    path.write_bytes(buffer.getvalue())
    return path


def _edit_json(path: Path, extra: dict | None = None, **fields) -> None:
    content = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**content, **(extra or {}), **fields}))
