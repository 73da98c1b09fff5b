"""Corpora and their documents. Corpora are created from uploaded .txt, .jsonl, .jsonl.gz or .parquet files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile, status

from app.api.deps import CorpusDep, DocumentDep, PagingDep, SessionDep, SettingsDep
from app.api.openapi import errors
from app.schemas.common import Page
from app.schemas.corpus import CorpusOut, DocumentOut, DocumentText
from app.services import corpora

router = APIRouter(tags=["corpora"])


@router.post("/corpora", status_code=status.HTTP_201_CREATED, response_model=CorpusOut, responses=errors(409))
def create_corpus(
    session: SessionDep,
    settings: SettingsDep,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    files: Annotated[list[UploadFile], File(
        description=".txt (one document each), .jsonl / .jsonl.gz (one object per line) or .parquet (one row each)")],
    description: Annotated[str, Form(max_length=2000)] = "",
    text_field: Annotated[str, Form(min_length=1, max_length=200,
                                    description="The field (.jsonl) or column (.parquet) that holds the text.")] = "text",
):
    """Create a corpus from uploaded files (limit: FOCALSCOPE_MAX_UPLOAD_MB per request, counted as the
    bytes arrive: app/api/body_limits.py)."""
    documents = corpora.read_uploads(((upload.filename or "", upload.file) for upload in files), settings=settings,
                                     text_field=text_field)
    corpus = corpora.create_corpus(session=session, name=name, documents=documents, description=description)
    session.commit()
    return corpus


@router.get("/corpora", response_model=Page[CorpusOut])
def list_corpora(session: SessionDep, paging: PagingDep):
    items, total = corpora.list_corpora(session=session, offset=paging.offset, limit=paging.limit)
    return Page(items=items, total=total, offset=paging.offset, limit=paging.limit)


@router.get("/corpora/{corpus_id}", response_model=CorpusOut)
def get_corpus(corpus: CorpusDep):
    return corpus


@router.get("/corpora/{corpus_id}/documents", response_model=Page[DocumentOut])
def list_documents(corpus: CorpusDep, session: SessionDep, paging: PagingDep):
    items, total = corpora.list_documents(session=session, corpus=corpus, offset=paging.offset, limit=paging.limit)
    return Page(items=items, total=total, offset=paging.offset, limit=paging.limit)


@router.get("/documents/{document_id}", response_model=DocumentText)
def get_document(document: DocumentDep):
    return document
