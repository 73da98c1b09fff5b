"""Domain errors. The HTTP layer maps each to a status code and a JSON error body; the CLI prints
the message and exits non-zero. Messages are written for the user who caused them."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.orm import Session

from app.db.base import MAX_INTEGER

Row = TypeVar("Row")


class DomainError(Exception):
    status_code = 400
    code = "bad_request"
    headers: dict[str, str] | None = None

    def __init__(self, message: str, *, detail: object | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class InvalidInput(DomainError):
    status_code = 422
    code = "invalid_input"


class TooLarge(DomainError):
    status_code = 413
    code = "too_large"


class Unauthorized(DomainError):
    """No valid credentials: the client should send (another) token."""

    status_code = 401
    code = "unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class InsufficientStorage(DomainError):
    """The server could not write what it was sent (its disk is full): a retry later may work."""

    status_code = 507
    code = "insufficient_storage"


def get_or_404(model: type[Row], row_id: int, *, session: Session, thing: str) -> Row:
    """The `model` row with this id, or NotFound "<thing> <id> not found" (a 404 in the API, an error
    message in the CLI). Ids beyond what the database can hold are rows that do not exist."""
    row = session.get(model, row_id) if 1 <= row_id <= MAX_INTEGER else None
    if row is None:
        raise NotFound(f"{thing} {row_id} not found")
    return row


class Unavailable(DomainError):
    """The service cannot answer now (its database is away or not migrated); a retry later may work."""

    status_code = 503
    code = "unavailable"
