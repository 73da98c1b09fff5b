"""Schema migrations from code (the CLI, `serve` with auto_migrate, the tests): thin wrappers over
Alembic with a configuration built here, so they work from any working directory and never read
alembic.ini (whose logging setup is for the `alembic` console script only).

Upgrading is idempotent and safe to run from several processes at once (migrations/env.py
serializes them), so every service may call `upgrade(url)` when it starts.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from app.core.paths import migrations_dir
from app.db.engine import make_engine

MIGRATIONS_DIR = migrations_dir()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # An attribute rather than the `sqlalchemy.url` option: options go through ConfigParser
    # interpolation, which would choke on the `%` of a URL-escaped password.
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The revision the database is at; None for a database that was never migrated."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
