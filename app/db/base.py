"""Declarative base with a naming convention, so that Alembic migrations name constraints the same
way on SQLite (batch mode recreates tables and needs names) and PostgreSQL."""

from datetime import datetime, timezone

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The largest value of an Integer column, ids included: PostgreSQL's `integer` is 32-bit (SQLite's
# is 64-bit). A query comparing such a column with a larger number fails in the database, so ids and
# steps from users are bounded by it, and lookups treat a larger id as a row that does not exist.
MAX_INTEGER = 2**31 - 1
# The largest value of a BigInteger column (tokens seen).
MAX_BIG_INTEGER = 2**63 - 1


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """Naive UTC: SQLite has no time zones, so every timestamp is stored as naive UTC everywhere."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
