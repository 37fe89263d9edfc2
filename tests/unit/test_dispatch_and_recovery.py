"""Dispatch, recovery, status and the results contract, on SQLite and kombu's in-memory broker.

The broker here is kombu's ``memory://`` transport (real kombu and Celery code,
no Redis): what is published can be read back and counted. The same paths
against Redis and a real worker are in ``tests/integration/test_faults.py``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from db import audit
from db.base import utcnow
from db.models import AuditEvent, ItemRun, ItemState
from jobs import embedded, results, status
from tests import contract, pdfgen
from tests.fake_model import FakeModel
from tests.unit.test_embedded_pipeline import Embedded, _submit, make_embedded
from worker import errors, recovery
from worker.celery_app import PROCESS_ITEM_TASK, create_celery_app
from worker.dispatch import Dispatcher


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Embedded]:
    yield from make_embedded(tmp_path, FakeModel())


@pytest.fixture
def dispatcher(env: Embedded) -> Iterator[Dispatcher]:
    config = env.settings.model_copy(update={"broker_url": "memory://"})
    dispatcher = Dispatcher(create_celery_app(config), "sieve-unit")
    yield dispatcher
    dispatcher.close()


@pytest.fixture
def three_files(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, page in (("a.pdf", pdfgen.LETTER_PAGE), ("b.pdf", pdfgen.INVOICE_PAGE)):
        pdfgen.make_text_pdf(folder / name, [page])
    pdfgen.make_corrupt_pdf(folder / "c.pdf")
    return folder


def _published(dispatcher: Dispatcher) -> list[int]:
    """Drain the in-memory queue: the item-run ids of every message in it."""
    ids = []
    with dispatcher.app.connection_for_read() as connection:
        queue = dispatcher.app.amqp.queues[dispatcher.queue].bind(connection.default_channel)
        while (message := queue.get(no_ack=True)) is not None:
            assert message.headers["task"] == PROCESS_ITEM_TASK
            ids.append(message.decode()[0][0])
    return ids


def _states(env: Embedded, ids: list[int]) -> list[str]:
    with env.session_factory() as session:
        return [session.get(ItemRun, i).state.value for i in ids]  # type: ignore[union-attr]


def test_publishing_sends_one_message_per_item_and_marks_them_queued(
    env: Embedded, dispatcher: Dispatcher, three_files: Path
) -> None:
    submission = _submit(env, three_files)
    assert dispatcher.publish(env.session_factory, submission.item_run_ids, "me") == 3
    assert dispatcher.backlog() == 3
    assert sorted(_published(dispatcher)) == sorted(submission.item_run_ids)
    assert _states(env, submission.item_run_ids) == ["queued"] * 3
    with env.session_factory() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "item.state")).all()
        assert [(e.details["from"], e.details["to"]) for e in events] == [("pending", "queued")] * 3
        assert audit.verify_chain(session, audit.chain_name(submission.job_id)) is None


def test_an_item_a_worker_already_claimed_is_not_marked_queued(
    env: Embedded, dispatcher: Dispatcher, three_files: Path
) -> None:
    submission = _submit(env, three_files)
    first = submission.item_run_ids[0]
    with env.session_factory.begin() as session:
        session.execute(update(ItemRun).where(ItemRun.id == first).values(state=ItemState.running))
    dispatcher.publish(env.session_factory, submission.item_run_ids, "me")
    assert _states(env, submission.item_run_ids) == ["running", "queued", "queued"]


def test_resume_re_drives_lost_messages_and_dead_leases_and_leaves_live_ones(
    env: Embedded, dispatcher: Dispatcher, three_files: Path
) -> None:
    submission = _submit(env, three_files)
    dispatcher.publish(env.session_factory, submission.item_run_ids, "me")
    _published(dispatcher)  # the broker loses them (a FLUSHALL)
    lost, expired, live = submission.item_run_ids
    with env.session_factory.begin() as session:
        session.execute(
            update(ItemRun)
            .where(ItemRun.id == expired)
            .values(
                state=ItemState.running,
                lease_owner="w@other-host:1",
                lease_expires_at=utcnow() - dt.timedelta(seconds=1),
            )
        )
        session.execute(
            update(ItemRun)
            .where(ItemRun.id == live)
            .values(
                state=ItemState.running,
                lease_owner="w@other-host:2",
                lease_expires_at=utcnow() + dt.timedelta(minutes=5),
            )
        )
    report = recovery.resume(dispatcher, env.session_factory, "admin", submission.job_id)
    assert (report.queued, report.expired_leases, report.published) == ([lost], [expired], 2)
    assert sorted(_published(dispatcher)) == [lost, expired]
    assert _states(env, submission.item_run_ids) == ["queued", "queued", "running"]
    with env.session_factory() as session:
        reasons = [
            e.details.get("reason")
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action == "item.state").order_by(AuditEvent.seq)
            )
        ]
    assert "message lost" in reasons and "lease expired" in reasons


def test_the_sweep_policy_leaves_queued_items_alone_while_the_broker_still_holds_messages(
    env: Embedded, dispatcher: Dispatcher, three_files: Path
) -> None:
    submission = _submit(env, three_files)
    dispatcher.publish(env.session_factory, submission.item_run_ids, "me")
    policy = recovery.SweepPolicy(requeue_queued=dispatcher.backlog() == 0)
    report = recovery.resume(dispatcher, env.session_factory, "sweeper", policy=policy)
    assert report.published == 0 and dispatcher.backlog() == 3


def test_cancel_ends_every_unfinished_item_and_keeps_finished_results(
    env: Embedded, three_files: Path
) -> None:
    submission = _submit(env, three_files)
    embedded.run_item_runs(env.context, submission.item_run_ids[:1])
    report = recovery.cancel_job(env.session_factory, submission.job_id, "admin")
    assert (report.items_cancelled, report.items_running) == (2, 0)
    assert _states(env, submission.item_run_ids) == ["done", "cancelled", "cancelled"]
    with env.session_factory() as session:
        current = status.run_status(session, submission.job_id)
        assert current.run_state == "cancelled" and current.is_finished
        assert audit.verify_chain(session, audit.chain_name(submission.job_id)) is None


# --- status and the results contract ---------------------------------------------


def test_status_counts_states_and_groups_failures_by_code(env: Embedded, three_files: Path) -> None:
    submission = _submit(env, three_files)
    with env.session_factory() as session:
        before = status.run_status(session, submission.job_id)
    assert before.counts["pending"] == 3 and not before.is_finished
    embedded.run_item_runs(env.context, submission.item_run_ids)
    with env.session_factory() as session:
        after = status.run_status(session, status.resolve_job_id(session, None))
    assert (after.counts["done"], after.counts["failed"]) == (2, 1)
    assert after.failures_by_code == {"corrupt_file": 1}
    assert after.is_finished and after.problem_count == 1 and after.run_state == "completed"


def test_an_unknown_job_is_a_not_found_error(env: Embedded) -> None:
    with env.session_factory() as session:
        with pytest.raises(errors.NotFoundError, match="there are no jobs yet"):
            status.resolve_job_id(session, None)
        with pytest.raises(errors.NotFoundError, match="no job with id 42"):
            status.resolve_job_id(session, 42)


REQUIRED_FIELDS = set(contract.JSONL_ROW_FIELDS)


def test_each_jsonl_row_is_one_submitted_file_with_the_documented_fields(
    env: Embedded, three_files: Path
) -> None:
    (three_files / "a-copy.pdf").write_bytes((three_files / "a.pdf").read_bytes())
    submission = _submit(env, three_files)
    embedded.run_item_runs(env.context, submission.item_run_ids)
    out = io.StringIO()
    with env.session_factory() as session:
        run = status.resolve_run(session, submission.job_id, None)
        written = results.write_jsonl(results.result_rows(session, run), out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert written == len(rows) == 4  # one per path, the duplicate included
    for row in rows:
        assert row.keys() >= REQUIRED_FIELDS
        if row["state"] == "done":
            assert row["error_code"] is None and row["error_message"] is None
            assert set(row["result"]) == {"summary", "key_points"}
        else:
            assert row["result"] is None and row["error_code"] == "corrupt_file"
    by_name = {Path(row["path"]).name: row for row in rows}
    assert by_name["a-copy.pdf"]["sha256"] == by_name["a.pdf"]["sha256"]
    assert by_name["a-copy.pdf"]["duplicate"] != by_name["a.pdf"]["duplicate"]
