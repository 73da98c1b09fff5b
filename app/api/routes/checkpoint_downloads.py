"""A checkpoint's files over HTTP, for workers on hosts that do not share the server's disk: the
manifest, and each file it lists (app.services.checkpoint_downloads)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import FileResponse

from app.api.deps import CheckpointDep, SettingsDep
from app.api.openapi import errors
from app.db.engine import writing
from app.schemas.checkpoint import CheckpointFileOut, CheckpointManifestOut
from app.services import checkpoint_downloads
from app.services.checkpoint_manifest import MAX_NAME_CHARS, Manifest

router = APIRouter(tags=["models"])
FILE_MEDIA_TYPE = "application/octet-stream"


def checkpoint_manifest(checkpoint: CheckpointDep, request: Request) -> Manifest:
    """The checkpoint's manifest; recorded now if it has none yet (hashing its files on this server),
    in a writing session of its own: the request's session is a reader."""
    manifest = checkpoint_downloads.stored_manifest(checkpoint)
    if manifest is None:
        manifest = checkpoint_downloads.compute_manifest(checkpoint)
        with request.app.state.sessions(bind=writing(request.app.state.engine)) as session:
            checkpoint_downloads.record_manifest(session=session, checkpoint_id=checkpoint.id, manifest=manifest)
            session.commit()
    return manifest


ManifestDep = Annotated[Manifest, Depends(checkpoint_manifest)]
FileName = Annotated[str, Path(max_length=MAX_NAME_CHARS, description="A name from the checkpoint's manifest.")]


@router.get("/checkpoints/{checkpoint_id}/files", response_model=CheckpointManifestOut, responses=errors(409))
def checkpoint_files(checkpoint: CheckpointDep, manifest: ManifestDep):
    """Every file of the checkpoint with its size and sha256, and the digest over them all: a worker
    that lacks the checkpoint fetches these files into a cache named by the digest and verifies each.
    409 when the files are not on this server or changed since registration."""
    return CheckpointManifestOut(
        checkpoint_id=checkpoint.id, sha256=manifest.sha256, total_bytes=manifest.total_bytes,
        files=[CheckpointFileOut(name=e.name, size=e.size, sha256=e.sha256) for e in manifest.files],
    )


@router.get("/checkpoints/{checkpoint_id}/files/{name:path}", response_class=FileResponse,
            responses={200: {"content": {FILE_MEDIA_TYPE: {}}, "description": "The file's bytes."}, **errors(409)})
def checkpoint_file(checkpoint: CheckpointDep, manifest: ManifestDep, name: FileName, settings: SettingsDep):
    """One file of the checkpoint, streamed; only names its manifest lists (404 for any other, 422 for
    an absolute name or one with `..`). Needs a write token: these are the model's weights themselves,
    more than a read token (a notebook, a public dashboard) is for."""
    target, entry = checkpoint_downloads.file_on_server(checkpoint, manifest, name, data_dir=settings.data_dir)
    # Weights do not compress: the API's gzip would spend CPU for nothing.
    headers = {"Content-Encoding": "identity", "X-Checkpoint-File-SHA256": entry.sha256}
    return FileResponse(target, media_type=FILE_MEDIA_TYPE, headers=headers)

