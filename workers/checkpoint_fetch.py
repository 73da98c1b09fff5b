"""A checkpoint on this worker's host: at its registered path where that is here, else in the local
cache, fetched through the API the first time (README "Running on several hosts").

The cache is `<data_dir>/cache/checkpoints/<manifest sha256>/`: named by content, so any checkpoint
with the same files (the same weights registered twice, on any server) is fetched once per host. A
fetch writes into a staging folder of its own, checks every file's size and sha256 against the
manifest, and only then renames the folder into place: a cache folder is always whole and verified,
and two workers on one host fetching the same checkpoint at once each finish theirs, one rename
wins and the other copy is dropped. A staging folder left by a worker killed mid-fetch is removed by
the next fetch on the host.

A file whose sha256 differs from its manifest entry is a PermanentError: the bytes came intact from
the server (TCP checks them; a short transfer is caught by its size), so they are what the server
holds now, and a retry would fetch the same wrong bytes. Nothing of it is kept or loaded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from app.core.config import Settings
from app.models.checkpoint import Checkpoint
from app.services.checkpoint_manifest import FileEntry, Manifest
from app.vocab import FORMAT_GGUF
from workers.api_client import ApiClient, FetchFailed
from workers.context import PermanentError

CACHE_FOLDER = "checkpoints"
STAGING_PREFIX = ".fetch-"
CHUNK_BYTES = 1 << 20
# Called with the fetch's progress: {"file": name, "bytes_done": n, "bytes_total": n} (all files).
Report = Callable[[dict], None]


@dataclass(frozen=True)
class CheckpointSource:
    """Where a run's checkpoint lies, as registered (its row in `checkpoints`). Two sources are the
    same model when path, format and weights agree; the id and manifest only say how to fetch it."""

    path: str
    format: str
    weights_sha256: str
    checkpoint_id: int | None = field(default=None, compare=False)
    manifest_sha256: str | None = field(default=None, compare=False)

    @classmethod
    def of(cls, checkpoint: Checkpoint) -> CheckpointSource:
        return cls(checkpoint.path, checkpoint.format, checkpoint.weights_sha256, checkpoint_id=checkpoint.id,
                   manifest_sha256=checkpoint.manifest_sha256)


def local_checkpoint(source: CheckpointSource, settings: Settings, *, report: Report | None = None) -> CheckpointSource:
    """`source` with a path this worker can load: the registered one where it is readable here (and
    registered paths are used), else the cached copy, fetched now if this host has none."""
    if settings.use_registered_paths and os.access(source.path, os.R_OK):
        return source
    if source.format == FORMAT_GGUF and (settings.cache_dir / "gguf" / source.weights_sha256 / "config.json").is_file():
        return source  # converted on this host before: the loader reads the conversion, not the file
    cache = settings.cache_dir / CACHE_FOLDER
    if source.manifest_sha256 and (cache / source.manifest_sha256).is_dir():
        return _in_cache(source, cache / source.manifest_sha256)
    where = (f"{source.path} is not on this host" if settings.use_registered_paths
             else "this worker does not read registered paths (FOCALSCOPE_USE_REGISTERED_PATHS=false)")
    if settings.api_url is None or source.checkpoint_id is None:
        raise PermanentError(f"checkpoint {source.path} is gone: {where}, and FOCALSCOPE_API_URL (--api-url) is not "
                             f"set to fetch it through the API")
    client = ApiClient(settings.api_url, settings.api_token)
    manifest = client.manifest(source.checkpoint_id)
    if source.manifest_sha256 and manifest.sha256 != source.manifest_sha256:
        raise PermanentError(f"checkpoint {source.checkpoint_id}: the API's manifest is not the one in the database")
    directory = fetch_into_cache(client, source.checkpoint_id, manifest, cache, report=report)
    return _in_cache(source, directory)


def _in_cache(source: CheckpointSource, directory: Path) -> CheckpointSource:
    # A GGUF checkpoint's manifest is its one file, under the name it was registered with.
    path = directory / Path(source.path).name if source.format == FORMAT_GGUF else directory
    return replace(source, path=str(path))


def fetch_into_cache(client: ApiClient, checkpoint_id: int, manifest: Manifest, cache: Path, *,
                     report: Report | None = None) -> Path:
    """The cache folder of `manifest`, fetched and verified now unless this host has it already."""
    target = cache / manifest.sha256
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_staging(cache)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=cache))
    try:
        done = 0
        for entry in manifest.files:
            destination = staging / entry.name  # names were checked when the manifest arrived
            destination.parent.mkdir(parents=True, exist_ok=True)

            def progress(n: int, name: str = entry.name, before: int = done) -> None:
                if report is not None:
                    report({"file": name, "bytes_done": before + n, "bytes_total": manifest.total_bytes})

            done += _fetch_file(client, checkpoint_id, entry, destination, progress)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():
                raise
            # Another worker on this host finished the same fetch first: its copy serves.
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when the rename made it the cache
    return target


def _fetch_file(client: ApiClient, checkpoint_id: int, entry: FileEntry, destination: Path,
                progress: Callable[[int], None]) -> int:
    digest, size = hashlib.sha256(), 0
    with client.file(checkpoint_id, entry.name) as response, destination.open("xb") as sink:
        while chunk := response.read(CHUNK_BYTES):
            size += len(chunk)
            if size > entry.size:
                raise PermanentError(f"checkpoint {checkpoint_id}: file {entry.name!r} is longer on the server than "
                                     f"its manifest's {entry.size} bytes; it changed since registration")
            digest.update(chunk)
            sink.write(chunk)
            progress(size)
    if size < entry.size:
        raise FetchFailed(f"checkpoint {checkpoint_id}: file {entry.name!r} broke off at {size} of {entry.size} bytes")
    if digest.hexdigest() != entry.sha256:
        raise PermanentError(f"checkpoint {checkpoint_id}: file {entry.name!r} arrived with sha256 {digest.hexdigest()}, "
                             f"its manifest says {entry.sha256}: the server's copy changed since registration; "
                             f"it was not kept or loaded")
    return size


def _remove_abandoned_staging(cache: Path) -> None:
    """Staging folders (`.fetch-<pid>-…`) of workers on this host that are no longer running."""
    for staging in cache.glob(f"{STAGING_PREFIX}*"):
        pid = staging.name.removeprefix(STAGING_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
