from __future__ import annotations

from pydantic import BaseModel, Field


class QueueHealth(BaseModel):
    busy_workers: int = Field(description="Workers holding a live lease on a running job.")
    queued_jobs: int
    queue_stalled: bool = Field(description="Queued work has waited over 30 s and no worker is busy.")


class Health(QueueHealth):
    status: str = Field(description='"ok" whenever the server answers and the database does.')
    database: str = Field(description="The database's dialect: sqlite or postgresql.")
    max_upload_mb: float = Field(description="Largest corpus upload (all files of one request), in MiB.")
    max_checkpoint_upload_mb: float = Field(description="Largest checkpoint upload, as sent and unpacked, in MiB.")


class Liveness(BaseModel):
    status: str = Field(description='"ok" whenever the process answers.')


class Readiness(BaseModel):
    status: str = Field(description='"ready": the database answers and its schema is at the migrations\' head.')
    database: str = Field(description="The database's dialect: sqlite or postgresql.")
    revision: str = Field(description="The schema's Alembic revision.")
