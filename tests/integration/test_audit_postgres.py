"""The audit trail's tests on PostgreSQL: the unit layer's own tests, plus what only Postgres has.

Every dialect-independent test of ``tests/unit/test_audit.py`` (those taking
the ``audit_db`` fixture) runs here again against a real, migrated Postgres,
and so do the tests of Postgres's advisory lock and TRUNCATE trigger.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, exc, text

from db import audit
from db.session import transaction
from tests import services
from tests.unit import test_audit as dialect_independent
from tests.unit.test_audit import (
    AuditDatabase,
    append_numbered_events,
    create_job,
    migrated_database,
    stored_events,
    verify,
)

# The same test functions, collected again in this module, where audit_db is Postgres.
globals().update(
    {
        name: function
        for name, function in vars(dialect_independent).items()
        if name.startswith("test_") and "audit_db" in inspect.signature(function).parameters
    }
)


@pytest.fixture(scope="module")
def postgres_db() -> Iterator[AuditDatabase]:
    """One migrated Postgres database for the module; each test uses its own jobs."""
    with services.throwaway_postgres_database() as url:
        yield from migrated_database(url, "postgresql")


@pytest.fixture
def audit_db(postgres_db: AuditDatabase) -> AuditDatabase:
    return postgres_db


def test_concurrent_appends_to_one_postgres_chain_wait_for_each_other(
    postgres_db: AuditDatabase,
) -> None:
    job_id = create_job(postgres_db)
    second_writer_outcome: list[object] = []

    def second_writer() -> None:
        try:
            with transaction(postgres_db.sessions) as session:
                event = audit.append_event(
                    session, audit.EventDraft(action="second", actor="writer-2", job_id=job_id)
                )
                second_writer_outcome.append(event.seq)
        except Exception as error:  # reported by the assertion below
            second_writer_outcome.append(error)

    with transaction(postgres_db.sessions) as first_session:
        audit.append_event(
            first_session, audit.EventDraft(action="first", actor="writer-1", job_id=job_id)
        )
        thread = threading.Thread(target=second_writer)
        thread.start()
        # Commit only once the second writer is waiting on the chain's lock, so
        # the test always exercises the lock rather than two sequential appends.
        wait_until_an_advisory_lock_is_awaited(postgres_db.engine)
    thread.join(timeout=30)

    assert second_writer_outcome == [2]
    assert [(e.seq, e.action) for e in stored_events(postgres_db, job_id)] == [
        (1, "first"),
        (2, "second"),
    ]
    assert verify(postgres_db, job_id) is None


def wait_until_an_advisory_lock_is_awaited(engine: Engine, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            ).scalar_one()
            connection.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the second writer never waited for the chain's advisory lock")


def test_postgres_rejects_truncating_audit_events(postgres_db: AuditDatabase) -> None:
    job_id = create_job(postgres_db)
    append_numbered_events(postgres_db, job_id, 1)

    with pytest.raises(exc.DBAPIError, match="append-only: TRUNCATE"):
        with postgres_db.engine.begin() as connection:
            connection.execute(text("TRUNCATE audit_events"))

    assert len(stored_events(postgres_db, job_id)) == 1
