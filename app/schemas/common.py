from __future__ import annotations

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
