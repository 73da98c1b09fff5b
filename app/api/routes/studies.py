"""Studies (`focalscope study`: one experiment per seed, the same losses in each) and their results
across seeds: the numbers and table cells of `focalscope report`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from app.api.deps import PagingDep, SessionDep
from app.api.openapi import errors
from app.schemas.common import Page
from app.schemas.studies import StudyOut, StudySummary
from app.services import studies

router = APIRouter(tags=["training"])
# A study's name is its experiments' prefix; experiment names are at most 200 characters.
StudyName = Annotated[str, Path(min_length=1, max_length=200, examples=["shakespeare-study"])]


@router.get("/studies", response_model=Page[StudySummary])
def list_studies(session: SessionDep, paging: PagingDep):
    """Studies, newest first: seeds, losses, experiments, and whether every job is done."""
    items, total = studies.list_studies(session=session, offset=paging.offset, limit=paging.limit)
    return Page(items=items, total=total, offset=paging.offset, limit=paging.limit)


@router.get("/studies/{name}", response_model=StudyOut, responses=errors(404))
def get_study(name: StudyName, session: SessionDep):
    """Mean ± sd over seeds per loss, the difference from ce paired by seed (95% t half-width, beyond or
    within the seed noise), collapse flags, held-out CE per step, samples, and the command, seeds and
    versions. While jobs run, the results so far with `in_progress` set."""
    return studies.get_study(session=session, name=name)
