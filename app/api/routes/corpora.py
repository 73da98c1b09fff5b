"""Corpora and their documents. Corpora are created from uploaded .txt, .jsonl, .jsonl.gz or .parquet files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Header, UploadFile, status

from app.api.deps import CorpusDep, DocumentDep, PagingDep, SessionDep, SettingsDep
from app.schemas.common import Page
from app.schemas.corpus import CorpusOut, DocumentOut, DocumentText
from app.services import corpora
from app.services.errors import TooLarge

router = APIRouter(tags=["corpora"])
# Room for the multipart framing around the files when the declared size is checked.
MULTIPART_OVERHEAD = 64 * 1024


@router.post("/corpora", status_code=status.HTTP_201_CREATED, response_model=CorpusOut)
def create_corpus(
    session: SessionDep,
    settings: SettingsDep,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    files: Annotated[list[UploadFile], File(
        description=".txt (one document each), .jsonl / .jsonl.gz (one object per line) or .parquet (one row each)")],
    description: Annotated[str, Form(max_length=2000)] = "",
    text_field: Annotated[str, Form(min_length=1, max_length=200,
                                    description="The field (.jsonl) or column (.parquet) that holds the text.")] = "text",
    content_length: Annotated[int | None, Header(include_in_schema=False)] = None,
):
    """Create a corpus from uploaded files (limit: FOCALSCOPE_MAX_UPLOAD_MB per request)."""
    if content_length is not None and content_length > settings.max_upload_bytes + MULTIPART_OVERHEAD:
        raise TooLarge(f"upload of {content_length} bytes exceeds the {settings.max_upload_mb:g} MB limit")
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
