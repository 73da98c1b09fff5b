"""Model A against model B on one corpus, token by token (or by character-span segments across tokenizers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.analytics.comparison import DEFAULT_EXTREMES
from app.api.openapi import errors
from app.api.deps import MAX_INTEGER, CacheDep, PathId, SessionDep
from app.schemas.compare import CompareDocument, CompareSummary
from app.services import compare
from app.services.compare_runs import RunPair, run_pair

router = APIRouter(tags=["compare"])
RunQuery = Annotated[int, Query(ge=1, le=MAX_INTEGER)]


def valid_pair(session: SessionDep, a: RunQuery, b: RunQuery) -> RunPair:
    return run_pair(session=session, a=a, b=b)


PairDep = Annotated[RunPair, Depends(valid_pair)]


@router.get("/compare", response_model=CompareSummary, responses=errors(404, 409))
def compare_runs(session: SessionDep, pair: PairDep, cache: CacheDep, extremes: Annotated[int, Query(
        ge=1, le=compare.MAX_EXTREMES, description="Units in each of the 'B wins most' and 'B loses most' lists.")]
                 = DEFAULT_EXTREMES):
    """Runs `a` and `b` on one corpus: totals, Δ by rank and frequency bucket, where B wins and loses
    most (with context), both reliability diagrams, ECE and Brier."""
    return compare.compare_summary(session=session, pair=pair, extremes=extremes, cache=cache)


@router.get("/compare/documents/{document_id}", response_model=CompareDocument, responses=errors(404, 409))
def compare_document(session: SessionDep, pair: PairDep, document_id: PathId):
    """One document's units with Δ, and both runs' tokens with p, rank and top-k."""
    return compare.compare_document(session=session, pair=pair, document_id=document_id)
