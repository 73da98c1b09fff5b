"""The job queue, read-only: status, progress and errors of every job."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.api.deps import JobDep, PagingDep, QueryId, SessionDep
from app.schemas.common import Page
from app.schemas.job import JobOut
from app.services import jobs
from app.vocab import JOB_KINDS, JOB_STATUSES

router = APIRouter(tags=["jobs"])


@router.get("/jobs", response_model=Page[JobOut])
def list_jobs(
    session: SessionDep, paging: PagingDep,
    status: Annotated[Literal[JOB_STATUSES] | None, Query(description="Only jobs with this status.")] = None,
    kind: Annotated[Literal[JOB_KINDS] | None, Query(description="Only jobs of this kind.")] = None,
    run_id: QueryId = None,
):
    """Jobs, newest first."""
    items, total = jobs.list_jobs(
        session=session, offset=paging.offset, limit=paging.limit, status=status, kind=kind, run_id=run_id
    )
    return Page(items=items, total=total, offset=paging.offset, limit=paging.limit)


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job: JobDep):
    return job
