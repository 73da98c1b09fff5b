"""Readiness: may this process take traffic? Its database answers and its schema is at the
migrations' head (a replica started before `focalscope db upgrade` ran is not ready)."""

from __future__ import annotations

from functools import cache

from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.db import migrate
from app.services.errors import Unavailable


# The migrations' head cannot change while the process runs; reading it parses every revision file.
head_revision = cache(migrate.head_revision)


def check_ready(*, session: Session) -> dict:
    """{"database", "revision"} when ready; raises Unavailable saying what is missing otherwise."""
    head = head_revision()
    try:
        connection = session.connection()
        revision = MigrationContext.configure(connection).get_current_revision()
        database = connection.dialect.name
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise Unavailable(f"the database is unreachable: {reason}", detail={"head": head}) from None
    if revision != head:
        state = f"at revision {revision}" if revision else "not migrated"
        raise Unavailable(f"the database schema is {state}; head is {head}: run `focalscope db upgrade`",
                          detail={"database": database, "revision": revision, "head": head})
    return {"database": database, "revision": revision}
