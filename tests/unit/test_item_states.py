"""The item-run state machine: every (from, to) pair, what each move sets, and its event."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import audit, migrate
from db.models import AuditEvent, Item, ItemRun, ItemState, Job, Run
from db.session import make_engine, make_session_factory
from worker import errors, item_states

S = ItemState
EXPECTED_MOVES = {
    (S.pending, S.queued),
    (S.pending, S.running),
    (S.pending, S.failed),
    (S.pending, S.cancelled),
    (S.queued, S.running),
    (S.queued, S.pending),
    (S.queued, S.failed),
    (S.queued, S.cancelled),
    (S.running, S.running),
    (S.running, S.queued),
    (S.running, S.pending),
    (S.running, S.done),
    (S.running, S.failed),
    (S.running, S.unsupported),
    (S.running, S.cancelled),
}


@pytest.fixture
def session(sqlite_url: str) -> Iterator[Session]:
    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    with make_session_factory(engine)() as session:
        yield session
    engine.dispose()


def _item_run_in(session: Session, state: ItemState) -> ItemRun:
    job = Job(name="j", submitted_by="me", submitted_host="h", input_roots=[])
    session.add(job)
    session.flush()
    run = Run(
        job_id=job.id,
        number=1,
        executor="in_process",
        task_name="summarize",
        task_version="1",
        task_options={},
        prompt_hash="p" * 64,
        model_name="m",
        model_path="/m",
        model_settings={},
        created_by="me",
    )
    item = Item(
        job_id=job.id,
        path="/in/a.pdf",
        size_bytes=1,
        sha256=f"{job.id:064d}",
        md5="0" * 32,
        media_type="application/pdf",
        stored_path="ab/cd",
    )
    session.add_all([run, item])
    session.flush()
    item_run = ItemRun(run_id=run.id, item_id=item.id, state=state, attempts=1)
    session.add(item_run)
    session.flush()
    return item_run


def test_the_table_is_exactly_the_documented_moves() -> None:
    allowed = {(a, b) for a, b in itertools.product(S, S) if item_states.is_allowed(a, b)}
    assert allowed == EXPECTED_MOVES


@pytest.mark.parametrize(
    ("from_state", "to_state"), list(itertools.product(S, S)), ids=lambda state: state.value
)
def test_every_pair_is_applied_or_refused(
    session: Session, from_state: ItemState, to_state: ItemState
) -> None:
    item_run = _item_run_in(session, from_state)
    failure = (
        errors.CorruptFileError("bad") if to_state in (S.failed, S.unsupported, S.queued) else None
    )
    if (from_state, to_state) not in EXPECTED_MOVES:
        with pytest.raises(item_states.InvalidTransitionError, match="no transition"):
            item_states.transition(session, item_run, to_state, "tester", lease_s=60, error=failure)
        assert item_run.state == from_state
        assert session.scalars(select(AuditEvent)).all() == []
        return
    item_states.transition(
        session, item_run, to_state, "worker@h:1", "because", lease_s=60, error=failure
    )
    assert item_run.state == to_state
    [event] = session.scalars(select(AuditEvent)).all()
    assert (event.action, event.actor, event.item_id) == (
        "item.state",
        "worker@h:1",
        item_run.item_id,
    )
    assert event.details["from"] == from_state.value and event.details["to"] == to_state.value
    assert event.details["reason"] == "because"
    if to_state == S.running:
        assert item_run.lease_owner == "worker@h:1" and item_run.lease_expires_at is not None
        assert item_run.attempts == 2 and event.details["attempt"] == 2
    else:
        assert item_run.lease_owner is None and item_run.lease_expires_at is None
    if failure is not None:
        assert (item_run.error_code, event.details["error_code"]) == (
            "corrupt_file",
            "corrupt_file",
        )
    assert (item_run.finished_at is not None) == (
        to_state in (S.done, S.failed, S.unsupported, S.cancelled)
    )


def test_a_move_into_running_needs_a_lease_length(session: Session) -> None:
    with pytest.raises(item_states.InvalidTransitionError, match="lease"):
        item_states.transition(session, _item_run_in(session, S.queued), S.running, "w")


def test_several_moves_append_their_events_in_one_chain_in_order(session: Session) -> None:
    first, second = _item_run_in(session, S.pending), _item_run_in(session, S.pending)
    item_states.transition_many(session, [first, second], S.queued, "dispatcher")
    session.commit()
    for item_run in (first, second):
        chain = audit.chain_name(item_run.run.job_id)
        assert audit.verify_chain(session, chain) is None


def test_nothing_else_writes_the_state_column() -> None:
    """A source check: assignments to ``.state`` of an item run live in worker/item_states.py."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    writers = []
    pattern = re.compile(r"item_run\w*\.state\s*=[^=]|ItemRun\.state\s*:|values\(\s*state=")
    for package in ("db", "worker", "jobs"):
        for path in (root / package).rglob("*.py"):
            if path.name == "item_states.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    writers.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert writers == []
