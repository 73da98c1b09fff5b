"""A checkpoint on this worker's host: at its registered path where that is readable here, else in
the local cache (app.services.checkpoint_cache), fetched the first time from where it lives: its URL
when it was registered at one (`s3://…`), else the API (README "Running on several hosts").

The cache is named by the manifest's digest, so a checkpoint's files are fetched once per host,
whichever worker process needs them; every file's size and sha256 is checked against the manifest
before the cache folder is renamed into place.

A file whose sha256 differs from its manifest entry is a PermanentError: the bytes came intact (TCP
checks them; a short transfer is caught by its size), so they are what the source holds now, and a
retry would fetch the same wrong bytes. Nothing of it is kept or loaded.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from app.core.config import Settings
from app.models.checkpoint import Checkpoint
from app.services.checkpoint_cache import cache_root, copy_stream, settle, staging_folder
from app.services.checkpoint_downloads import stored_manifest
from app.services.checkpoint_manifest import FileEntry, Manifest, is_url
from app.services.checkpoint_urls import remote_checkpoint
from app.services.errors import DomainError, NotFound
from app.vocab import FORMAT_GGUF
from workers.api_client import ApiClient, FetchFailed
from workers.context import PermanentError

# Called with the fetch's progress: {"file": name, "bytes_done": n, "bytes_total": n} (all files).
Report = Callable[[dict], None]
# Opens one file of the checkpoint by its manifest name, for reading.
Opener = Callable[[str], AbstractContextManager[BinaryIO]]


@dataclass(frozen=True)
class CheckpointSource:
    """Where a run's checkpoint lies, as registered (its row in `checkpoints`). Two sources are the
    same model when path, format and weights agree; the rest only says how to fetch it."""

    path: str
    format: str
    weights_sha256: str
    checkpoint_id: int | None = field(default=None, compare=False)
    manifest_sha256: str | None = field(default=None, compare=False)
    # Read from the database for a checkpoint at a URL (the API serves it for the others).
    manifest: Manifest | None = field(default=None, compare=False)

    @classmethod
    def of(cls, checkpoint: Checkpoint) -> CheckpointSource:
        """From its row, in an open session."""
        return cls(checkpoint.path, checkpoint.format, checkpoint.weights_sha256, checkpoint_id=checkpoint.id,
                   manifest_sha256=checkpoint.manifest_sha256,
                   manifest=stored_manifest(checkpoint) if is_url(checkpoint.path) else None)


def local_checkpoint(source: CheckpointSource, settings: Settings, *, report: Report | None = None) -> CheckpointSource:
    """`source` with a path this worker can load: the registered one where it is readable here (and
    registered paths are used), else the cached copy, fetched now if this host has none."""
    if settings.use_registered_paths and not is_url(source.path) and os.access(source.path, os.R_OK):
        return source
    if source.format == FORMAT_GGUF and (settings.cache_dir / "gguf" / source.weights_sha256 / "config.json").is_file():
        return source  # converted on this host before: the loader reads the conversion, not the file
    cache = cache_root(settings.cache_dir)
    if source.manifest_sha256 and (cache / source.manifest_sha256).is_dir():
        return _in_cache(source, cache / source.manifest_sha256)
    if is_url(source.path):
        manifest, opener = _at_url(source)
    else:
        manifest, opener = _through_api(source, settings)
    return _in_cache(source, fetch_into_cache(opener, manifest, cache, report=report))


def _at_url(source: CheckpointSource) -> tuple[Manifest, Opener]:
    if source.manifest is None:
        raise PermanentError(f"checkpoint {source.checkpoint_id} at {source.path} has no manifest; register it again")
    try:
        remote = remote_checkpoint(source.path, single_file=source.format == FORMAT_GGUF)
    except DomainError as exc:  # this worker lacks the protocol's package or credentials: another may not
        raise FetchFailed(exc.message) from None
    return source.manifest, remote.open


def _through_api(source: CheckpointSource, settings: Settings) -> tuple[Manifest, Opener]:
    if settings.api_url is None or source.checkpoint_id is None:
        where = (f"{source.path} is not on this host" if settings.use_registered_paths
                 else "this worker does not read registered paths (FOCALSCOPE_USE_REGISTERED_PATHS=false)")
        raise PermanentError(f"checkpoint {source.path} is gone: {where}, and FOCALSCOPE_API_URL (--api-url) is not "
                             f"set to fetch it through the API")
    client = ApiClient(settings.api_url, settings.api_token)
    manifest = client.manifest(source.checkpoint_id)
    if source.manifest_sha256 and manifest.sha256 != source.manifest_sha256:
        raise PermanentError(f"checkpoint {source.checkpoint_id}: the API's manifest is not the one in the database")
    return manifest, lambda name: client.file(source.checkpoint_id, name)


def _in_cache(source: CheckpointSource, directory: Path) -> CheckpointSource:
    # A GGUF checkpoint's manifest is its one file, under the name it was registered with.
    path = directory / Path(source.path).name if source.format == FORMAT_GGUF else directory
    return replace(source, path=str(path))


def fetch_into_cache(opener: Opener, manifest: Manifest, cache: Path, *, report: Report | None = None) -> Path:
    """The cache folder of `manifest`, fetched and verified now unless this host has it already."""
    target = cache / manifest.sha256
    if target.is_dir():
        return target
    staging = staging_folder(cache)
    try:
        done = 0
        for entry in manifest.files:
            destination = staging / entry.name  # names were checked when the manifest was made or arrived
            destination.parent.mkdir(parents=True, exist_ok=True)

            def progress(n: int, name: str = entry.name, before: int = done) -> None:
                if report is not None:
                    report({"file": name, "bytes_done": before + n, "bytes_total": manifest.total_bytes})

            done += _fetch_file(opener, entry, destination, progress)
        return settle(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when it became the cache folder


def _fetch_file(opener: Opener, entry: FileEntry, destination: Path, progress: Callable[[int], None]) -> int:
    try:
        with opener(entry.name) as source:
            size, sha256 = copy_stream(source, destination, limit=entry.size, progress=progress)
    except NotFound as gone:
        raise PermanentError(gone.message) from None
    if size > entry.size:
        raise PermanentError(f"file {entry.name!r} is longer at its source than its manifest's {entry.size} bytes: "
                             f"it changed since registration")
    if size < entry.size:
        raise FetchFailed(f"file {entry.name!r} broke off at {size} of {entry.size} bytes")
    if sha256 != entry.sha256:
        raise PermanentError(f"file {entry.name!r} arrived with sha256 {sha256}, its manifest says {entry.sha256}: "
                             f"its source's copy changed since registration; it was not kept or loaded")
    return size
