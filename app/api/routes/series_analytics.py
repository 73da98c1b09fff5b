"""Difficulty across the checkpoints of a series on a corpus: its aligned runs, one document's or one
token's trajectory, transitions between two steps, learned-at steps and cartography."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import ValidationError

from app.analytics.cartography import DEFAULT_CONFIDENCE_THRESHOLD, DEFAULT_VARIABILITY_THRESHOLD
from app.analytics.learned_at import DEFAULT_EASY_P
from app.analytics.scatter_sample import DEFAULT_SCATTER_LIMIT
from app.analytics.transitions import DEFAULT_LOSS_THRESHOLD
from app.api.deps import MAX_PAGE, CacheDep, CorpusDep, PagingDep, PathId, SeriesDep, SessionDep
from app.api.openapi import errors
from app.db.base import MAX_INTEGER
from app.schemas.run import RunOptions
from app.schemas.series import (Cell, Region, SeriesCartography, SeriesCheckpoints, SeriesLearnedAt,
                                SeriesTrajectory, SeriesTransitions, TokenTrajectory, TransitionOccurrences)
from app.services import series_cartography, series_runs, series_scores
from app.services.errors import InvalidInput
from app.services.series_runs import AlignedRuns

router = APIRouter(tags=["series"])
SERIES_ON_CORPUS = "/series/{series_id}/corpora/{corpus_id}"
# A loss threshold above this many nats means p < e^-100: every token would be L, so it is surely a typo.
MAX_TAU = 100.0


def scoring_options(options: Annotated[str | None, Query(
    max_length=1000, description='Scoring options of the runs to use, as JSON (e.g. {"dtype": "bfloat16"}; '
                                 'omitted fields take their defaults); needed only when the series was scored '
                                 'on the corpus with several sets of options.')] = None) -> RunOptions | None:
    if options is None:
        return None
    try:
        return RunOptions.model_validate_json(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(f"options{'.' + where if where else ''}: {first['msg']}") from None


OptionsDep = Annotated[RunOptions | None, Depends(scoring_options)]


def aligned_runs(session: SessionDep, series: SeriesDep, corpus: CorpusDep, options: OptionsDep) -> AlignedRuns:
    return series_runs.aligned_runs(session=session, series=series, corpus=corpus, options=options)


AlignedDep = Annotated[AlignedRuns, Depends(aligned_runs)]
# What a route on AlignedDep answers when the runs cannot be compared (not all done, other options).
ALIGNED = errors(409)
StepQuery = Annotated[int | None, Query(ge=0, le=MAX_INTEGER, description="A checkpoint step of the series.")]


@router.get(f"{SERIES_ON_CORPUS}/checkpoints", response_model=SeriesCheckpoints)
def series_checkpoints(session: SessionDep, series: SeriesDep, corpus: CorpusDep, options: OptionsDep):
    """The series' runs on the corpus and whether the statistics across checkpoints can use them."""
    found = series_runs.series_on_corpus(session=session, series=series, corpus=corpus, options=options)
    problem = found.problem()
    shared_options = {run.options_key for run in found.runs}
    return {
        "series_id": series.id, "corpus_id": corpus.id, "aligned": problem is None,
        "problem": problem.message if problem else None,
        "options": RunOptions.model_validate_json(shared_options.pop()) if len(shared_options) == 1 else None,
        "items": [{"step": r.step, "checkpoint_id": r.checkpoint_id, "run_id": r.run_id, "status": r.status}
                  for r in found.runs],
    }


@router.get(f"{SERIES_ON_CORPUS}/documents/{{document_id}}/trajectory", response_model=SeriesTrajectory,
            responses=ALIGNED)
def document_trajectory(session: SessionDep, aligned: AlignedDep, document_id: PathId):
    """One document at every step: log p, rank and entropy per step and token, its token texts once."""
    return series_scores.document_trajectory(session=session, aligned=aligned, document_id=document_id)


@router.get(f"{SERIES_ON_CORPUS}/documents/{{document_id}}/tokens/{{position}}", response_model=TokenTrajectory,
            responses=ALIGNED)
def token_trajectory(session: SessionDep, aligned: AlignedDep, document_id: PathId,
                     position: Annotated[int, Path(ge=0, le=MAX_INTEGER, description="Token index in the document.")]):
    """One token occurrence at every step: p, loss, rank, entropy and its top-k alternatives."""
    return series_scores.token_trajectory(session=session, aligned=aligned, document_id=document_id, position=position)


TauQuery = Annotated[float, Query(
    ge=0, le=MAX_TAU, description="Loss threshold τ in nats: H when the loss is above τ, else L. Default ln 2: "
                                  "L ⇔ p ≥ 1/2, the true token holds the majority of the mass (Rho-1's H/L split "
                                  "with a fixed line, so that counts add up over documents).")]


@router.get(f"{SERIES_ON_CORPUS}/transitions", response_model=SeriesTransitions, responses=ALIGNED)
def transitions(session: SessionDep, aligned: AlignedDep, cache: CacheDep, a: StepQuery = None, b: StepQuery = None,
                tau: TauQuery = DEFAULT_LOSS_THRESHOLD):
    """Counts and shares of H→H, L→H, H→L, L→L between steps a < b (default: the first and last steps)."""
    a, b = _steps_or_ends(aligned, a, b)
    return series_scores.series_transitions(session=session, aligned=aligned, step_a=a, step_b=b, tau=tau, cache=cache)


@router.get(f"{SERIES_ON_CORPUS}/transitions/occurrences", response_model=TransitionOccurrences, responses=ALIGNED)
def transition_occurrences(session: SessionDep, aligned: AlignedDep, cache: CacheDep, paging: PagingDep,
                           cell: Annotated[Cell, Query(description="H or L at step a, then at step b.")],
                           a: StepQuery = None, b: StepQuery = None, tau: TauQuery = DEFAULT_LOSS_THRESHOLD):
    """The token occurrences of one transition cell with their context, paged."""
    a, b = _steps_or_ends(aligned, a, b)
    return series_scores.transition_occurrences(session=session, aligned=aligned, step_a=a, step_b=b, tau=tau,
                                                cell=cell, offset=paging.offset, limit=paging.limit, cache=cache)


@router.get(f"{SERIES_ON_CORPUS}/learned-at", response_model=SeriesLearnedAt, responses=ALIGNED)
def learned_at(session: SessionDep, aligned: AlignedDep, cache: CacheDep,
               tau_easy: Annotated[float, Query(gt=0, le=1, description=(
                   "An occurrence is easy at a step when p ≥ tau_easy. Default 1/2: the true token is then "
                   "necessarily the top-1, the same line as the transitions' default τ = ln 2."))] = DEFAULT_EASY_P):
    """Histogram of learned-at steps (the first step after which an occurrence stays easy), overall and
    by token-frequency bucket."""
    return series_scores.learned_at_histogram(session=session, aligned=aligned, tau_easy=tau_easy, cache=cache)


ThresholdQuery = Annotated[float, Query(ge=0, le=1)]


@router.get(f"{SERIES_ON_CORPUS}/cartography", response_model=SeriesCartography, responses=ALIGNED)
def cartography(
    session: SessionDep, aligned: AlignedDep, cache: CacheDep,
    max_points: Annotated[int, Query(ge=1, le=DEFAULT_SCATTER_LIMIT, description="Scatter points at most.")] = 5000,
    min_count: Annotated[int, Query(ge=1, le=10**9, description="Token types listed need this many occurrences.")] = 5,
    confidence_threshold: ThresholdQuery = DEFAULT_CONFIDENCE_THRESHOLD,
    variability_threshold: ThresholdQuery = DEFAULT_VARIABILITY_THRESHOLD,
    region: Annotated[Region | None, Query(description="List only the token types of this region.")] = None,
    types_offset: Annotated[int, Query(ge=0, le=MAX_INTEGER)] = 0,
    types_limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
):
    """Occurrences per region (ambiguous when variability ≥ its threshold, else easy-to-learn when
    confidence ≥ its threshold, else hard-to-learn), a uniform sample of occurrences for the scatter,
    and one page of token types, most frequent first."""
    return series_cartography.series_cartography(
        session=session, aligned=aligned, max_points=max_points, confidence_threshold=confidence_threshold,
        variability_threshold=variability_threshold, min_count=min_count, region=region,
        types_offset=types_offset, types_limit=types_limit, cache=cache)


def _steps_or_ends(aligned: AlignedRuns, a: int | None, b: int | None) -> tuple[int, int]:
    steps = aligned.steps.tolist()
    return (steps[0] if a is None else a), (steps[-1] if b is None else b)
