"""The errors of a database that is away or cannot be written, and their short message.

The API answers them with 503 (app/api/errors.py); a worker waits and tries again (workers/outage.py).
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# Connection refused or dropped, a server shutting down, SQLite's "database or disk is full" or
# "database is locked" past its busy timeout.
DATABASE_ERRORS = (OperationalError, InterfaceError)


def database_message(exc: BaseException) -> str:
    """The driver's own first line ("connection refused", "database or disk is full") without
    SQLAlchemy's SQL text and parameters, which can run to megabytes of token arrays."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        text = str(exc.orig).strip()
        return text.splitlines()[0] if text else type(exc.orig).__name__
    return str(exc)
