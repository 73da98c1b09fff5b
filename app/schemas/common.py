from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.db.base import MAX_INTEGER

T = TypeVar("T")

# An id in a request body: a number beyond any id is a 422, not a database error.
RowId = Annotated[int, Field(ge=1, le=MAX_INTEGER)]


def _no_nul(path: str) -> str:
    if "\x00" in path:
        # The operating system cannot take it (Python raises "embedded null byte").
        raise ValueError("a path cannot contain a NUL byte")
    return path


# A path on the server (PATH_MAX is 4096 on Linux).
ServerPath = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_no_nul)]

# Timestamps are stored as naive UTC (SQLite has no time zones); they leave the API marked as UTC
# so that a browser shows them in its own time zone.
UtcDateTime = Annotated[datetime, AfterValidator(lambda d: d if d.tzinfo else d.replace(tzinfo=timezone.utc))]

# An absolute path with at least one folder in it, not inside a longer word, path or URL.
SERVER_PATH = re.compile(r"(?<![\w.~/:])/(?:[^\s/:'\"]+/)+[^\s/:'\"]*")


def without_server_paths(text: str) -> str:
    """A worker's error ("cannot load checkpoint /srv/models/run/step-100: ...") with each absolute path
    cut to its last part ("step-100"): the API shows errors to callers who may not see server paths;
    the worker's log keeps them whole."""
    return SERVER_PATH.sub(lambda match: match.group(0).rstrip("/").rsplit("/", 1)[-1], text)


# Error text from workers, as the API shows it.
ErrorText = Annotated[str, AfterValidator(without_server_paths)]


class OrmModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """A bounded slice of a list: every list endpoint says how many items it may return."""

    items: list[T]
    total: int
    offset: int
    limit: int


class ErrorBody(BaseModel):
    code: str
    message: str
    detail: object | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
