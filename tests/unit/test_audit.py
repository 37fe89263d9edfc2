"""The audit trail is append-only and hash-chained per job (SQLite here; Postgres in integration).

Every database here is built by the real migrations. Tampering goes around the
append-only triggers the way an operator with full rights could (dropping them
on SQLite, ``DISABLE TRIGGER USER`` on Postgres) and must then be caught by
:func:`db.audit.verify_chain`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, exc, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from db import audit, migrate
from db.base import UtcDateTime
from db.models import AuditEvent, Job
from db.session import make_engine, make_session_factory, transaction


@dataclasses.dataclass
class AuditDatabase:
    """A migrated database, its sessions, and a way around its triggers."""

    dialect: str
    engine: Engine
    sessions: sessionmaker[Session]

    def tamper(self, statement: str, **params: Any) -> None:
        """Run ``statement`` with the append-only triggers out of the way."""
        with self.engine.begin() as connection:
            if self.dialect == "sqlite":
                connection.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
                connection.execute(text("DROP TRIGGER IF EXISTS audit_events_no_delete"))
                connection.execute(text(statement), params)
            else:
                connection.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
                connection.execute(text(statement), params)
                connection.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))


def migrated_database(url: str, dialect: str) -> Iterator[AuditDatabase]:
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        yield AuditDatabase(dialect, engine, make_session_factory(engine))
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[AuditDatabase]:
    yield from migrated_database(sqlite_url, "sqlite")


@pytest.fixture
def audit_db(sqlite_db: AuditDatabase) -> AuditDatabase:
    """The database the dialect-independent tests run on; the integration layer
    runs the same tests on PostgreSQL (tests/integration/test_audit_postgres.py)."""
    return sqlite_db


def create_job(db: AuditDatabase) -> int:
    with transaction(db.sessions) as session:
        job = Job(
            name="audit test", submitted_by="tester", submitted_host="host", input_roots=["/in"]
        )
        session.add(job)
        session.flush()
        return job.id


def append_numbered_events(db: AuditDatabase, job_id: int, count: int) -> list[AuditEvent]:
    with transaction(db.sessions) as session:
        return audit.append_events(
            session,
            [
                audit.EventDraft(
                    action="item.state",
                    actor=f"worker-{number}",
                    job_id=job_id,
                    details={"number": number, "state": "done", "note": "é ✓"},
                )
                for number in range(1, count + 1)
            ],
        )


def verify(db: AuditDatabase, job_id: int) -> audit.ChainBreak | None:
    with db.sessions() as session:
        return audit.verify_chain(session, audit.chain_name(job_id))


def stored_events(db: AuditDatabase, job_id: int) -> list[AuditEvent]:
    with db.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.job_id == job_id).order_by(AuditEvent.seq)
            )
        )


# --- building the chain -----------------------------------------------------


def test_appended_events_number_from_one_and_link_to_the_previous_hash(
    audit_db: AuditDatabase,
) -> None:
    job_id = create_job(audit_db)

    append_numbered_events(audit_db, job_id, 4)

    events = stored_events(audit_db, job_id)
    assert [event.seq for event in events] == [1, 2, 3, 4]
    assert {event.chain for event in events} == {f"job:{job_id}"}
    assert events[0].prev_hash == audit.GENESIS_HASH == "0" * 64
    for previous, event in itertools.pairwise(events):
        assert event.prev_hash == previous.event_hash
    assert len({event.event_hash for event in events}) == 4


def test_an_intact_chain_verifies(audit_db: AuditDatabase) -> None:
    job_id = create_job(audit_db)
    append_numbered_events(audit_db, job_id, 5)

    assert verify(audit_db, job_id) is None


def test_each_job_has_its_own_chain(audit_db: AuditDatabase) -> None:
    first_job, second_job = create_job(audit_db), create_job(audit_db)

    append_numbered_events(audit_db, first_job, 3)
    append_numbered_events(audit_db, second_job, 2)

    assert [event.seq for event in stored_events(audit_db, first_job)] == [1, 2, 3]
    assert [event.seq for event in stored_events(audit_db, second_job)] == [1, 2]
    assert stored_events(audit_db, second_job)[0].prev_hash == audit.GENESIS_HASH
    with audit_db.sessions() as session:
        assert {f"job:{first_job}", f"job:{second_job}"} <= set(audit.chains(session))
        assert audit.event_count(session, f"job:{first_job}") == 3
        assert audit.event_count(session, f"job:{second_job}") == 2
    assert verify(audit_db, first_job) is None
    assert verify(audit_db, second_job) is None


def test_one_append_call_can_extend_several_chains_in_order(audit_db: AuditDatabase) -> None:
    first_job, second_job = create_job(audit_db), create_job(audit_db)

    with transaction(audit_db.sessions) as session:
        audit.append_events(
            session,
            [
                audit.EventDraft(action="a", actor="me", job_id=first_job),
                audit.EventDraft(action="b", actor="me", job_id=second_job),
                audit.EventDraft(action="c", actor="me", job_id=first_job),
            ],
        )

    assert [(e.seq, e.action) for e in stored_events(audit_db, first_job)] == [(1, "a"), (2, "c")]
    assert [(e.seq, e.action) for e in stored_events(audit_db, second_job)] == [(1, "b")]
    assert verify(audit_db, first_job) is None
    assert verify(audit_db, second_job) is None


def test_events_appended_in_separate_transactions_extend_the_same_chain(
    audit_db: AuditDatabase,
) -> None:
    job_id = create_job(audit_db)

    for _ in range(3):
        append_numbered_events(audit_db, job_id, 2)

    events = stored_events(audit_db, job_id)
    assert [event.seq for event in events] == [1, 2, 3, 4, 5, 6]
    assert verify(audit_db, job_id) is None


def test_events_of_a_rolled_back_transaction_leave_no_trace(audit_db: AuditDatabase) -> None:
    job_id = create_job(audit_db)
    append_numbered_events(audit_db, job_id, 1)

    with pytest.raises(RuntimeError, match="the change failed"):
        with transaction(audit_db.sessions) as session:
            audit.append_event(session, audit.EventDraft(action="lost", actor="me", job_id=job_id))
            raise RuntimeError("the change failed")
    append_numbered_events(audit_db, job_id, 1)

    events = stored_events(audit_db, job_id)
    assert [event.seq for event in events] == [1, 2]
    assert "lost" not in {event.action for event in events}
    assert verify(audit_db, job_id) is None


def test_events_without_a_job_go_to_the_global_chain(sqlite_db: AuditDatabase) -> None:
    with transaction(sqlite_db.sessions) as session:
        audit.append_event(session, audit.EventDraft(action="db.upgrade", actor="admin"))
        audit.append_event(session, audit.EventDraft(action="db.backup", actor="admin"))

    with sqlite_db.sessions() as session:
        assert audit.chains(session) == ["global"]
        assert audit.event_count(session, "global") == 2
        assert audit.verify_chain(session, "global") is None


def test_a_chain_cannot_fork_two_events_with_the_same_seq(audit_db: AuditDatabase) -> None:
    job_id = create_job(audit_db)
    (first,) = append_numbered_events(audit_db, job_id, 1)
    fields = {
        column: getattr(first, column)
        for column in (
            "chain",
            "seq",
            "occurred_at",
            "actor",
            "action",
            "job_id",
            "run_id",
            "item_id",
            "item_sha256",
            "details",
            "prev_hash",
        )
    }
    fields["actor"] = "a second writer"
    forged = AuditEvent(**fields, event_hash=audit.compute_event_hash(**fields))

    with pytest.raises(exc.IntegrityError), transaction(audit_db.sessions) as session:
        session.add(forged)

    assert [event.actor for event in stored_events(audit_db, job_id)] == [first.actor]


# --- the append-only triggers ----------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'someone else' WHERE job_id = :job_id",
        "DELETE FROM audit_events WHERE job_id = :job_id",
    ],
    ids=["update", "delete"],
)
def test_the_database_rejects_updating_or_deleting_audit_events(
    audit_db: AuditDatabase, statement: str
) -> None:
    job_id = create_job(audit_db)
    append_numbered_events(audit_db, job_id, 2)
    before = [(e.seq, e.actor, e.event_hash) for e in stored_events(audit_db, job_id)]

    with pytest.raises(exc.DBAPIError, match="append-only"):
        with audit_db.engine.begin() as connection:
            connection.execute(text(statement), {"job_id": job_id})

    assert [(e.seq, e.actor, e.event_hash) for e in stored_events(audit_db, job_id)] == before


def test_changing_an_event_through_the_orm_is_rejected(audit_db: AuditDatabase) -> None:
    job_id = create_job(audit_db)
    append_numbered_events(audit_db, job_id, 1)

    with pytest.raises(exc.DBAPIError, match="append-only"):
        with transaction(audit_db.sessions) as session:
            event = session.scalars(select(AuditEvent).where(AuditEvent.job_id == job_id)).one()
            event.details = {"rewritten": True}

    assert verify(audit_db, job_id) is None


# --- tampering is caught by the hash chain ----------------------------------


TAMPERED_DETAILS = '{"number": 2, "state": "failed", "note": "é ✓"}'


@pytest.mark.parametrize(
    ("column", "sqlite_value", "postgres_value"),
    [
        ("details", TAMPERED_DETAILS, TAMPERED_DETAILS),
        ("actor", "an impostor", "an impostor"),
        ("action", "result.stored", "result.stored"),
        ("occurred_at", "2020-01-01 00:00:00.000000", "2020-01-01 00:00:00+00"),
    ],
    ids=["details", "actor", "action", "occurred_at"],
)
def test_an_edited_event_is_named_by_verification(
    audit_db: AuditDatabase, column: str, sqlite_value: str, postgres_value: str
) -> None:
    job_id = create_job(audit_db)
    append_numbered_events(audit_db, job_id, 4)
    target = stored_events(audit_db, job_id)[1]
    value = sqlite_value if audit_db.dialect == "sqlite" else postgres_value
    placeholder = ":value"
    if audit_db.dialect == "postgresql" and column == "details":
        placeholder = "CAST(:value AS jsonb)"

    audit_db.tamper(
        f"UPDATE audit_events SET {column} = {placeholder} WHERE id = :id",
        value=value,
        id=target.id,
    )

    assert verify(audit_db, job_id) == audit.ChainBreak(
        f"job:{job_id}", 2, target.id, "content does not match its hash"
    )


def test_a_deleted_middle_event_is_reported_missing(audit_db: AuditDatabase) -> None:
    job_id = create_job(audit_db)
    append_numbered_events(audit_db, job_id, 4)
    events = stored_events(audit_db, job_id)

    audit_db.tamper("DELETE FROM audit_events WHERE id = :id", id=events[1].id)

    chain_break = verify(audit_db, job_id)
    assert chain_break is not None
    assert chain_break.seq == 2
    assert chain_break.event_id == events[2].id
    assert chain_break.reason == "event 2 is missing"


def test_a_rewired_previous_hash_is_reported_as_a_broken_link(audit_db: AuditDatabase) -> None:
    job_id = create_job(audit_db)
    append_numbered_events(audit_db, job_id, 4)
    events = stored_events(audit_db, job_id)

    audit_db.tamper(
        "UPDATE audit_events SET prev_hash = :hash WHERE id = :id",
        hash=events[0].event_hash,
        id=events[2].id,
    )

    assert verify(audit_db, job_id) == audit.ChainBreak(
        f"job:{job_id}", 3, events[2].id, "previous-hash link does not match"
    )


def test_rehashing_an_edited_event_breaks_the_link_of_the_next_one(audit_db: AuditDatabase) -> None:
    job_id = create_job(audit_db)
    append_numbered_events(audit_db, job_id, 3)
    events = stored_events(audit_db, job_id)
    edited = events[1]
    forged_hash = audit.compute_event_hash(
        chain=edited.chain,
        seq=edited.seq,
        occurred_at=edited.occurred_at,
        actor="an impostor",
        action=edited.action,
        job_id=edited.job_id,
        run_id=edited.run_id,
        item_id=edited.item_id,
        item_sha256=edited.item_sha256,
        details=edited.details,
        prev_hash=edited.prev_hash,
    )

    audit_db.tamper(
        "UPDATE audit_events SET actor = 'an impostor', event_hash = :hash WHERE id = :id",
        hash=forged_hash,
        id=edited.id,
    )

    assert verify(audit_db, job_id) == audit.ChainBreak(
        f"job:{job_id}", 3, events[2].id, "previous-hash link does not match"
    )


def test_tampering_with_one_chain_leaves_other_chains_verifiable(audit_db: AuditDatabase) -> None:
    tampered_job, other_job = create_job(audit_db), create_job(audit_db)
    append_numbered_events(audit_db, tampered_job, 2)
    append_numbered_events(audit_db, other_job, 2)

    audit_db.tamper(
        "UPDATE audit_events SET actor = 'x' WHERE job_id = :job_id AND seq = 1",
        job_id=tampered_job,
    )

    assert verify(audit_db, tampered_job) is not None
    assert verify(audit_db, other_job) is None


# --- the canonical hash ----------------------------------------------------

MOMENT = dt.datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=dt.UTC)


def hash_with(**overrides: Any) -> str:
    fields: dict[str, Any] = {
        "chain": "job:1",
        "seq": 1,
        "occurred_at": MOMENT,
        "actor": "alice",
        "action": "item.state",
        "job_id": 1,
        "run_id": 2,
        "item_id": 3,
        "item_sha256": "a" * 64,
        "details": {"state": "done", "pages": [1, 2], "meta": {"x": 1, "y": "z"}},
        "prev_hash": audit.GENESIS_HASH,
    }
    fields.update(overrides)
    return audit.compute_event_hash(**fields)


def test_the_same_fields_always_hash_the_same() -> None:
    assert hash_with() == hash_with()
    assert len(hash_with()) == 64
    assert int(hash_with(), 16) >= 0


def test_the_order_of_keys_in_details_does_not_change_the_hash() -> None:
    reordered = {"meta": {"y": "z", "x": 1}, "pages": [1, 2], "state": "done"}

    assert hash_with(details=reordered) == hash_with()


def test_the_same_instant_in_another_time_zone_hashes_the_same() -> None:
    in_kolkata = MOMENT.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30)))

    assert hash_with(occurred_at=in_kolkata) == hash_with()


@pytest.mark.parametrize(
    "override",
    [
        {"occurred_at": MOMENT + dt.timedelta(microseconds=1)},
        {"chain": "job:2"},
        {"seq": 2},
        {"actor": "bob"},
        {"action": "item.queued"},
        {"job_id": None},
        {"run_id": 20},
        {"item_id": None},
        {"item_sha256": "b" * 64},
        {"details": {"state": "done", "pages": [2, 1], "meta": {"x": 1, "y": "z"}}},
        {"prev_hash": "f" * 64},
    ],
    ids=lambda override: next(iter(override)),
)
def test_changing_any_field_changes_the_hash(override: dict[str, Any]) -> None:
    assert hash_with(**override) != hash_with()


def test_canonical_timestamps_are_utc_with_microseconds() -> None:
    assert audit.canonical_timestamp(MOMENT) == "2026-03-01T12:30:45.123456Z"
    assert audit.canonical_timestamp(MOMENT.replace(microsecond=0)) == "2026-03-01T12:30:45.000000Z"


def test_the_stored_hash_is_the_canonical_hash_of_the_stored_fields(
    audit_db: AuditDatabase,
) -> None:
    job_id = create_job(audit_db)
    append_numbered_events(audit_db, job_id, 1)
    (event,) = stored_events(audit_db, job_id)

    assert event.event_hash == audit.compute_event_hash(
        chain=event.chain,
        seq=event.seq,
        occurred_at=event.occurred_at,
        actor=event.actor,
        action=event.action,
        job_id=event.job_id,
        run_id=event.run_id,
        item_id=event.item_id,
        item_sha256=event.item_sha256,
        details=event.details,
        prev_hash=event.prev_hash,
    )


# --- timestamps --------------------------------------------------------------


def test_timestamps_read_back_from_sqlite_are_utc_aware(sqlite_db: AuditDatabase) -> None:
    job_id = create_job(sqlite_db)
    (appended,) = append_numbered_events(sqlite_db, job_id, 1)

    (event,) = stored_events(sqlite_db, job_id)

    assert event.occurred_at.tzinfo is not None
    assert event.occurred_at.utcoffset() == dt.timedelta(0)
    assert event.occurred_at == appended.occurred_at
    assert event.occurred_at.microsecond == appended.occurred_at.microsecond


def test_an_aware_timestamp_in_another_zone_is_stored_as_the_same_instant(
    sqlite_db: AuditDatabase,
) -> None:
    moment_in_new_york = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    with transaction(sqlite_db.sessions) as session:
        job = Job(
            name="tz",
            submitted_by="me",
            submitted_host="h",
            input_roots=[],
            created_at=moment_in_new_york,
        )
        session.add(job)
        session.flush()
        job_id = job.id

    with sqlite_db.sessions() as session:
        created_at = session.get_one(Job, job_id).created_at

    assert created_at == moment_in_new_york
    assert created_at.tzinfo == dt.UTC
    assert created_at.hour == 14


@pytest.mark.parametrize(
    "dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "postgresql"]
)
def test_utc_datetime_refuses_a_naive_datetime(dialect: Any) -> None:
    with pytest.raises(ValueError, match="naive"):
        UtcDateTime().process_bind_param(dt.datetime(2026, 1, 1, 12, 0), dialect)


def test_a_naive_datetime_is_not_stored(sqlite_db: AuditDatabase) -> None:
    with pytest.raises(exc.StatementError, match="naive"):
        with transaction(sqlite_db.sessions) as session:
            session.add(
                Job(
                    name="naive",
                    submitted_by="me",
                    submitted_host="h",
                    input_roots=[],
                    created_at=dt.datetime(2026, 1, 1, 12, 0),
                )
            )

    with sqlite_db.sessions() as session:
        assert session.scalars(select(Job)).all() == []
