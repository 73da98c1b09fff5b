"""A checkpoint's files for workers on other hosts: its manifest, as recorded, and where one of its
files lies on this server.

A checkpoint registered since manifests exist has one from its registration (the same hashing pass
as its weight hash). One registered before gets it the first time it is asked for: the server hashes
the files at the checkpoint's path, checks that the weights are still those registered, and records it.

Errors name the checkpoint, never its server path: read-scope callers may not see server paths
(the server's log has them).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models.checkpoint import Checkpoint, CheckpointFile
from app.services.checkpoint_manifest import FileEntry, Manifest, hash_checkpoint, is_url, safe_name
from app.services.checkpoint_store import stored_file
from app.services.errors import Conflict, NotFound
from app.vocab import FORMAT_GGUF

log = logging.getLogger("focalscope.api")


def stored_manifest(checkpoint: Checkpoint) -> Manifest | None:
    """The manifest recorded for `checkpoint` (its session must be open), None if none is yet."""
    if checkpoint.manifest_sha256 is None:
        return None
    return Manifest(tuple(FileEntry(name=f.name, size=f.size, sha256=f.sha256) for f in checkpoint.files))


def add_manifest(checkpoint: Checkpoint, manifest: Manifest) -> None:
    """Attach `manifest` to a checkpoint that has none (a new one, or one registered before manifests)."""
    checkpoint.files = [CheckpointFile(name=e.name, size=e.size, sha256=e.sha256) for e in manifest.files]
    checkpoint.manifest_sha256 = manifest.sha256


def record_manifest(*, session: Session, checkpoint_id: int, manifest: Manifest) -> None:
    """Record a manifest computed for a checkpoint that had none; two requests doing it at once is fine
    (the same files give the same manifest, and the second finds the first's)."""
    checkpoint = session.scalar(select(Checkpoint).where(Checkpoint.id == checkpoint_id))
    if checkpoint is None or checkpoint.manifest_sha256 is not None:
        return
    try:
        with session.begin_nested():
            add_manifest(checkpoint, manifest)
    except IntegrityError:
        session.expire(checkpoint)


def compute_manifest(checkpoint: Checkpoint) -> Manifest:
    """Hash the checkpoint's files where it was registered; Conflict when they are not on this server
    or its weights are no longer the ones registered."""
    path = Path(checkpoint.path)
    if not path.exists():
        log.warning("checkpoint %d: %s is missing on this server", checkpoint.id, path)
        raise Conflict(f"the files of checkpoint {checkpoint.id} are not on this server (registered from another "
                       f"host, or moved since); register them again where the API can read them")
    try:
        hashed = hash_checkpoint(path)
    except OSError as exc:
        log.warning("checkpoint %d: cannot read %s: %s", checkpoint.id, path, exc)
        raise Conflict(f"the files of checkpoint {checkpoint.id} cannot be read on this server") from None
    if hashed.weights_sha256 != checkpoint.weights_sha256:
        raise Conflict(f"the weights of checkpoint {checkpoint.id} changed since it was registered; "
                       f"register the new ones as a checkpoint of their own")
    return hashed.manifest


def file_on_server(checkpoint: Checkpoint, manifest: Manifest, name: str, *, data_dir: Path) -> tuple[Path, FileEntry]:
    """The path of the manifest's file `name` on this server, and its entry: NotFound for a name the
    manifest does not hold (nothing else is ever served), Conflict for a file gone or resized since.
    A file a worker published (app.services.checkpoint_store) is served from the store, whose copy is
    verified by its name; any other from where the checkpoint was registered."""
    entry = manifest.entry(safe_name(name))
    if entry is None:
        raise NotFound(f"checkpoint {checkpoint.id} has no file {name[:200]!r} (see its manifest: /files)")
    published = stored_file(data_dir, entry.sha256)
    if published is not None:
        return published, entry
    if is_url(checkpoint.path):
        raise Conflict(f"checkpoint {checkpoint.id} lies at a URL, not on this server: workers fetch it from there")
    registered = Path(checkpoint.path)
    # A GGUF checkpoint is one file: its manifest names it, in its folder.
    target = (registered.parent if checkpoint.format == FORMAT_GGUF else registered) / entry.name
    try:
        size = target.stat().st_size if target.is_file() else None
    except OSError:
        size = None
    if size != entry.size:
        log.warning("checkpoint %d: %s is %s, its manifest says %d bytes", checkpoint.id, target,
                    "missing" if size is None else f"{size} bytes", entry.size)
        raise Conflict(f"file {entry.name!r} of checkpoint {checkpoint.id} is gone or changed on this server "
                       f"since it was registered, and no worker published it")
    return target, entry
