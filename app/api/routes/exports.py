"""A run's tokens as a Parquet or CSV file, streamed: one row per token (app.services.export)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from app.api.deps import RunDep
from app.models.run import Run
from app.services import export

router = APIRouter(tags=["runs"])


@router.get("/runs/{run_id}/export", response_class=StreamingResponse, responses={200: {"content": {
    export.MEDIA_TYPES["parquet"]: {}, export.MEDIA_TYPES["csv"]: {}}, "description": "The run's tokens, one row each."}})
def export_run(
    run: RunDep,
    request: Request,
    fmt: Annotated[Literal["parquet", "csv"], Query(alias="format", description="File format.")] = "parquet",
    gamma: Annotated[float, Query(ge=0, le=20, description="Focal γ for focal_weight and focal_loss.")] = 2.0,
):
    """Every token of the run, with document id, position, character span, text, the stored fields
    and loss, p and focal weight for γ. Read with DuckDB, pandas, polars or any Parquet reader."""
    headers = {"Content-Disposition": f'attachment; filename="run-{run.id}.{fmt}"'}
    if fmt == "parquet":
        # Parquet is compressed already: the API's gzip would spend CPU for nothing.
        headers["Content-Encoding"] = "identity"
    return StreamingResponse(_chunks(request.app.state.sessions, run.id, fmt, gamma),
                             media_type=export.MEDIA_TYPES[fmt], headers=headers)


def _chunks(sessions: sessionmaker[Session], run_id: int, fmt: str, gamma: float) -> Iterator[bytes]:
    # Its own session: the response is streamed after the request's dependencies have closed theirs.
    with sessions() as session:
        run = session.get(Run, run_id)
        yield from export.export_chunks(session=session, run=run, fmt=fmt, gamma=gamma)
