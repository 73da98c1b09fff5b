"""Model series and checkpoints, registered from server-side paths under the model roots."""

from __future__ import annotations

import re
from pathlib import Path, PurePath
from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile, status

from app.api.deps import PagingDep, SessionDep, SettingsDep
from app.models.checkpoint import Checkpoint
from app.schemas.checkpoint import CheckpointCreate, CheckpointOut, SeriesOut
from app.schemas.common import Page
from app.services import checkpoints, uploads

router = APIRouter(tags=["models"])


def checkpoint_out(checkpoint: Checkpoint) -> CheckpointOut:
    return CheckpointOut.model_validate({**_columns(checkpoint), "series_name": checkpoint.series.name})


def _columns(row) -> dict:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


@router.post("/checkpoints", response_model=CheckpointOut, status_code=status.HTTP_201_CREATED)
def register_checkpoint(body: CheckpointCreate, session: SessionDep, settings: SettingsDep, response: Response):
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
    return checkpoint_out(checkpoint)


@router.post("/checkpoints/upload", response_model=CheckpointOut, status_code=status.HTTP_201_CREATED)
def upload_checkpoint(
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    file: Annotated[UploadFile, File(description="a .gguf file, or a .zip / .tar / .tar.gz of a safetensors directory")],
    series: Annotated[str | None, Form(max_length=200)] = None,
    step: Annotated[int, Form(ge=0)] = 0,
):
    """Upload and register a checkpoint (limit: FOCALSCOPE_MAX_CHECKPOINT_UPLOAD_MB, unpacked)."""
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", PurePath(file.filename or "checkpoint").name) or "checkpoint"
    directory = uploads.upload_dir(settings.data_dir)
    directory.mkdir(parents=True)
    limit = int(settings.max_checkpoint_upload_mb * 1024 * 1024)
    try:
        saved = directory / filename
        uploads.save_stream(file.file, saved, limit)
        if filename.lower().endswith(".gguf"):
            path = saved
        else:
            path = uploads.unpack_checkpoint(saved, directory / "checkpoint", limit)
            saved.unlink()
        checkpoint, created = checkpoints.register_checkpoint(
            session=session, path=path, series=series or PurePath(filename).name.split(".")[0], step=step
        )
        session.commit()
    except BaseException:
        uploads.discard(directory)
        raise
    if not created:
        uploads.discard(directory)
        response.status_code = status.HTTP_200_OK
    return checkpoint_out(checkpoint)


@router.get("/checkpoints", response_model=Page[CheckpointOut])
def list_checkpoints(session: SessionDep, paging: PagingDep, series_id: int | None = None):
    items, total = checkpoints.list_checkpoints(
        session=session, offset=paging.offset, limit=paging.limit, series_id=series_id
    )
    return Page(items=[checkpoint_out(c) for c in items], total=total, offset=paging.offset, limit=paging.limit)


@router.get("/checkpoints/{checkpoint_id}", response_model=CheckpointOut)
def get_checkpoint(checkpoint_id: int, session: SessionDep):
    return checkpoint_out(checkpoints.get_checkpoint(session=session, checkpoint_id=checkpoint_id))


@router.get("/series", response_model=Page[SeriesOut])
def list_series(session: SessionDep, paging: PagingDep):
    rows, total = checkpoints.list_series(session=session, offset=paging.offset, limit=paging.limit)
    items = [SeriesOut.model_validate({**_columns(series), "n_checkpoints": n}) for series, n in rows]
    return Page(items=items, total=total, offset=paging.offset, limit=paging.limit)
