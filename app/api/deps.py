"""Dependencies shared by the routes: settings, a session per request, and 404-checked lookups."""

from __future__ import annotations

from typing import Annotated, Iterator

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.models.corpus import Corpus
from app.models.run import Run
from app.services import corpora, runs

# Every list endpoint is bounded: at most this many items per request.
MAX_PAGE = 500


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]


class Paging:
    def __init__(
        self,
        offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items to return.")] = 100,
    ):
        self.offset = offset
        self.limit = limit


PagingDep = Annotated[Paging, Depends()]


def valid_run(session: SessionDep, run_id: Annotated[int, Path(ge=1)]) -> Run:
    return runs.get_run(session=session, run_id=run_id)


def valid_corpus(session: SessionDep, corpus_id: Annotated[int, Path(ge=1)]) -> Corpus:
    return corpora.get_corpus(session=session, corpus_id=corpus_id)


RunDep = Annotated[Run, Depends(valid_run)]
CorpusDep = Annotated[Corpus, Depends(valid_corpus)]
