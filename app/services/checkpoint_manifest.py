"""A checkpoint's manifest: every file it is made of (relative name, size, sha256) and one digest over
them all, which names the checkpoint's content wherever it lies: a worker on another host fetches the
files once into a cache directory of that name and verifies each one against its entry.

A safetensors directory's manifest lists its regular files at any depth (weights, config, tokenizer,
a trained checkpoint's trainer state), leaving out hidden entries, which are tools' bookkeeping
(`.git`, whose LFS objects would double the transfer; `.cache/huggingface`) and no part of the model.
Links to files are followed (a Hugging Face cache snapshot is made of them); links to directories are
not. A GGUF checkpoint's manifest is its one file. Names are POSIX paths inside the checkpoint, checked
by `safe_name` wherever one arrives from outside (a request, a server's answer).

Hashing reads each file once: the same pass gives the registration's weight hash (the sha256 of the
top-level `*.safetensors`, concatenated in name order, as it always was).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from app.services.errors import InvalidInput

HASH_CHUNK = 8 * 1024 * 1024
# A checkpoint is a few to a few dozen files (sharded weights, tokenizer, configs); a folder of more
# is not one checkpoint, and hashing it all would make registration crawl.
MAX_FILES = 1000
MAX_NAME_CHARS = 500
# A checkpoint's location is a path of the host that registered it, or an fsspec URL (`s3://…`).
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class FileEntry:
    name: str  # relative POSIX path inside the checkpoint
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    files: tuple[FileEntry, ...]  # sorted by name

    @property
    def sha256(self) -> str:
        return manifest_digest(self.files)

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files)

    def entry(self, name: str) -> FileEntry | None:
        return next((entry for entry in self.files if entry.name == name), None)


@dataclass(frozen=True)
class HashedCheckpoint:
    manifest: Manifest
    weights_sha256: str


def is_url(location: str) -> bool:
    return bool(URL.match(location))


def manifest_digest(files: tuple[FileEntry, ...] | list[FileEntry]) -> str:
    """sha256 over one line per file, `<sha256> <size> <name>`, in name order. Names hold no line
    breaks (safe_name), so two different manifests cannot give the same text."""
    digest = hashlib.sha256()
    for entry in sorted(files, key=lambda e: e.name):
        digest.update(f"{entry.sha256} {entry.size} {entry.name}\n".encode())
    return digest.hexdigest()


def safe_name(name: str) -> str:
    """`name` when it names a file inside a checkpoint: relative, no `.`/`..`/empty segment, no
    backslash or control character; else InvalidInput (a 422 in the API)."""
    parts = name.split("/")
    unsafe = (
        not name or len(name) > MAX_NAME_CHARS or name.startswith("/") or "\\" in name
        or any(ord(c) < 32 or ord(c) == 127 for c in name) or any(p in ("", ".", "..") for p in parts)
    )
    if unsafe:
        raise InvalidInput(f"{name[:200]!r} is not a file name inside a checkpoint (a relative path, no '..')")
    return name


def hash_checkpoint(path: Path) -> HashedCheckpoint:
    """The manifest of the checkpoint at `path` (a directory or a GGUF file) and its weight hash."""
    if path.is_dir():
        root, names = path, _directory_files(path)
        weights = {p.name for p in path.glob("*.safetensors")}
    else:
        root, names, weights = path.parent, [path.name], {path.name}
    weights_digest = hashlib.sha256()
    entries = []
    # One sorted pass: the weights come in the order their hash has always been taken in (by name).
    for name in sorted(set(names) | weights):
        digest = hashlib.sha256()
        size = 0
        with (root / name).open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if name in weights:
                    weights_digest.update(chunk)
        if name in names:
            entries.append(FileEntry(name=name, size=size, sha256=digest.hexdigest()))
    return HashedCheckpoint(Manifest(tuple(entries)), weights_digest.hexdigest())


def _directory_files(path: Path) -> list[str]:
    names = []
    for directory, subdirectories, files in os.walk(path):
        subdirectories[:] = [d for d in subdirectories if not d.startswith(".")]  # walk no hidden folder
        for file in files:
            full = Path(directory) / file
            if file.startswith(".") or not full.is_file():  # hidden, a dangling link, a socket
                continue
            names.append(safe_name(PurePosixPath(full.relative_to(path)).as_posix()))
            if len(names) > MAX_FILES:
                raise InvalidInput(f"{path}: more than {MAX_FILES} files; register the checkpoint's own directory")
    return names
