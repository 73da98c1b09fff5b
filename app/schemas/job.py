from __future__ import annotations

from typing import Literal

from app.schemas.common import ErrorText, OrmModel, UtcDateTime
from app.vocab import JOB_KINDS, JOB_STATUSES


class JobOut(OrmModel):
    id: int
    kind: Literal[JOB_KINDS]
    status: Literal[JOB_STATUSES]
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
    error: ErrorText | None
    created_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None
