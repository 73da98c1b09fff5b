"""Alembic migrations (migrations/, app.db.migrate) on SQLite and PostgreSQL: upgrading an empty
database gives exactly the schema of app.models, downgrading removes it, and upgrading is
idempotent, also when several processes start at once."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
import pytest
from sqlalchemy import inspect, text

import app.models  # noqa: F401  (registers every table on Base.metadata)
from app.db.base import Base
from app.db.engine import make_engine
from app.db.migrate import MIGRATIONS_DIR, current_revision, downgrade, head_revision, upgrade

# Two are enough to race (without the lock in env.py both create the tables and one fails).
CONCURRENT_UPGRADES = 2


def _schema_differences(url: str) -> list:
    """What autogenerate would put in a new revision: every difference between the database and
    the models (tables, columns, types, nullability, indexes, unique and foreign keys)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def _upgrade_together(url: str, start: multiprocessing.synchronize.Barrier) -> None:
    start.wait(timeout=60)
    upgrade(url)


def test_upgrade_gives_the_models_schema_and_downgrade_removes_it(db_url):
    assert current_revision(db_url) is None

    upgrade(db_url)
    assert current_revision(db_url) == head_revision()
    assert _tables(db_url) == set(Base.metadata.tables) | {"alembic_version"}
    # No benign differences to ignore: PackedArray compares as its LargeBinary impl, and JSON,
    # Float and DateTime reflect back as themselves on both dialects.
    assert _schema_differences(db_url) == []

    upgrade(db_url)  # already at head: nothing to do, nothing fails
    assert current_revision(db_url) == head_revision()

    downgrade(db_url)
    # Alembic keeps its own bookkeeping table, emptied.
    assert _tables(db_url) == {"alembic_version"}
    assert current_revision(db_url) is None

    upgrade(db_url)
    assert current_revision(db_url) == head_revision()
    assert _schema_differences(db_url) == []


def test_concurrent_upgrades_migrate_once(db_url):
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(CONCURRENT_UPGRADES)
    processes = [
        context.Process(target=_upgrade_together, args=(db_url, start)) for _ in range(CONCURRENT_UPGRADES)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        if process.is_alive():  # hung: fail below rather than leave it running
            process.kill()
            process.join()
    assert [process.exitcode for process in processes] == [0] * CONCURRENT_UPGRADES
    assert current_revision(db_url) == head_revision()
    assert _schema_differences(db_url) == []


def test_revisions_form_one_line():
    revisions = list(ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions())
    assert [(r.revision, r.down_revision) for r in revisions] == [("0002", "0001"), ("0001", None)]
    assert head_revision() == "0002"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_token_arrays_are_stored_uncompressed_on_postgresql(db_url):
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            storage = dict(connection.execute(text(
                "SELECT attname, attstorage FROM pg_attribute WHERE attrelid = 'token_scores'::regclass "
                "AND attname IN ('logprob', 'top_ids', 'n_tokens')"
            )).all())
    finally:
        engine.dispose()
    assert storage == {"logprob": "e", "top_ids": "e", "n_tokens": "p"}
    downgrade(db_url, "0001")
    assert current_revision(db_url) == "0001"
