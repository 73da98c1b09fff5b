"""Corpora and their documents. Corpora are created from uploaded .txt / .jsonl files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile, status

from app.api.deps import CorpusDep, PagingDep, SessionDep, SettingsDep
from app.schemas.common import Page
from app.schemas.corpus import CorpusOut, DocumentOut, DocumentText
from app.services import corpora
from app.services.errors import InvalidInput, TooLarge

router = APIRouter(tags=["corpora"])
READ_CHUNK = 1 << 20


@router.post("/corpora", status_code=status.HTTP_201_CREATED, response_model=CorpusOut)
async def create_corpus(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    files: Annotated[list[UploadFile], File(description=".txt (one document each) or .jsonl ({\"text\": ...} per line)")],
    description: Annotated[str, Form(max_length=2000)] = "",
):
    """Create a corpus from uploaded files (limit: FOCALSCOPE_MAX_UPLOAD_MB per request)."""
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise TooLarge(f"upload of {int(declared)} bytes exceeds the {settings.max_upload_mb:g} MB limit")
    documents: list[corpora.DocumentIn] = []
    received = 0
    for upload in files:
        data = bytearray()
        while chunk := await upload.read(READ_CHUNK):
            received += len(chunk)
            if received > limit:
                raise TooLarge(f"upload exceeds the {settings.max_upload_mb:g} MB limit")
            data.extend(chunk)
        documents.extend(corpora.parse_file(upload.filename or "", bytes(data)))
    if len(documents) > settings.max_documents_per_corpus:
        raise InvalidInput(f"{len(documents)} documents; at most {settings.max_documents_per_corpus} per corpus")
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
    items, total = corpora.list_documents(session=session, corpus_id=corpus.id, offset=paging.offset, limit=paging.limit)
    return Page(items=items, total=total, offset=paging.offset, limit=paging.limit)


@router.get("/documents/{document_id}", response_model=DocumentText)
def get_document(document_id: int, session: SessionDep):
    return corpora.get_document(session=session, document_id=document_id)
