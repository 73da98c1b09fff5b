"""Alembic migrations (migrations/, app.db.migrate) on SQLite and PostgreSQL: upgrading an empty
database gives exactly the schema of app.models, downgrading removes it, and upgrading is
idempotent, also when several processes start at once."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
from datetime import datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
import pytest
from sqlalchemy import JSON, column, insert, inspect, select, table, text

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
    assert [(r.revision, r.down_revision) for r in revisions] == [
        ("0005", "0004"), ("0004", "0003"), ("0003", "0002"), ("0002", "0001"), ("0001", None)]
    assert head_revision() == "0005"


# Rows as they were before 0003, with plain table stand-ins (the models describe the schema at head).
NOW = datetime(2026, 1, 1)
CORPORA = table("corpora", column("id"), column("name"), column("description"), column("n_documents"),
                column("n_chars"), column("created_at"))
EXPERIMENTS = table("experiments", column("id"), column("name"), column("train_corpus_id"), column("config", JSON),
                    column("created_at"))
JOBS = table("jobs", column("id"), column("kind"), column("status"), column("priority"), column("payload", JSON),
             column("attempts"), column("max_attempts"), column("progress_done"), column("progress_total"),
             column("tokens_done"), column("detail", JSON), column("created_at"))
SERIES = table("model_series", column("id"), column("name"), column("description"), column("experiment_id"),
               column("meta", JSON), column("created_at"))
SETTINGS = {"preset": "tiny", "steps": 20}


def _seed_links_in_json(connection) -> None:
    connection.execute(insert(CORPORA), [dict(id=1, name="c", description="", n_documents=0, n_chars=0, created_at=NOW)])
    connection.execute(insert(EXPERIMENTS), [dict(id=1, name="e", train_corpus_id=1, created_at=NOW, config={
        **SETTINGS, "losses": ["ce", "focal:2"], "series": ["e-ce", "e-focal-2"], "job_ids": [11, 12]})])
    connection.execute(insert(JOBS), [
        dict(id=i, kind="train", status="done", priority=0, payload={}, attempts=1, max_attempts=3, progress_done=20,
             progress_total=20, tokens_done=0, detail={}, created_at=NOW) for i in (11, 12, 13)])
    connection.execute(insert(SERIES), [
        dict(id=i, name=name, description="", experiment_id=experiment, meta=meta, created_at=NOW)
        for i, name, experiment, meta in (
            (1, "e-ce", 1, {"kind": "training", "job_id": 11}),
            (2, "e-focal-2", 1, {"kind": "training", "job_id": 12}),
            (3, "alone", None, {"kind": "training", "job_id": 13}),
            (4, "job-deleted", None, {"kind": "training", "job_id": 999}),
            (5, "registered", None, {}),
        )])


def _links(url: str, with_column: bool) -> tuple[list, dict]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            columns = [SERIES.c.id, SERIES.c.meta] + ([column("job_id")] if with_column else [])
            series = [tuple(row) for row in connection.execute(select(*columns).order_by(SERIES.c.id))]
            return series, connection.execute(select(EXPERIMENTS.c.config)).scalar_one()
    finally:
        engine.dispose()


def test_series_job_links_move_from_json_to_keys_and_back(db_url):
    upgrade(db_url, "0002")
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            _seed_links_in_json(connection)
    finally:
        engine.dispose()

    upgrade(db_url, "0003")
    series, config = _links(db_url, with_column=True)
    assert series == [(1, {"kind": "training"}, 11), (2, {"kind": "training"}, 12), (3, {"kind": "training"}, 13),
                      (4, {"kind": "training"}, None), (5, {}, None)]
    assert config == {**SETTINGS, "losses": ["ce", "focal:2"]}

    downgrade(db_url, "0002")
    series, config = _links(db_url, with_column=False)
    assert series == [(1, {"kind": "training", "job_id": 11}), (2, {"kind": "training", "job_id": 12}),
                      (3, {"kind": "training", "job_id": 13}), (4, {"kind": "training"}), (5, {})]
    assert config == {**SETTINGS, "losses": ["ce", "focal:2"], "series": ["e-ce", "e-focal-2"], "job_ids": [11, 12]}
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            assert "job_id" not in {c["name"] for c in inspect(connection).get_columns("model_series")}
    finally:
        engine.dispose()


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
