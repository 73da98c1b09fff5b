"""Scoring runs: create, follow, read per-document and per-token results."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from app.api.access import CallerDep
from app.api.deps import PagingDep, QueryId, RunDep, RunDocumentDep, SessionDep, SettingsDep
from app.api.token_responses import cached_response
from app.schemas.common import Page
from app.schemas.run import DocumentTokens, RunCreate, RunDocument, RunDocumentNeighbours, RunOut, RunSummaryOut
from app.services import queue, run_documents, runs, scores
from app.services.errors import NotFound

router = APIRouter(tags=["runs"])


@router.post("/runs", response_model=RunOut, status_code=status.HTTP_201_CREATED,
             responses={200: {"model": RunOut, "description": "The same run exists"}})
def create_run(body: RunCreate, session: SessionDep, settings: SettingsDep, response: Response, caller: CallerDep):
    """Score a checkpoint on a corpus. The same checkpoint, corpus and options return the existing
    run (200), with its failed shards queued again."""
    run, created = runs.create_run(
        session=session, checkpoint_id=body.checkpoint_id, corpus_id=body.corpus_id, options=body.options,
        shard_chars=settings.shard_chars,
    )
    session.commit()
    if not created:
        response.status_code = status.HTTP_200_OK
    return runs.runs_out(session=session, runs=[run], show_paths=caller.sees_server_paths)[0]


@router.get("/runs", response_model=Page[RunOut])
def list_runs(session: SessionDep, paging: PagingDep, caller: CallerDep, corpus_id: QueryId = None,
              checkpoint_id: QueryId = None):
    items, total = runs.list_runs(
        session=session, offset=paging.offset, limit=paging.limit, corpus_id=corpus_id, checkpoint_id=checkpoint_id
    )
    return Page(items=runs.runs_out(session=session, runs=items, show_paths=caller.sees_server_paths), total=total,
                offset=paging.offset, limit=paging.limit)


@router.get("/runs/{run_id}", response_model=RunOut)
def get_run(run: RunDep, session: SessionDep, caller: CallerDep):
    return runs.runs_out(session=session, runs=[run], show_paths=caller.sees_server_paths, with_summary=True)[0]


@router.get("/runs/{run_id}/summary", response_model=RunSummaryOut)
def get_summary(run: RunDep, session: SessionDep):
    summary = runs.get_summary(session=session, run_id=run.id)
    if summary is None:
        raise NotFound(f"run {run.id} has no summary yet (it is computed when every shard is done)")
    return RunSummaryOut.model_validate(summary, from_attributes=True)


@router.get("/runs/{run_id}/documents", response_model=Page[RunDocument])
def list_run_documents(run: RunDep, session: SessionDep, paging: PagingDep):
    """The corpus' documents in corpus order, with per-document scores once they are scored."""
    items, total = run_documents.run_documents(session=session, run=run, offset=paging.offset, limit=paging.limit)
    return Page(items=items, total=total, offset=paging.offset, limit=paging.limit)


@router.get("/runs/{run_id}/documents/{document_id}/neighbours", response_model=RunDocumentNeighbours)
def document_neighbours(run: RunDep, document: RunDocumentDep, session: SessionDep):
    """The nearest scored documents before and after this one in the order of /runs/{run_id}/documents,
    and this document's 1-based position in it (for previous / next links)."""
    return run_documents.document_neighbours(session=session, run=run, document=document)


@router.get("/runs/{run_id}/documents/{document_id}/tokens", response_model=DocumentTokens,
            responses={304: {"description": "Not modified (If-None-Match matched the ETag)"}})
def document_tokens(
    run: RunDep, document: RunDocumentDep, session: SessionDep, request: Request,
    gamma: Annotated[float, Query(ge=0, le=20, description="Focal γ for focal_weight and focal_loss.")] = 2.0,
) -> Response:
    """Every token of one document with its stored and derived fields, as parallel arrays. Numbers are
    float32 written in their shortest exact form (-2.3025851, not -2.3025851249694824). Sent with an
    ETag; gzip-compressed when the client accepts it."""
    key = scores.document_tokens_key(session=session, run=run, document=document, gamma=gamma)
    return cached_response(request, request.app.state.token_responses, key,
                           lambda: scores.document_tokens(session=session, run=run, document=document, gamma=gamma))


@router.post("/runs/{run_id}/cancel", response_model=RunOut)
def cancel_run(run: RunDep, session: SessionDep, caller: CallerDep):
    queue.cancel(session=session, run_id=run.id)
    session.commit()
    return runs.runs_out(session=session, runs=[run], show_paths=caller.sees_server_paths)[0]


@router.post("/runs/{run_id}/retry", response_model=RunOut)
def retry_run(run: RunDep, session: SessionDep, caller: CallerDep):
    """Queue failed or cancelled shards of the run again, with fresh attempts."""
    queue.retry_failed(session=session, run_id=run.id)
    session.commit()
    return runs.runs_out(session=session, runs=[run], show_paths=caller.sees_server_paths)[0]
