from __future__ import annotations

from app.schemas.common import OrmModel, UtcDateTime


class JobOut(OrmModel):
    id: int
    kind: str
    status: str
    run_id: int | None
    payload: dict
    attempts: int
    max_attempts: int
    worker: str | None
    lease_expires_at: UtcDateTime | None
    progress_done: int
    progress_total: int
    tokens_done: int
    tokens_per_s: float | None
    detail: dict
    error: str | None
    created_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None
