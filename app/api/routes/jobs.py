"""The job queue, read-only: status, progress and errors of every job."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func, select

from app.api.deps import PagingDep, SessionDep
from app.models.job import Job
from app.schemas.common import Page
from app.schemas.job import JobOut
from app.services.errors import NotFound

router = APIRouter(tags=["jobs"])


@router.get("/jobs", response_model=Page[JobOut])
def list_jobs(
    session: SessionDep, paging: PagingDep, status: str | None = None, kind: str | None = None, run_id: int | None = None,
):
    conditions = [c for c in (
        Job.status == status if status else None,
        Job.kind == kind if kind else None,
        Job.run_id == run_id if run_id else None,
    ) if c is not None]
    total = session.scalar(select(func.count(Job.id)).where(*conditions)) or 0
    items = session.scalars(
        select(Job).where(*conditions).order_by(Job.id.desc()).offset(paging.offset).limit(paging.limit)
    ).all()
    return Page(items=list(items), total=total, offset=paging.offset, limit=paging.limit)


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: int, session: SessionDep):
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job
