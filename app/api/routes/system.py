"""Health and version: what the dashboard's header and a load balancer look at."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import SessionDep
from app.db.base import utcnow
from app.db.engine import ping
from app.schemas.system import Health
from app.services import jobs

router = APIRouter(tags=["system"])


@router.get("/health", response_model=Health)
def health(session: SessionDep):
    database = ping(session)
    queue = jobs.queue_health(session=session, now=utcnow())
    return Health(status="ok", database=database, **queue.model_dump())
