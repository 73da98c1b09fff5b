"""This host's cache of checkpoints that live elsewhere (behind the API, or at a URL): one folder per
manifest digest, `<data_dir>/cache/checkpoints/<manifest sha256>/`, holding the checkpoint's files
under their manifest names.

A folder is filled in a staging folder of its own and renamed into place whole, so a cache folder
is never half-written; two processes filling the same one at once each finish theirs, one rename
wins and the other copy is dropped. A staging folder is named after its process
(`.fetch-<pid>-…`), so one left by a process killed mid-copy is recognised and removed by the next
copy on this host. Used by workers fetching a checkpoint and by `focalscope model add URL`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

CACHE_FOLDER = "checkpoints"
STAGING_PREFIX = ".fetch-"
CHUNK_BYTES = 1 << 20


def cache_root(cache_dir: Path) -> Path:
    return cache_dir / CACHE_FOLDER


def staging_folder(root: Path) -> Path:
    """A fresh staging folder under `root`, after removing those of processes no longer running."""
    root.mkdir(parents=True, exist_ok=True)
    for abandoned in root.glob(f"{STAGING_PREFIX}*"):
        pid = abandoned.name.removeprefix(STAGING_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(abandoned, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=root))


def settle(staging: Path, target: Path) -> Path:
    """Rename a filled staging folder to its cache name; if another process got there first, its copy
    serves and this one is dropped."""
    try:
        os.rename(staging, target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(staging, ignore_errors=True)
    return target


def copy_stream(source: BinaryIO, destination: Path, *, limit: int | None = None,
                progress: Callable[[int], None] | None = None) -> tuple[int, str]:
    """Copy `source` into a new file; its size and sha256. Stops as soon as more than `limit` bytes
    arrived (the size returned is then limit + 1: the caller says what that means)."""
    digest, size = hashlib.sha256(), 0
    with destination.open("xb") as sink:
        while chunk := source.read(CHUNK_BYTES):
            size += len(chunk)
            if limit is not None and size > limit:
                return limit + 1, ""
            digest.update(chunk)
            sink.write(chunk)
            if progress is not None:
                progress(size)
    return size, digest.hexdigest()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
