"""A scratch PostgreSQL database for one benchmark: created fresh on the server, dropped afterwards."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db.engine import make_engine


@contextmanager
def scratch_postgres(server_url: str, prefix: str) -> Iterator[str]:
    """The URL of a new, empty database `<prefix>_<random>` on the server; dropped (FORCE) on exit."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    # CREATE/DROP DATABASE cannot run inside a transaction.
    admin = make_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.engine.dispose()
