"""Checkpoint uploads: a .gguf file, or a .zip / .tar(.gz) of a safetensors checkpoint directory.

Archives are untrusted: every member is checked before anything is written — at most MAX_MEMBERS,
only regular files with checkpoint-like names (no links, no devices), no absolute paths, no `..`,
total size within the limit and within MAX_RATIO times the archive's size (a compression bomb) —
then extracted one by one into a fresh directory, each at most its declared size. Pickle weights
are refused with a hint on converting them. An upload that fails, that turns out to be registered
already, or whose file was uploaded before (same sha256) leaves no files behind.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tarfile
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePath, PurePosixPath
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.checkpoint import Checkpoint
from app.services.checkpoint_files import PICKLE_HINT, PICKLE_SUFFIXES, inspect
from app.services.checkpoints import register_checkpoint
from app.services.errors import InvalidInput, TooLarge
from app.vocab import CHECKPOINT_FILE_SUFFIXES

MAX_MEMBERS = 64
COPY_CHUNK = 1 << 20
# Unpacked bytes per archive byte at most. Weights compress by a few percent and tokenizer files by
# 3-5x; a compression bomb by a thousand or more. Below MIN_RATIO_BUDGET unpacked, any ratio is fine.
MAX_RATIO = 100
MIN_RATIO_BUDGET = 16 * 1024 * 1024
# Checkpoint.meta key: the sha256 of the uploaded file the checkpoint came from.
UPLOAD_SHA256 = "upload_sha256"


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


@dataclass(frozen=True)
class RegisteredUpload:
    checkpoint: Checkpoint
    created: bool  # a new checkpoint row (else the same weights at this series and step were there)
    sha256: str  # of the uploaded file as received
    size: int
    reused: bool  # the same file was uploaded before: its files serve, this copy was not kept


def register_upload(
    *, session: Session, source: BinaryIO, filename: str | None, directory: Path, limit: int,
    series: str | None = None, step: int = 0,
) -> RegisteredUpload:
    """Save an uploaded .gguf file or checkpoint archive into `directory` (from staged_upload),
    unpack it, and register it. The series defaults to the file's name. A file uploaded before (the
    same sha256) is recognised: its first upload's files serve the checkpoint and this copy is
    removed, as it is when the same weights are registered at this series and step already."""
    name = safe_filename(filename)
    # The file in a folder of its own: no name it may have can clash with the unpacked checkpoint.
    saved = directory / "received" / name
    saved.parent.mkdir()
    size, sha256 = save_stream(source, saved, limit)
    if name.lower().endswith(".gguf"):
        path = saved
    else:
        path = unpack_checkpoint(saved, directory / "checkpoint", limit)
        saved.unlink()
    # Checked and hashed before the first statement, which takes SQLite's write lock in the API.
    try:
        files = inspect(path)
    except InvalidInput as exc:  # the staging directory is a server path; the uploader knows its own file name
        raise InvalidInput(exc.message.replace(str(path), name)) from None
    earlier = find_upload(session=session, sha256=sha256)
    if earlier is not None:  # the same file: its first upload's files serve, this copy goes
        files = replace(files, path=Path(earlier.path))
    checkpoint, created = register_checkpoint(
        session=session, path=files.path, series=series or PurePath(name).name.split(".")[0], step=step,
        meta={UPLOAD_SHA256: sha256}, files=files,
    )
    if earlier is not None or not created:
        discard(directory)
    return RegisteredUpload(checkpoint, created, sha256, size, reused=earlier is not None)


def find_upload(*, session: Session, sha256: str) -> Checkpoint | None:
    """The first checkpoint registered from an upload of this content whose files are still there."""
    rows = session.scalars(
        select(Checkpoint).where(Checkpoint.meta[UPLOAD_SHA256].as_string() == sha256).order_by(Checkpoint.id)
    )
    return next((row for row in rows if Path(row.path).exists()), None)


def save_stream(source: BinaryIO, target: Path, limit: int) -> tuple[int, str]:
    """Copy an upload to disk, refusing it as soon as it exceeds `limit` bytes; its size and sha256."""
    written = 0
    digest = hashlib.sha256()
    with target.open("wb") as sink:
        while chunk := source.read(COPY_CHUNK):
            written += len(chunk)
            if written > limit:
                raise TooLarge(f"upload exceeds the {limit / 1024 / 1024:g} MB limit for checkpoints")
            digest.update(chunk)
            sink.write(chunk)
    if written == 0:
        raise InvalidInput("the uploaded file is empty")
    return written, digest.hexdigest()


def unpack_checkpoint(archive: Path, destination: Path, limit: int) -> Path:
    """Extract a checkpoint archive safely; returns the directory holding config.json. Every member
    is checked (name, type, count, sizes, compression ratio) before anything is written."""
    destination.mkdir(parents=True)
    members = _checked_members(archive, limit)
    for relative, size, opener in members:
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with opener() as source, target.open("xb") as sink:
            # Copy at most the declared size: a lying header cannot make us write more.
            remaining = size
            while remaining > 0 and (chunk := source.read(min(COPY_CHUNK, remaining))):
                sink.write(chunk)
                remaining -= len(chunk)
    configs = sorted(destination.rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise InvalidInput(f"{archive.name}: no config.json in the archive")
    return configs[0].parent


def _checked_members(archive: Path, limit: int) -> list[tuple[PurePosixPath, int, Callable]]:
    name = archive.name.lower()
    if name.endswith(".zip"):
        members = _zip_members(archive)
    elif name.endswith((".tar", ".tar.gz", ".tgz")):
        members = _tar_members(archive)
    elif name.endswith(PICKLE_SUFFIXES):
        raise InvalidInput(f"{archive.name}: {PICKLE_HINT}")
    else:
        raise InvalidInput(f"{archive.name}: upload a .gguf file or a .zip / .tar / .tar.gz of a safetensors directory")
    # A compression bomb unpacks to far more than it weighs; weights barely compress.
    budget = min(limit, max(MIN_RATIO_BUDGET, MAX_RATIO * archive.stat().st_size))
    checked, total, seen = [], 0, set()
    for count, (member_name, size, opener) in enumerate(members, start=1):
        if count > MAX_MEMBERS:
            raise InvalidInput(f"{archive.name}: more than {MAX_MEMBERS} files; a checkpoint has fewer")
        relative = _safe_relative(member_name)
        if relative in seen:
            raise InvalidInput(f"refusing archive member {member_name!r}: the archive holds it twice")
        seen.add(relative)
        total += size
        if total > limit:
            raise TooLarge(f"{archive.name}: unpacked size exceeds the {limit / 1024 / 1024:g} MB limit")
        if total > budget:
            raise InvalidInput(f"{archive.name}: unpacks to more than {MAX_RATIO} times its size (a compression "
                               f"bomb?); checkpoint weights barely compress")
        checked.append((relative, size, opener))
    return checked


def _safe_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or "\\" in name or "\x00" in name:
        raise InvalidInput(f"refusing archive member {name!r}: unsafe path")
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise InvalidInput(f"refusing archive member {name!r}: {PICKLE_HINT}")
    if path.suffix.lower() not in CHECKPOINT_FILE_SUFFIXES:
        raise InvalidInput(f"refusing archive member {name!r}: only {', '.join(CHECKPOINT_FILE_SUFFIXES)} files "
                           f"belong in a checkpoint")
    return path


def _zip_members(archive: Path) -> Iterator[tuple[str, int, Callable]]:
    try:
        bundle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise InvalidInput(f"{archive.name}: not a valid zip archive") from None
    for info in bundle.infolist():
        if info.is_dir():
            continue
        kind = (info.external_attr >> 16) & 0o170000
        if kind not in (0, 0o100000):  # no Unix mode (Windows zips), or a regular file
            what = "symbolic link" if kind == 0o120000 else "not a regular file"
            raise InvalidInput(f"refusing archive member {info.filename!r}: {what}")
        yield info.filename, info.file_size, lambda info=info: bundle.open(info)


def _tar_members(archive: Path) -> Iterator[tuple[str, int, Callable]]:
    try:
        bundle = tarfile.open(archive)
        # Iterated lazily: an archive of a million members is refused at the limit, not listed.
        for info in bundle:
            if info.isdir():
                continue
            if not info.isfile():
                kind = "link" if info.issym() or info.islnk() else "device or special file"
                raise InvalidInput(f"refusing archive member {info.name!r}: not a regular file ({kind})")
            yield info.name, info.size, lambda info=info: bundle.extractfile(info)
    except (tarfile.TarError, EOFError, zlib.error, OSError):
        raise InvalidInput(f"{archive.name}: not a valid tar archive") from None


def discard(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
