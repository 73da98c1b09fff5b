"""Engines and sessions. Built from a URL on request; no module-level engine.

SQLite is the embedded default (one API process plus a worker or two on one machine); PostgreSQL is
the production database (many workers on many hosts).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

# WAL lets the API read while a worker writes results.
SQLITE_JOURNAL_MODE = "WAL"
# Writers (workers committing shards, the API enqueuing runs) wait for each other instead of
# failing at once with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 30_000
# NORMAL is durable across application crashes in WAL mode; only a power cut may lose the last
# commits, which the queue then redoes (their leases expire).
SQLITE_SYNCHRONOUS = "NORMAL"
# Execution option that makes a transaction start with BEGIN IMMEDIATE (take the write lock up
# front). The queue's claim uses it so that two claimers never both read the same queued shard.
SQLITE_IMMEDIATE = "sqlite_begin_immediate"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        _configure_sqlite(engine)
        return engine
    if make_url(url).get_backend_name() == "postgresql" and make_url(url).drivername == "postgresql":
        # A bare postgresql:// URL would pick psycopg2, which we do not install.
        url = make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, echo=echo, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Take transaction control away from the sqlite3 module (it would BEGIN lazily and
        # silently COMMIT before DDL) so that SQLAlchemy's begin below is the only one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _ensure_journal_mode(cursor)
        cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        immediate = connection.get_execution_options().get(SQLITE_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _ensure_journal_mode(cursor) -> None:
    """Switch the file to WAL once (the mode is stored in the file). Switching needs a moment of
    exclusive access and SQLite does not wait for it (busy_timeout does not apply), so a process
    starting while others write retries here instead of failing with "database is locked"."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
        if mode.lower() == SQLITE_JOURNAL_MODE.lower() or mode.lower() == "memory":
            return
        try:
            cursor.execute(f"PRAGMA journal_mode={SQLITE_JOURNAL_MODE}")
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def writing(engine: Engine) -> Engine:
    """The engine for a transaction that will write: on SQLite it begins with BEGIN IMMEDIATE. A
    deferred transaction that reads first and then writes cannot wait for the lock: when another
    writer committed meanwhile, SQLite fails it at once with "database is locked" (busy_timeout does
    not apply), so API writes take the lock up front and wait for it instead. PostgreSQL ignores it."""
    return engine.execution_options(**{SQLITE_IMMEDIATE: True})


def writing_session(sessions: sessionmaker[Session]) -> Session:
    """A session of `sessions` for a transaction that reads before it writes (on SQLite it begins with
    BEGIN IMMEDIATE: see `writing`). Such a transaction holds the lock from its first write to its
    commit in any case; this only moves the start to before its reads."""
    return sessions(bind=writing(sessions.kw["bind"]))


def ping(session: Session) -> str:
    """One round trip to the database (it raises if the database is down); returns its dialect name."""
    session.execute(text("SELECT 1"))
    return session.get_bind().dialect.name
