from __future__ import annotations


from app.schemas.common import OrmModel, UtcDateTime


class CorpusOut(OrmModel):
    id: int
    name: str
    description: str
    n_documents: int
    n_chars: int
    created_at: UtcDateTime


class DocumentOut(OrmModel):
    id: int
    corpus_id: int
    position: int
    source: str
    title: str
    n_chars: int


class DocumentText(DocumentOut):
    text: str
    meta: dict
