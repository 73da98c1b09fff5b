"""Checkpoints that live at an fsspec URL (`s3://bucket/run/step-100`, `gs://…`, `file:///…`) instead
of a path of the server: `focalscope model add URL` copies the files once into this host's cache
(app.services.checkpoint_cache), inspects them there with every check a local checkpoint gets, and
records the URL with the manifest; workers fetch from the URL into their own cache and verify.

Credentials come from each host's environment, the way the protocol's fsspec package reads them
(`AWS_*` or `~/.aws` for s3fs, Application Default Credentials for gcsfs), never from the URL or
the database. A protocol needs its package installed where it is used (s3fs, gcsfs, ...).
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Iterator

from sqlalchemy.orm import Session

from app.models.checkpoint import Checkpoint
from app.services.checkpoint_cache import cache_root, copy_stream, settle, staging_folder
from app.services.checkpoint_files import inspect
from app.services.checkpoint_manifest import MAX_FILES, safe_name
from app.services.checkpoints import register_checkpoint
from app.services.errors import DomainError, InvalidInput, NotFound

@dataclass(frozen=True)
class RemoteCheckpoint:
    """A checkpoint at a URL: its filesystem, where it lies in it, and whether it is one (GGUF) file."""

    url: str
    fs: Any  # an fsspec AbstractFileSystem
    root: str
    single_file: bool

    def location(self, name: str) -> str:
        return self.root if self.single_file else f"{self.root.rstrip('/')}/{name}"

    @contextmanager
    def open(self, name: str) -> Iterator[BinaryIO]:
        """One of its files, for reading; NotFound when it is not there."""
        try:
            handle = self.fs.open(self.location(name), "rb")
        except FileNotFoundError:
            raise NotFound(f"{self.url}: no file {name!r} there") from None
        with handle:
            yield handle


def remote_checkpoint(url: str, *, single_file: bool | None = None) -> RemoteCheckpoint:
    """The checkpoint at `url`; whether it is a single file is looked up unless the caller knows."""
    try:
        import fsspec  # imported here: only URL checkpoints need it

        fs, root = fsspec.core.url_to_fs(url)
        if single_file is None:
            single_file = not fs.isdir(root)
    except ImportError as exc:  # the protocol's package is not installed
        raise InvalidInput(f"{url}: {exc} (install the fsspec package for this protocol, e.g. s3fs or gcsfs)") from None
    except Exception as exc:  # noqa: BLE001  (each filesystem raises its own: botocore, aiohttp, ValueError ...)
        raise InvalidInput(f"{url}: cannot be read ({type(exc).__name__}: {exc})") from None
    return RemoteCheckpoint(url=url, fs=fs, root=root, single_file=single_file)


def remote_files(remote: RemoteCheckpoint) -> list[tuple[str, int]]:
    """(name, size) of every file of the checkpoint: under its folder, hidden ones left out (as in a
    manifest), or its one .gguf file."""
    url, fs, root = remote.url, remote.fs, remote.root
    if remote.single_file:
        if not fs.isfile(root):
            raise InvalidInput(f"{url}: nothing there")
        if not root.lower().endswith(".gguf"):
            raise InvalidInput(f"{url}: expected the folder of a safetensors checkpoint or a .gguf file")
        return [(PurePosixPath(root).name, int(fs.size(root)))]
    prefix = root.rstrip("/") + "/"
    files = [(path.removeprefix(prefix), int(info["size"])) for path, info in sorted(fs.find(root, detail=True).items())
             if info.get("type") == "file"]
    files = [(name, size) for name, size in files if not any(part.startswith(".") for part in name.split("/"))]
    if not files or len(files) > MAX_FILES:
        raise InvalidInput(f"{url}: {len(files)} files; a checkpoint has between 1 and {MAX_FILES}")
    return [(safe_name(name), size) for name, size in files]


def register_url(
    *, session: Session, url: str, cache_dir: Path, series: str | None = None, step: int = 0,
    tokens_seen: int | None = None,
) -> tuple[Checkpoint, bool]:
    """Copy the checkpoint at `url` into this host's cache, check and hash it there, and register it
    at its URL; (checkpoint, created) as register_checkpoint answers."""
    remote = remote_checkpoint(url)
    root = cache_root(cache_dir)
    staging = staging_folder(root)
    try:
        names = _copy_files(remote, staging)
        inspected = inspect(staging / names[0] if remote.single_file else staging)
        settle(staging, root / inspected.manifest.sha256)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when it became the cache folder
    return register_checkpoint(session=session, path=inspected.path, location=url, files=inspected,
                               series=series or PurePosixPath(remote.root).stem, step=step, tokens_seen=tokens_seen)


def _copy_files(remote: RemoteCheckpoint, staging: Path) -> list[str]:
    try:
        files = remote_files(remote)
        for name, _ in files:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            with remote.open(name) as source:
                copy_stream(source, staging / name)
    except DomainError:
        raise
    except Exception as exc:  # noqa: BLE001  (a listing or read that fails in the filesystem's own way)
        raise InvalidInput(f"{remote.url}: cannot copy it ({type(exc).__name__}: {exc})") from None
    return [name for name, _ in files]
