"""Checkpoint uploads: a .gguf file, or a .zip / .tar(.gz) of a safetensors checkpoint directory.

Archives are untrusted: members are extracted one by one into a fresh directory with limits on
count and total size, only regular files with checkpoint-like names, no absolute paths, no `..`,
no links — and pickle weights are refused before anything is loaded. An upload that fails, or
that turns out to be registered already, leaves no files behind.
"""

from __future__ import annotations

import re
import shutil
import tarfile
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath, PurePosixPath
from typing import BinaryIO

from sqlalchemy.orm import Session

from app.models.checkpoint import Checkpoint
from app.services.checkpoints import register_checkpoint
from app.services.errors import InvalidInput, TooLarge

ALLOWED_SUFFIXES = (".safetensors", ".json", ".txt", ".model", ".jinja", ".gguf")
MAX_MEMBERS = 64
COPY_CHUNK = 1 << 20


def upload_dir(data_dir: Path) -> Path:
    return data_dir / "models" / "uploads" / uuid.uuid4().hex


@contextmanager
def staged_upload(data_dir: Path) -> Iterator[Path]:
    """A fresh directory for one upload, removed again if anything fails inside the block — the
    caller's commit included, so that no files outlive a registration that did not happen."""
    directory = upload_dir(data_dir)
    directory.mkdir(parents=True)
    try:
        yield directory
    except BaseException:
        discard(directory)
        raise


def safe_filename(name: str | None) -> str:
    """The uploaded file's base name, with anything but letters, digits, `.`, `_` and `-` replaced:
    it becomes a path on the server, so a name of dots only (`..`) becomes "checkpoint"."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", PurePath(name or "").name)
    return cleaned if cleaned.strip(".") else "checkpoint"


def register_upload(
    *, session: Session, source: BinaryIO, filename: str | None, directory: Path, limit: int,
    series: str | None = None, step: int = 0,
) -> tuple[Checkpoint, bool]:
    """Save an uploaded .gguf file or checkpoint archive into `directory` (from staged_upload),
    unpack it, and register it; returns (checkpoint, created). The series defaults to the file's
    name. Weights registered already keep their first files; this upload's are removed."""
    name = safe_filename(filename)
    saved = directory / name
    save_stream(source, saved, limit)
    if name.lower().endswith(".gguf"):
        path = saved
    else:
        path = unpack_checkpoint(saved, directory / "checkpoint", limit)
        saved.unlink()
    checkpoint, created = register_checkpoint(
        session=session, path=path, series=series or PurePath(name).name.split(".")[0], step=step
    )
    if not created:
        discard(directory)
    return checkpoint, created


def save_stream(source: BinaryIO, target: Path, limit: int) -> int:
    """Copy an upload to disk, refusing it as soon as it exceeds `limit` bytes."""
    written = 0
    with target.open("wb") as sink:
        while chunk := source.read(COPY_CHUNK):
            written += len(chunk)
            if written > limit:
                raise TooLarge(f"upload exceeds the {limit / 1024 / 1024:g} MB limit for checkpoints")
            sink.write(chunk)
    if written == 0:
        raise InvalidInput("the uploaded file is empty")
    return written


def unpack_checkpoint(archive: Path, destination: Path, limit: int) -> Path:
    """Extract a checkpoint archive safely; returns the directory holding config.json."""
    destination.mkdir(parents=True)
    name = archive.name.lower()
    if name.endswith(".zip"):
        members = _zip_members(archive)
    elif name.endswith((".tar", ".tar.gz", ".tgz")):
        members = _tar_members(archive)
    else:
        raise InvalidInput(f"{archive.name}: upload a .gguf file or a .zip / .tar / .tar.gz of a safetensors directory")
    if len(members) > MAX_MEMBERS:
        raise InvalidInput(f"{archive.name}: {len(members)} files; a checkpoint has at most {MAX_MEMBERS}")
    total = 0
    for member_name, size, opener in members:
        relative = _safe_relative(member_name)
        total += size
        if total > limit:
            raise TooLarge(f"{archive.name}: unpacked size exceeds the {limit / 1024 / 1024:g} MB limit")
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with opener() as source, target.open("wb") as sink:
            # Copy at most the declared size: a lying header cannot make us write more.
            remaining = size
            while remaining > 0 and (chunk := source.read(min(COPY_CHUNK, remaining))):
                sink.write(chunk)
                remaining -= len(chunk)
    configs = sorted(destination.rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise InvalidInput(f"{archive.name}: no config.json in the archive")
    return configs[0].parent


def _safe_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise InvalidInput(f"refusing archive member {name!r}: unsafe path")
    if path.suffix.lower() not in ALLOWED_SUFFIXES:
        raise InvalidInput(f"refusing archive member {name!r}: only {', '.join(ALLOWED_SUFFIXES)} files belong in a checkpoint")
    return path


def _zip_members(archive: Path):
    try:
        bundle = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise InvalidInput(f"{archive.name}: not a valid zip archive") from None
    members = []
    for info in bundle.infolist():
        if info.is_dir():
            continue
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise InvalidInput(f"refusing archive member {info.filename!r}: symbolic link")
        members.append((info.filename, info.file_size, lambda info=info: bundle.open(info)))
    return members


def _tar_members(archive: Path):
    try:
        bundle = tarfile.open(archive)
    except tarfile.TarError:
        raise InvalidInput(f"{archive.name}: not a valid tar archive") from None
    members = []
    for info in bundle.getmembers():
        if info.isdir():
            continue
        if not info.isfile():
            raise InvalidInput(f"refusing archive member {info.name!r}: not a regular file")
        members.append((info.name, info.size, lambda info=info: bundle.extractfile(info)))
    return members


def discard(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
