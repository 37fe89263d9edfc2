"""Engines and sessions. Nothing connects at import time: callers pass a URL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

from db import storable

# How to lock a row of a table other rows reference (jobs, runs, items): Postgres'
# FOR NO KEY UPDATE. A plain FOR UPDATE also blocks the FOR KEY SHARE lock that
# every insert referencing the row takes for its foreign key, so a transaction
# holding the run row and waiting for the audit chain's advisory lock deadlocks
# with the one holding that lock and inserting an audit event for the run
# (measured by the bookkeeping bench: 46 retries in 200 items with 2 workers).
# Sieve never changes a key, so the weaker lock is enough. SQLite ignores both.
NO_KEY_UPDATE = {"key_share": True}


def make_engine(url: str, **engine_options: Any) -> Engine:
    """An engine for ``url`` with settings that suit Sieve's access pattern.

    SQLite gets WAL (a reader never blocks the writer), foreign keys on, a
    busy timeout and transactions that take the write lock when they begin;
    Postgres gets pre-ping so a worker survives a database restart.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **engine_options)
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin)
        return engine
    if "poolclass" not in engine_options:
        engine_options = {"pool_size": 5, "max_overflow": 5, **engine_options}
    return create_engine(url, pool_pre_ping=True, **engine_options)


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own implicit BEGIN is off: _begin_immediate issues it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# The execution option :func:`transaction` sets: its SQLite transaction takes the write lock.
WRITE_LOCK_OPTION = "sieve_write_lock"


def _begin(connection: Any) -> None:
    """Start an SQLite transaction; a unit of work (:func:`transaction`) holding the write lock.

    A deferred transaction that reads (an item's row, the audit chain's head)
    and then writes fails with "database is locked" at once, without waiting,
    when another connection wrote in between; lanes (several items at once in
    one ``sieve run``) do exactly that. Taking the lock at BEGIN makes writers
    queue for it instead, within the busy timeout. Read-only sessions begin
    deferred, so a reader (``sieve results | less``) never holds writers back.
    """
    immediate = connection.get_execution_options().get(WRITE_LOCK_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit and store only storable text."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    event.listen(factory, "before_flush", _clean_rows_before_flush)
    return factory


def _clean_rows_before_flush(session: Session, _context: Any, _instances: Any) -> None:
    """Replace what PostgreSQL refuses (NUL, lone surrogates) in every row about to be written.

    One bad character in one file's metadata must fail neither that item nor,
    by looping on a rejected write, the worker (see :mod:`db.storable`).
    """
    for row in (*session.new, *session.dirty):
        state = inspect(row)
        for attribute in state.mapper.column_attrs:
            value = state.dict.get(attribute.key)
            if isinstance(value, (str, dict, list)):
                cleaned, replaced = storable.clean(value)
                if replaced:
                    setattr(row, attribute.key, cleaned)


@contextlib.contextmanager
def transaction(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with session_factory() as session, session.begin():
        session.connection(execution_options={WRITE_LOCK_OPTION: True})
        yield session
