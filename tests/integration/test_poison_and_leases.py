"""No poison item, no endless retry, and short leases, through real workers on PostgreSQL.

* A PDF with NUL characters in its title and page text (which PostgreSQL
  refuses in ``text`` and ``jsonb``) ends ``done``, the replacement noted.
* An item whose result write keeps failing with a serialization failure
  (SQLSTATE 40001, injected by a trigger) ends ``retries_exhausted`` with its
  last error, instead of staying ``running``.
* A job cancelled while a worker is mid-item is abandoned at the worker's next
  lease renewal: nothing is stored.
* A worker whose lease names another host (so its death cannot be seen from
  here) is killed outright; another worker takes the item over once the lease
  runs out, and the takeover time is measured against the 2-minute promise.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from db.models import AuditEvent, Item, ItemRun, ItemState, Result, Run, StoredSegment
from jobs import custody
from tests import pdfgen, services
from tests.integration.harness import (
    WorkerProcess,
    run_sieve,
    submit_folder,
    wait_for_run,
    wait_until,
)

pytestmark = [pytest.mark.model, pytest.mark.slow]


def _own_queue(env: dict[str, str], **settings: str) -> dict[str, str]:
    return (
        env
        | {"SIEVE_WORKER__QUEUE": services.unique_queue_name()}
        | {f"SIEVE_WORKER__{key.upper()}": value for key, value in settings.items()}
    )


def _item_run(engine: Engine, job_id: int) -> ItemRun:
    with Session(engine) as session:
        return session.scalars(select(ItemRun).join(Run).where(Run.job_id == job_id)).one()


def _in_model_call(engine: Engine, job_id: int) -> ItemRun | None:
    """The item run once its extraction is stored and it is still running (so: in the model)."""
    with Session(engine) as session:
        extracted = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.job_id == job_id, AuditEvent.action == "item.extracted")
        )
    item_run = _item_run(engine, job_id)
    return item_run if extracted and item_run.state == ItemState.running else None


def _long_pdf(folder: Path, pages: int = 4) -> Path:
    folder.mkdir()
    pdfgen.make_text_pdf(
        folder / "long.pdf",
        [f"Page {page + 1}. " + pdfgen.MEMO_PAGES[page % 2] for page in range(pages)],
    )
    return folder


def test_a_pdf_with_nul_characters_ends_done_on_postgres(
    tmp_path: Path,
    sieve_env: dict[str, str],
    celery_worker: WorkerProcess,
    db_engine: Engine,
    database_url: str,
) -> None:
    folder = tmp_path / "nul"
    folder.mkdir()
    pdfgen.make_pdf_with_nul_characters(folder / "imagemagick-scan.pdf")
    job_id = submit_folder(sieve_env, folder)
    wait_for_run(database_url, job_id, timeout=300)
    item_run = _item_run(db_engine, job_id)
    assert (item_run.state, item_run.error_code, item_run.attempts) == (ItemState.done, None, 1)
    with Session(db_engine) as session:
        item = session.get(Item, item_run.item_id)
        assert item is not None and item.doc_metadata is not None
        assert "\ufffd" in item.doc_metadata["title"]
        assert item.doc_metadata["unstorable_characters_replaced"] >= 2
        texts = session.scalars(
            select(StoredSegment.text).where(StoredSegment.item_id == item.id)
        ).all()
        assert texts and not any("\x00" in t for t in texts)
        assert (
            session.scalar(
                select(func.count()).select_from(Result).where(Result.item_id == item.id)
            )
            == 1
        )
        assert custody.verify_job(session, job_id) == []


@pytest.fixture
def refuse_results_of(db_engine: Engine) -> Iterator[Callable[[int], None]]:
    """Install a trigger that fails every result insert of one job with SQLSTATE 40001."""

    def install(job_id: int) -> None:
        with db_engine.begin() as connection:
            connection.execute(
                text(f"""
                CREATE OR REPLACE FUNCTION sieve_test_refuse_results() RETURNS trigger AS $$
                BEGIN
                    IF NEW.run_id IN (SELECT id FROM runs WHERE job_id = {int(job_id)}) THEN
                        RAISE EXCEPTION 'injected: could not serialize access'
                            USING ERRCODE = '40001';
                    END IF;
                    RETURN NEW;
                END $$ LANGUAGE plpgsql""")
            )
            connection.execute(
                text(
                    "CREATE TRIGGER sieve_test_refuse_results BEFORE INSERT ON results "
                    "FOR EACH ROW EXECUTE FUNCTION sieve_test_refuse_results()"
                )
            )

    yield install
    with db_engine.begin() as connection:
        connection.execute(text("DROP TRIGGER IF EXISTS sieve_test_refuse_results ON results"))
        connection.execute(text("DROP FUNCTION IF EXISTS sieve_test_refuse_results()"))


def test_an_item_that_keeps_failing_transiently_ends_retries_exhausted_not_running(
    tmp_path: Path,
    sieve_env: dict[str, str],
    workers: Callable[..., WorkerProcess],
    db_engine: Engine,
    database_url: str,
    refuse_results_of: Callable[[int], None],
) -> None:
    env = _own_queue(sieve_env, max_attempts="2", database_retry_limit="1", retry_backoff_s="0.5")
    folder = tmp_path / "one"
    folder.mkdir()
    pdfgen.make_text_pdf(folder / "letter.pdf", [pdfgen.LETTER_PAGE])
    job_id = submit_folder(env, folder)  # no worker yet: the trigger is in place first
    refuse_results_of(job_id)
    worker = workers(env)
    wait_for_run(database_url, job_id, timeout=300)
    item_run = _item_run(db_engine, job_id)
    assert (item_run.state, item_run.error_code) == (ItemState.failed, "retries_exhausted")
    assert item_run.attempts == 2
    assert "last error: database_unavailable" in (item_run.error_message or "")
    assert "could not serialize access" in (item_run.error_message or "")
    with Session(db_engine) as session:
        assert custody.verify_job(session, job_id) == []
    assert worker.process.poll() is None


def test_a_job_cancelled_while_a_worker_is_mid_item_is_abandoned_at_the_next_renewal(
    tmp_path: Path,
    sieve_env: dict[str, str],
    workers: Callable[..., WorkerProcess],
    db_engine: Engine,
) -> None:
    env = _own_queue(sieve_env, lease_s="6")  # a renewal every 2 s
    worker = workers(env)
    job_id = submit_folder(env, _long_pdf(tmp_path / "in", pages=6))
    wait_until(lambda: _in_model_call(db_engine, job_id), 120, "the model call to start")
    cancelled_at = time.monotonic()
    cancelled = run_sieve(["cancel", str(job_id)], env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "1 were running" in cancelled.stderr
    wait_until(lambda: "abandoning" in worker.log(), 120, "the worker to abandon the item")
    abandoned_after_s = time.monotonic() - cancelled_at
    print(f"abandoned {abandoned_after_s:.1f} s after the cancel (lease 6 s, renewal every 2 s)")
    # The model call under way finishes first (llama-cpp-python's chat API has no stop
    # hook); the heartbeat has marked the lease lost by then, so its answer is dropped.
    time.sleep(2)
    item_run = _item_run(db_engine, job_id)
    assert item_run.state == ItemState.cancelled
    with Session(db_engine) as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Result).join(Run).where(Run.job_id == job_id)
            )
            == 0
        )
        assert custody.verify_job(session, job_id) == []
    assert worker.process.poll() is None


def test_an_item_whose_worker_died_on_another_host_is_taken_over_within_two_minutes(
    tmp_path: Path,
    sieve_env: dict[str, str],
    workers: Callable[..., WorkerProcess],
    db_engine: Engine,
    database_url: str,
) -> None:
    # The default lease and sweep: the promise is about what users run.
    env = _own_queue(sieve_env)
    for key in ("SIEVE_WORKER__LEASE_S", "SIEVE_WORKER__SWEEP_INTERVAL_S"):
        env.pop(key, None)
    elsewhere = workers(env | {"SIEVE_WORKER__HOST_NAME": "other-host"}, "elsewhere")
    job_id = submit_folder(env, _long_pdf(tmp_path / "in", pages=6))
    running = wait_until(lambda: _in_model_call(db_engine, job_id), 120, "the model call to start")
    if not (running.lease_owner or "").startswith("worker@other-host:"):
        pytest.fail(f"the item went to the wrong worker first: {running.lease_owner}")
    here = workers(env, "here")  # started now, so the message can only have gone elsewhere
    # The whole worker dies (main process and child): nothing rejects its message.
    os.killpg(elsewhere.process.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    elsewhere.process.wait(timeout=10)

    def taken_over() -> bool:
        owner = _item_run(db_engine, job_id).lease_owner or ""
        return owner.startswith("worker@") and "other-host" not in owner

    wait_until(taken_over, 150, "another worker to take the item over")
    takeover_s = time.monotonic() - killed_at
    print(
        f"taken over {takeover_s:.1f} s after the worker on another host died "
        "(lease 60 s, sweep every 30 s)"
    )
    assert takeover_s < 120
    wait_for_run(database_url, job_id, timeout=300)
    item_run = _item_run(db_engine, job_id)
    assert (item_run.state, item_run.attempts) == (ItemState.done, 2)
    with Session(db_engine) as session:
        reasons = [
            e.details.get("reason")
            for e in session.scalars(
                select(AuditEvent).where(
                    AuditEvent.job_id == job_id, AuditEvent.action == "item.state"
                )
            )
        ]
        assert "lease expired" in reasons
        assert custody.verify_job(session, job_id) == []
    assert here.process.poll() is None
