"""Probes and metrics for orchestrators and Prometheus, outside /api/v1 where they conventionally
live: /healthz (the process answers), /readyz (and its database does, at the schema head), /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import SessionDep
from app.schemas.system import Liveness, Readiness
from app.services.probes import check_ready

router = APIRouter(tags=["probes"])


@router.get("/healthz", response_model=Liveness)
def healthz():
    """The process is up; says nothing about the database (a restart would not fix that)."""
    return Liveness(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"description": "database unreachable or not at head"}})
def readyz(session: SessionDep):
    return Readiness(status="ready", **check_ready(session=session))


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
