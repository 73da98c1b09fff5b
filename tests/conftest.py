"""Shared fixtures: a fresh empty database per test on SQLite and PostgreSQL, engines, sessions and
settings built on it.

A test that takes `db_url` (or `engine`, `sessions`, `settings`) runs twice, ids `[sqlite]` and
`[postgresql]`; the PostgreSQL one is marked `postgres` (deselect with `-m "not postgres"`). It uses
the server at FOCALSCOPE_TEST_PG, and is skipped when that server is unreachable, except under
CI=true, where it fails instead so that a broken database service cannot pass as green.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

import app.models  # noqa: F401  (registers every table on Base.metadata)
from app.core.config import Settings
from app.db.base import Base
from app.db.engine import make_engine, make_sessionmaker
# Fixtures every test module may ask for (test modules import helpers from tests.support, never
# from each other).
from tests.support.api import api, client, model_root  # noqa: F401
from tests.support.browser import browser, page  # noqa: F401
from tests.support.cli import cli, cli_process  # noqa: F401
from tests.support.data import macbeth_corpora  # noqa: F401
from tests.support.models import tiny_gpt2_dir, tiny_llama_dir  # noqa: F401
from tests.support.private_postgres import private_postgres  # noqa: F401
from tests.support.small_disk import small_disk  # noqa: F401

DEFAULT_TEST_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# An unreachable host should cost seconds, not the OS's TCP timeout, before the tests skip.
PG_CONNECT_TIMEOUT_S = 5
# Long enough that a healthy lease never runs out on a loaded CI machine: 2 s (ten heartbeats) was
# not — a training job's heartbeat thread missed all ten while four test processes shared two cores,
# and the finished job was thrown away as lost. Tests that need a lease to have run out use a clock
# past it (tests/support/timing.py) or expire it in the database; none waits for one.
TEST_LEASE_SECONDS = 30.0
TEST_HEARTBEAT_SECONDS = 0.2


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """URL of the PostgreSQL server that hosts test databases; skipped (under CI=true: failed) if unreachable."""
    url = os.environ.get("FOCALSCOPE_TEST_PG", DEFAULT_TEST_PG)
    engine = make_engine(_with_connect_timeout(url))
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:  # refused, timed out, no such role or database
        reason = f"PostgreSQL at {make_url(url)!r} is unreachable: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    finally:
        engine.dispose()
    return url


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty database (no tables), once per dialect: SQLite and PostgreSQL."""
    if request.param == "sqlite":
        yield _sqlite_url(tmp_path)
    else:
        yield from _fresh_postgres_database(request.getfixturevalue("pg_admin_url"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a fresh, empty SQLite database file in tmp_path, for tests that need only one dialect."""
    return _sqlite_url(tmp_path)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """Engine on `db_url` with every table created by create_all (test_migrations proves migrations agree)."""
    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """The application's session factory on `engine`."""
    return make_sessionmaker(engine)


@pytest.fixture
def settings(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings on `db_url`, data dir in tmp_path, short lease; blind to the developer's env vars and .env."""
    names = {f"FOCALSCOPE_{name}".upper() for name in Settings.model_fields} | {"DATABASE_URL"}
    for variable in list(os.environ):
        if variable.upper() in names:  # pydantic-settings matches names case-insensitively
            monkeypatch.delenv(variable)
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        database_url=db_url,
        lease_seconds=TEST_LEASE_SECONDS,
        heartbeat_seconds=TEST_HEARTBEAT_SECONDS,
        # Starlette's TestClient sends this Host header.
        allowed_hosts=["testserver"],
    )


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'focalscope.db'}"


def _fresh_postgres_database(admin_url: str) -> Iterator[str]:
    name = f"fs_{secrets.token_hex(6)}"
    engine = make_engine(_with_connect_timeout(admin_url))
    # CREATE/DROP DATABASE cannot run inside a transaction.
    admin = engine.execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            # FORCE: a test that leaked a connection (or failed holding one) must not leak the database.
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def _with_connect_timeout(url: str) -> str:
    parsed = make_url(url)
    if "connect_timeout" in parsed.query:
        return url
    parsed = parsed.update_query_dict({"connect_timeout": str(PG_CONNECT_TIMEOUT_S)})
    return parsed.render_as_string(hide_password=False)
