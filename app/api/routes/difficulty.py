"""What makes a token hard, for a run: how far the definitions agree, and its token types with each
definition's mean (the vocabulary view), each type's occurrences."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.analytics.hardness import DEFAULT_HARDEST_FRACTION
from app.api.openapi import errors
from app.api.deps import MAX_INTEGER, MAX_PAGE, CacheDep, PagingDep, RunDep, SessionDep
from app.schemas.difficulty import DifficultyAgreement, RunTypes, TypeOccurrences
from app.services import hardness, run_types
from app.services.compare_runs import run_pair
from app.services.runs import get_run

router = APIRouter(tags=["difficulty"])


@router.get("/runs/{run_id}/difficulty", response_model=DifficultyAgreement, responses=errors(404, 409))
def difficulty_agreement(
    run: RunDep, session: SessionDep, cache: CacheDep,
    other: Annotated[int | None, Query(ge=1, le=MAX_INTEGER, description=(
        "A second run with the same tokens: adds excess loss (loss − the other's), or the loss drop "
        "(earlier step − later) when both are checkpoints of one series."))] = None,
    fraction: Annotated[float, Query(gt=0, le=1, description="Share of tokens in each hardest set.")]
    = DEFAULT_HARDEST_FRACTION,
):
    """Spearman's ρ between the definitions of a hard token, and the overlap of their hardest sets: over
    every token of a run of up to 2,000,000 tokens, on a fixed uniform sample of that many above (with
    ρ's standard error); the means are over every token."""
    second = get_run(session=session, run_id=other) if other is not None else None
    return hardness.agreement(session=session, run=run, other=second, fraction=fraction, cache=cache)


@router.get("/runs/{run_id}/types", response_model=RunTypes, responses=errors(409))
def list_types(
    run: RunDep, session: SessionDep, cache: CacheDep, paging: PagingDep,
    sort: Annotated[str, Query(description=f"One of {', '.join(run_types.SORT_KEYS)}.")] = "count",
    descending: bool = True,
    text: Annotated[str | None, Query(max_length=200, description="Only types whose text contains this (any case).")]
    = None,
):
    """Every token type of a finished run with its count, frequency rank and mean per definition."""
    run_pair(session=session, a=run.id, b=run.id)  # 409 until the run is done: a partial table would be cached
    return run_types.run_types(session=session, run=run, sort=sort, descending=descending, text=text,
                               offset=paging.offset, limit=paging.limit, cache=cache)


@router.get("/runs/{run_id}/types/{token_id}/occurrences", response_model=TypeOccurrences, responses=errors(409))
def type_occurrences(run: RunDep, session: SessionDep, token_id: Annotated[int, Path(ge=0, le=MAX_INTEGER)],
                     offset: Annotated[int, Query(ge=0, le=MAX_INTEGER)] = 0,
                     limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50):
    """One token type's occurrences in document order, with context."""
    return run_types.type_occurrences(session=session, run=run, token_id=token_id, offset=offset, limit=limit)
