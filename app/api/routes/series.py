"""Series as a whole: list them, register a folder of checkpoints as one, its overview (checkpoints and
the corpora they were scored on), and scoring every checkpoint of one on a corpus."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, status

from app.api.access import CallerDep
from app.api.deps import CorpusDep, PagingDep, SeriesDep, SessionDep, SettingsDep
from app.api.openapi import errors
from app.schemas.checkpoint import SeriesOut, SeriesRegister, SeriesRegistration
from app.schemas.common import Page
from app.schemas.series import SeriesDetail, SeriesScoreRequest, SeriesScoring
from app.services import checkpoint_folders, checkpoints, series as series_service

router = APIRouter(tags=["series"])


@router.get("/series", response_model=Page[SeriesOut])
def list_series(session: SessionDep, paging: PagingDep):
    items, total = checkpoints.list_series(session=session, offset=paging.offset, limit=paging.limit)
    return Page(items=items, total=total, offset=paging.offset, limit=paging.limit)


@router.post("/series/register", response_model=SeriesRegistration, status_code=status.HTTP_201_CREATED,
             responses=errors(403, 409))
def register_series(body: SeriesRegister, session: SessionDep, settings: SettingsDep, caller: CallerDep):
    """Register every checkpoint in a training output folder (checkpoint-N, step-N, global_stepN, iter-N ...
    subfolders; the step from trainer_state.json where present), or one checkpoint, into a series.
    Entries that are not checkpoints or are refused are listed as skipped; 422 when none registers."""
    result = checkpoint_folders.register_path(
        session=session, path=Path(body.path), series=body.series, roots=settings.model_roots)
    session.commit()
    return SeriesRegistration(
        series_id=result.series.id, series=result.series.name,
        registered=[checkpoints.checkpoint_out(c, show_path=caller.sees_server_paths) for c in result.registered],
        existing=[checkpoints.checkpoint_out(c, show_path=caller.sees_server_paths) for c in result.existing],
        skipped=[{"path": str(path), "reason": reason} for path, reason in result.skipped],
    )


@router.get("/series/{series_id}", response_model=SeriesDetail)
def series_detail(series: SeriesDep, session: SessionDep):
    """The series' checkpoints (at most 1000, by step) and, for each corpus any of them was scored on
    (at most 100, most recent first), the newest run of each checkpoint and the steps with none."""
    return series_service.series_detail(session=session, series=series)


@router.post("/series/{series_id}/corpora/{corpus_id}/score", response_model=SeriesScoring,
             status_code=status.HTTP_201_CREATED)
def score_series(series: SeriesDep, corpus: CorpusDep, session: SessionDep, settings: SettingsDep,
                 body: SeriesScoreRequest | None = None):
    """Score every checkpoint of the series on the corpus with these options: a run for each that has
    none (existing runs are listed, their failed shards queued again). 422 without checkpoints."""
    options = (body or SeriesScoreRequest()).options
    created, existing = series_service.score_series(
        session=session, series=series, corpus=corpus, options=options, shard_chars=settings.shard_chars)
    session.commit()
    return SeriesScoring(created=created, existing=existing)
