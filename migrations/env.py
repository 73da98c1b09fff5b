"""Alembic environment: migrate the database that app.db.migrate (or `alembic` on the command line)
points at, through the application's own engine so that its SQLite pragmas apply.

The URL comes from `config.attributes["url"]` (set by app.db.migrate.alembic_config), else the
`sqlalchemy.url` main option, else the application's Settings: nothing here names a database.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, event, text

import app.models  # noqa: F401  (registers every table on Base.metadata, for autogenerate)
from app.core.config import Settings
from app.db.base import Base
from app.db.engine import SQLITE_IMMEDIATE, is_sqlite, make_engine

CONFIGURE_OPTIONS = {
    "target_metadata": Base.metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds the table (copy, drop, rename).
    "render_as_batch": True,
    # Our SQLite engine issues BEGIN itself (app.db.engine), so DDL there is transactional too:
    # one transaction per upgrade, and a failed migration leaves the schema untouched.
    "transactional_ddl": True,
}
# Any fixed 64-bit number, the same in every process: PostgreSQL advisory locks are keyed by
# integers. Holding it for the whole migration makes concurrent upgrades (an API and workers
# starting together against one database) run one after the other instead of racing to create
# the same tables; the second one then finds the schema at head and does nothing.
PG_MIGRATION_LOCK_KEY = 0x0F0CA15C0DE

config = context.config
# Only the `alembic` console script has an ini file; the application configures its own logging
# and must not have its loggers disabled by fileConfig when it migrates at start-up.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    return config.attributes.get("url") or config.get_main_option("sqlalchemy.url") or Settings().db_url


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL for a DBA instead of running it."""
    context.configure(url=database_url(), literal_binds=True, **CONFIGURE_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = database_url()
    engine = make_engine(url)
    if is_sqlite(url):
        event.listen(engine, "connect", _sqlite_foreign_keys_off)
    try:
        # On SQLite, BEGIN IMMEDIATE takes the write lock before alembic reads the current
        # revision, which serializes concurrent upgrades as the advisory lock does on PostgreSQL.
        with engine.connect().execution_options(**{SQLITE_IMMEDIATE: True}) as connection:
            context.configure(connection=connection, **CONFIGURE_OPTIONS)
            with context.begin_transaction():
                _lock_out_other_migrations(connection)
                context.run_migrations()
    finally:
        engine.dispose()


def _sqlite_foreign_keys_off(dbapi_connection, _record) -> None:
    # Runs after make_engine's own connect hook turned enforcement on. Batch mode drops and
    # renames tables; with enforcement on, dropping a referenced table would cascade-delete or
    # refuse. The pragma is ignored inside a transaction, hence at connect time.
    dbapi_connection.execute("PRAGMA foreign_keys=OFF")


def _lock_out_other_migrations(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Transaction-scoped: released by the commit (or rollback) that ends the migration.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
