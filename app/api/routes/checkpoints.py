"""Checkpoints, registered from server-side paths under the model roots or uploaded."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile, status

from app.api.access import CallerDep
from app.api.deps import CheckpointDep, PagingDep, QueryId, SessionDep, SettingsDep
from app.api.openapi import errors
from app.db.base import MAX_INTEGER
from app.schemas.checkpoint import CheckpointCreate, CheckpointOut, CheckpointUploadOut
from app.schemas.common import Page
from app.services import checkpoints, uploads

router = APIRouter(tags=["models"])


@router.post("/checkpoints", response_model=CheckpointOut, status_code=status.HTTP_201_CREATED,
             responses={200: {"model": CheckpointOut, "description": "Registered already"}, **errors(403, 409)})
def register_checkpoint(body: CheckpointCreate, session: SessionDep, settings: SettingsDep, response: Response,
                        caller: CallerDep):
    """Register a safetensors directory or GGUF file. The same weights at the same series and step
    return the existing checkpoint (200)."""
    path = Path(body.path)
    checkpoints.check_under_roots(path, settings.model_roots)
    checkpoint, created = checkpoints.register_checkpoint(
        session=session, path=path, series=body.series, step=body.step, tokens_seen=body.tokens_seen
    )
    session.commit()
    if not created:
        response.status_code = status.HTTP_200_OK
    return checkpoints.checkpoint_out(checkpoint, show_path=caller.sees_server_paths)


@router.post("/checkpoints/upload", response_model=CheckpointUploadOut, status_code=status.HTTP_201_CREATED,
             responses={200: {"model": CheckpointUploadOut, "description": "Registered already"}, **errors(409)})
def upload_checkpoint(
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    caller: CallerDep,
    file: Annotated[UploadFile, File(description="a .gguf file, or a .zip / .tar / .tar.gz of a safetensors directory")],
    series: Annotated[str | None, Form(max_length=200)] = None,
    step: Annotated[int, Form(ge=0, le=MAX_INTEGER)] = 0,
):
    """Upload and register a checkpoint (limit: FOCALSCOPE_MAX_CHECKPOINT_UPLOAD_MB, counted as the
    bytes arrive, and again unpacked). The same weights at the same series and step return the
    existing checkpoint (200); a file uploaded before is recognised by its sha256 and its files reused."""
    with uploads.staged_upload(settings.data_dir) as directory:
        registered = uploads.register_upload(
            session=session, source=file.file, filename=file.filename, directory=directory,
            limit=settings.max_checkpoint_upload_bytes, series=series, step=step,
        )
        session.commit()
    if not registered.created:
        response.status_code = status.HTTP_200_OK
    shown = checkpoints.checkpoint_out(registered.checkpoint, show_path=caller.sees_server_paths)
    return CheckpointUploadOut(**shown.model_dump(), upload_sha256=registered.sha256, upload_bytes=registered.size,
                               reused=registered.reused)


@router.get("/checkpoints", response_model=Page[CheckpointOut])
def list_checkpoints(session: SessionDep, paging: PagingDep, caller: CallerDep, series_id: QueryId = None):
    items, total = checkpoints.list_checkpoints(
        session=session, offset=paging.offset, limit=paging.limit, series_id=series_id
    )
    return Page(
        items=[checkpoints.checkpoint_out(c, show_path=caller.sees_server_paths) for c in items], total=total,
        offset=paging.offset, limit=paging.limit,
    )


@router.get("/checkpoints/{checkpoint_id}", response_model=CheckpointOut)
def get_checkpoint(checkpoint: CheckpointDep, caller: CallerDep):
    return checkpoints.checkpoint_out(checkpoint, show_path=caller.sees_server_paths)
