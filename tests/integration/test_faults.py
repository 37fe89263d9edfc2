"""Tests that break things: a worker killed mid-model-call, Redis flushed mid-job,
Postgres connections killed mid-job, an audit row tampered with.

Each test runs its own ``sieve worker`` on its own queue against the session's
Postgres database, injects one fault, and then checks in Postgres that every
item finished exactly once and that the audit chain is intact.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from db.models import AuditEvent, ItemRun, ItemState, Result, Run, RunState
from jobs import custody
from tests import pdfgen, services
from tests.integration.harness import (
    WorkerProcess,
    run_sieve,
    submit_folder,
    wait_for_run,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.slow]


@pytest.fixture
def fault_env(sieve_env: dict[str, str]) -> dict[str, str]:
    """The session's settings on a queue of this test's own, with a fast recovery sweep."""
    return sieve_env | {
        "SIEVE_WORKER__QUEUE": services.unique_queue_name(),
        "SIEVE_WORKER__SWEEP_INTERVAL_S": "3",
        "SIEVE_WORKER__REQUEUE_GRACE_S": "2",
    }


def _item_runs(engine: Engine, job_id: int) -> list[ItemRun]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(ItemRun).join(Run).where(Run.job_id == job_id).order_by(ItemRun.id)
            )
        )


def _results_per_item(engine: Engine, job_id: int) -> dict[int, int]:
    with Session(engine) as session:
        rows = session.execute(
            select(Result.item_id, func.count())
            .join(Run, Run.id == Result.run_id)
            .where(Run.job_id == job_id)
            .group_by(Result.item_id)
        ).all()
    return dict(rows)


def _assert_each_item_done_exactly_once(engine: Engine, job_id: int) -> list[ItemRun]:
    item_runs = _item_runs(engine, job_id)
    assert [item_run.state for item_run in item_runs] == [ItemState.done] * len(item_runs)
    assert _results_per_item(engine, job_id) == {item_run.item_id: 1 for item_run in item_runs}
    with Session(engine) as session:
        assert custody.verify_job(session, job_id) == []
        stored = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.job_id == job_id, AuditEvent.action == "result.stored")
        )
    assert stored == len(item_runs), "one result.stored event per item, never two"
    return item_runs


def _text_pdfs(folder: Path, count: int, pages: int = 2) -> Path:
    folder.mkdir()
    for number in range(count):
        pdfgen.make_text_pdf(
            folder / f"letter-{number}.pdf",
            [
                f"Letter {number}, page {page + 1}. " + pdfgen.MEMO_PAGES[page % 2]
                for page in range(pages)
            ],
        )
    return folder


def test_a_worker_child_killed_mid_model_call_is_replaced_and_the_item_completes_once(
    tmp_path: Path,
    fault_env: dict[str, str],
    workers: Callable[..., WorkerProcess],
    db_engine: Engine,
    database_url: str,
) -> None:
    worker = workers(fault_env)
    job_id = submit_folder(fault_env, _text_pdfs(tmp_path / "in", 1, pages=3))

    def in_model_call() -> ItemRun | None:
        # Extraction is stored before analysis starts: running + extracted = in the model.
        with Session(db_engine) as session:
            extracted = session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.job_id == job_id, AuditEvent.action == "item.extracted")
            )
        item_run = _item_runs(db_engine, job_id)[0]
        return item_run if extracted and item_run.state == ItemState.running else None

    running = wait_until(in_model_call, 120, "the model call to start")
    time.sleep(0.5)
    victim = running.lease_owner
    assert victim is not None
    os.kill(int(victim.rpartition(":")[2]), signal.SIGKILL)

    wait_for_run(database_url, job_id, timeout=300)
    (item_run,) = _assert_each_item_done_exactly_once(db_engine, job_id)
    assert item_run.attempts == 2
    with Session(db_engine) as session:
        result = session.scalars(select(Result).where(Result.item_id == item_run.item_id)).one()
        transitions = [
            event.details
            for event in session.scalars(
                select(AuditEvent).where(
                    AuditEvent.job_id == job_id, AuditEvent.action == "item.state"
                )
            )
        ]
    assert result.produced_by != victim
    # Two recoveries race, and either may win: the redelivered message (reject on
    # worker lost) takes the dead lease over, or the worker's sweep resets the
    # item first because its lease holder is gone. Both are recorded.
    takeovers = [t for t in transitions if t.get("taken_over_from") == victim]
    resets = [
        t
        for t in transitions
        if t.get("reason") == "lease holder gone" and t.get("lease_owner") == victim
    ]
    assert len(takeovers) + len(resets) == 1, transitions
    assert worker.process.poll() is None, "the worker's main process survives its child's death"
    assert "WorkerLostError" in worker.log() or "exited with 'signal 9" in worker.log()


def test_redis_flushed_mid_job_is_recovered_by_sieve_resume_without_loss_or_doubling(
    tmp_path: Path,
    fault_env: dict[str, str],
    workers: Callable[..., WorkerProcess],
    db_engine: Engine,
    database_url: str,
) -> None:
    env = fault_env | {"SIEVE_WORKER__SWEEP_INTERVAL_S": "0"}  # only the explicit resume
    workers(env)
    job_id = submit_folder(env, _text_pdfs(tmp_path / "in", 4))
    wait_until(
        lambda: any(ir.state == ItemState.done for ir in _item_runs(db_engine, job_id)),
        180,
        "the first item to finish",
    )
    redis.Redis.from_url(services.REDIS_URL).flushall()

    # The flush took every waiting message with it: the job stalls.
    time.sleep(12)
    stalled = [ir for ir in _item_runs(db_engine, job_id) if ir.state == ItemState.queued]
    assert stalled, "some items should have been waiting in Redis when it was flushed"
    with Session(db_engine) as session:
        assert session.scalar(select(Run.state).where(Run.job_id == job_id)) == RunState.running

    resumed = run_sieve(["resume", str(job_id)], env)
    assert resumed.returncode == 0, resumed.stderr
    assert int(resumed.stdout.strip()) == len(stalled)
    wait_for_run(database_url, job_id, timeout=300)
    item_runs = _assert_each_item_done_exactly_once(db_engine, job_id)
    assert all(item_run.attempts == 1 for item_run in item_runs)
    with Session(db_engine) as session:
        requeued = session.scalars(
            select(AuditEvent).where(AuditEvent.job_id == job_id, AuditEvent.action == "item.state")
        ).all()
    assert sum(1 for event in requeued if event.details.get("reason") == "message lost") == len(
        stalled
    )


def test_the_worker_start_sweep_recovers_a_job_whose_messages_were_lost(
    tmp_path: Path,
    fault_env: dict[str, str],
    workers: Callable[..., WorkerProcess],
    db_engine: Engine,
    database_url: str,
) -> None:
    # Submitted while no worker runs, then the broker loses everything.
    job_id = submit_folder(fault_env, _text_pdfs(tmp_path / "in", 2))
    redis.Redis.from_url(services.REDIS_URL).flushall()
    time.sleep(3)  # past the requeue grace
    workers(fault_env)
    wait_for_run(database_url, job_id, timeout=300)
    _assert_each_item_done_exactly_once(db_engine, job_id)


def test_postgres_connections_killed_mid_job_are_survived(
    tmp_path: Path,
    fault_env: dict[str, str],
    workers: Callable[..., WorkerProcess],
    db_engine: Engine,
    database_url: str,
) -> None:
    worker = workers(fault_env)
    job_id = submit_folder(fault_env, _text_pdfs(tmp_path / "in", 3))
    database = db_engine.url.database
    killed = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        states = [item_run.state for item_run in _item_runs(db_engine, job_id)]
        if all(state == ItemState.done for state in states):
            break
        if killed < 3 and ItemState.running in states:
            with db_engine.connect() as connection:
                terminated = connection.execute(
                    text(
                        "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                        "where datname = :database and pid <> pg_backend_pid()"
                    ),
                    {"database": database},
                ).scalar_one()
            killed += 1 if terminated else 0
            time.sleep(4)
        time.sleep(0.5)
    assert killed >= 2, "the fault was injected while items were running"
    wait_for_run(database_url, job_id, timeout=300)
    _assert_each_item_done_exactly_once(db_engine, job_id)
    assert worker.process.poll() is None


def test_a_cancelled_job_stops_and_records_it(
    tmp_path: Path,
    fault_env: dict[str, str],
    workers: Callable[..., WorkerProcess],
    db_engine: Engine,
) -> None:
    job_id = submit_folder(fault_env, _text_pdfs(tmp_path / "in", 3))
    cancelled = run_sieve(["cancel", str(job_id)], fault_env)
    assert cancelled.returncode == 0, cancelled.stderr
    workers(fault_env)
    time.sleep(5)  # the worker drains the three messages, each a no-op
    item_runs = _item_runs(db_engine, job_id)
    assert [ir.state for ir in item_runs] == [ItemState.cancelled] * 3
    assert _results_per_item(db_engine, job_id) == {}
    with Session(db_engine) as session:
        assert session.scalar(select(Run.state).where(Run.job_id == job_id)) == RunState.cancelled
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.job_id == job_id).order_by(AuditEvent.seq)
        ).all()
        assert custody.verify_job(session, job_id) == []
    assert actions[-1] == "run.cancelled"
    status = run_sieve(["status", str(job_id)], fault_env)
    assert "cancelled: 3" in status.stdout


def test_audit_tampering_is_named_by_verify_and_the_export_reports_custody(
    tmp_path: Path,
    fault_env: dict[str, str],
    workers: Callable[..., WorkerProcess],
    db_engine: Engine,
    database_url: str,
) -> None:
    workers(fault_env)
    job_id = submit_folder(fault_env, _text_pdfs(tmp_path / "in", 1))
    wait_for_run(database_url, job_id, timeout=300)

    intact = run_sieve(["audit", "verify", str(job_id)], fault_env)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    exported = run_sieve(["audit", "export", str(job_id)], fault_env)
    assert exported.returncode == 0, exported.stderr
    report = json.loads(exported.stdout)
    (item,) = report["items"]
    assert item["sha256"] and item["md5"] and item["paths"][0].endswith("letter-0.pdf")
    assert item["runs"][0]["state"] == "done"
    assert item["runs"][0]["result"]["produced_by"].startswith("worker@")
    assert [e["action"] for e in item["events"]][-2:] == ["result.stored", "item.state"]
    assert report["audit"]["intact"] is True

    with db_engine.begin() as connection:
        target = connection.execute(
            select(AuditEvent.id, AuditEvent.seq).where(
                AuditEvent.job_id == job_id, AuditEvent.action == "result.stored"
            )
        ).one()
        with pytest.raises(Exception, match="append-only"), connection.begin_nested():
            connection.execute(
                text("update audit_events set actor = 'someone else' where id = :id"),
                {"id": target.id},
            )
        connection.execute(text("alter table audit_events disable trigger user"))
        connection.execute(
            text(
                "update audit_events set details = jsonb_set(details, '{citations}', '99') "
                "where id = :id"
            ),
            {"id": target.id},
        )
        connection.execute(text("alter table audit_events enable trigger user"))

    broken = run_sieve(["audit", "verify", str(job_id)], fault_env)
    assert broken.returncode == 1
    assert f"event id {target.id} (seq {target.seq})" in broken.stdout
    assert "content does not match its hash" in broken.stdout
    everything = run_sieve(["audit", "verify"], fault_env)
    assert everything.returncode == 1 and f"event id {target.id}" in everything.stdout
