"""SQLite's one writer at a time, as focalscope's processes meet it: a transaction that reads and then
writes while another process commits in between. A plain (deferred) transaction cannot wait for the
lock then — SQLite fails it at once with "database is locked", whatever the busy timeout — so such
transactions (the API's writes, the CLI's, a worker's) take the lock before reading (app.db.engine's
`writing` and `writing_session`); the other writer waits for it instead."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.db.engine import make_engine, make_sessionmaker, writing_session


@pytest.fixture
def sessions(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE counter (n INTEGER)"))
        connection.execute(text("INSERT INTO counter VALUES (0)"))
    yield make_sessionmaker(engine)
    engine.dispose()


def add_one(sessions) -> None:
    with sessions() as session:
        session.execute(text("UPDATE counter SET n = n + 1"))
        session.commit()


def test_a_deferred_transaction_that_read_fails_when_another_writer_committed(sessions):
    with sessions() as session:
        session.execute(text("SELECT n FROM counter")).scalar()
        add_one(sessions)  # another connection commits after our read
        with pytest.raises(OperationalError, match="database is locked"):
            session.execute(text("UPDATE counter SET n = n + 10"))


def test_a_writing_session_makes_the_other_writer_wait(sessions):
    with writing_session(sessions) as session:
        read = session.execute(text("SELECT n FROM counter")).scalar()
        other = threading.Thread(target=add_one, args=(sessions,))
        other.start()  # blocks on the lock we hold (busy timeout 30 s) until we commit
        other.join(timeout=0.5)
        assert other.is_alive()
        session.execute(text("UPDATE counter SET n = :n"), {"n": read + 10})
        session.commit()
    other.join(timeout=30)
    assert not other.is_alive()
    with sessions() as session:
        assert session.execute(text("SELECT n FROM counter")).scalar() == 11  # both writes, in turn


def test_a_writing_session_takes_the_lock_at_its_first_statement(sessions):
    """Work done in the block before the first statement (a URL checkpoint's download) holds no lock."""
    with writing_session(sessions) as session:
        add_one(sessions)  # another writer, not made to wait: nothing was executed yet
        session.execute(text("UPDATE counter SET n = n + 10"))
        session.commit()
    with sessions() as session:
        assert session.execute(text("SELECT n FROM counter")).scalar() == 11
