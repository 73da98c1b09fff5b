"""Workers on other hosts publish the files of the checkpoints they train: they ask which of a
checkpoint's files the server lacks, upload those under their sha256, then register the checkpoint
(app.services.checkpoint_store says why by content)."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Path, Request, Response, status

from app.api.deps import SettingsDep
from app.api.openapi import errors
from app.schemas.checkpoint import StoredFileOut, StoreMissingOut, StoreQuery
from app.services import checkpoint_store
from app.services.errors import InsufficientStorage

router = APIRouter(tags=["models"])
# Disk writes leave the event loop in pieces of this size (the body arrives in 64 KiB chunks).
WRITE_BYTES = 4 * 1024 * 1024
Sha256 = Annotated[str, Path(pattern=checkpoint_store.SHA256_HEX.pattern, description="The file's sha256, lower-case hex.")]


@router.post("/checkpoint-files/missing", response_model=StoreMissingOut)
def missing_files(body: StoreQuery, settings: SettingsDep):
    """Which of these files the server's store lacks (422 for anything that is not a sha256)."""
    return StoreMissingOut(missing=checkpoint_store.missing(settings.data_dir, body.sha256))


@router.put("/checkpoint-files/{sha256}", response_model=StoredFileOut, status_code=status.HTTP_201_CREATED,
            responses={200: {"model": StoredFileOut, "description": "Stored already"}, **errors(413, 507)},
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def put_file(sha256: Sha256, request: Request, response: Response, settings: SettingsDep):
    """Store one file of a checkpoint, the raw bytes as the body: kept only if they hash to `sha256`
    (else 422, nothing kept). Limit per file: FOCALSCOPE_MAX_CHECKPOINT_UPLOAD_MB (413); 507 when the
    server's disk cannot hold it (nothing kept; the worker retries later)."""
    try:
        stored, size = await _receive(checkpoint_store.Upload(settings.data_dir, sha256), request)
    except OSError as exc:
        raise InsufficientStorage(f"the server could not store file {sha256}: {exc.strerror or exc}") from None
    if not stored:
        response.status_code = status.HTTP_200_OK
    return StoredFileOut(sha256=sha256, size=size, stored=stored)


async def _receive(upload: checkpoint_store.Upload, request: Request) -> tuple[bool, int]:
    """Write the request's body through `upload`, leaving the event loop for each disk write."""
    with upload:
        pending = bytearray()
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= WRITE_BYTES:
                await anyio.to_thread.run_sync(upload.write, bytes(pending))
                pending.clear()
        await anyio.to_thread.run_sync(upload.write, bytes(pending))
        return await anyio.to_thread.run_sync(upload.finish), upload.size
