"""Health and limits: what the dashboard's header and upload forms look at."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import SessionDep, SettingsDep
from app.db.base import utcnow
from app.db.engine import ping
from app.schemas.system import Health
from app.services import jobs

router = APIRouter(tags=["system"])


@router.get("/health", response_model=Health)
def health(session: SessionDep, settings: SettingsDep):
    database = ping(session)
    queue = jobs.queue_health(session=session, now=utcnow())
    return Health(status="ok", database=database, max_upload_mb=settings.max_upload_mb,
                  max_checkpoint_upload_mb=settings.max_checkpoint_upload_mb, **queue.model_dump())
