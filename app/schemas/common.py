from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.db.base import MAX_INTEGER

T = TypeVar("T")

# An id in a request body: a number beyond any id is a 422, not a database error.
RowId = Annotated[int, Field(ge=1, le=MAX_INTEGER)]

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
