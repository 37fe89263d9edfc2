"""A discovery set through a real worker, PostgreSQL, Redis and the real model.

The matter of ``tests/mattergen.py`` (three custodians, a mailbox with a thread,
a loose duplicate, an Outlook MSG, Office files and a ZIP with children) is submitted with the CLI and
read back with ``sieve results``: every message and file accounted for,
families whole and together, the duplicate listed with both custodians,
threads and inclusives as the mail says. A second test kills the worker
in the middle of a mailbox's extraction and checks that the next attempt
resumes from the checkpoint and loses or doubles no message.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from db.models import Item, ItemRun, ItemState, Run
from tests import mailgen, officegen, services
from tests.integration.harness import (
    WorkerProcess,
    run_sieve,
    submit_folder,
    wait_for_run,
    wait_until,
)
from tests.mattergen import build_matter

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.slow]


def _results(env: dict[str, str], job_id: int) -> list[dict[str, Any]]:
    shown = run_sieve(["results", str(job_id), "--format", "jsonl"], env)
    assert shown.returncode in (0, 1), shown.stderr
    return [json.loads(line) for line in shown.stdout.splitlines()]


def test_a_matter_through_the_worker_keeps_families_custodians_duplicates_and_threads(
    tmp_path: Path,
    sieve_env: dict[str, str],
    celery_worker: WorkerProcess,
    database_url: str,
    db_engine: Engine,
) -> None:
    matter = build_matter(tmp_path / "matter")
    # A legacy Word file, saved as DOC by LibreOffice itself, read through the worker's converter.
    memo = officegen.write_docx(tmp_path / "memo.docx", ["Legacy memo: the forecast is flat."])
    officegen.convert_with_libreoffice(memo, "doc", matter / "erin")
    job_id = submit_folder(sieve_env, matter, "--custodian-folders", "--name", "Matter 123")
    wait_for_run(database_url, job_id, timeout=900)
    rows = _results(sieve_env, job_id)
    assert celery_worker.process.poll() is None

    # Every path accounted for: 5 submitted, 5 messages, 2 + 1 attachments, the attached ZIP's
    # file, the Word file's embedded file, the MSG's attached file and attached message.
    assert len(rows) == 5 + 5 + 3 + 1 + 1 + 2
    failed = [(row["path"], row["error_code"]) for row in rows if row["state"] != "done"]
    assert failed == []
    by_suffix = {row["path"].rsplit("/", 1)[-1]: row for row in rows}
    mailbox = by_suffix["inbox.mbox"]
    legacy = by_suffix["memo.doc"]
    assert (legacy["media_type"], legacy["custodian"]) == ("application/msword", "erin")
    assert legacy["result"] is not None and legacy["page_count"] == 1
    assert mailbox["container_counts"] == {"expected": 5, "extracted": 5, "failed": 0}
    assert mailbox["result"] is None and mailbox["custodian"] == "alice"

    # Families: each child's parent is a row of the job, and a family's rows are contiguous.
    item_ids = {row["item_id"] for row in rows}
    for row in rows:
        if row["parent_item_id"] is not None:
            assert row["parent_item_id"] in item_ids
        if row["level"] and row["level"] > 1:
            assert row["family_id"] != row["item_id"]
    families = [row["family_id"] for row in rows if not row["duplicate"]]
    runs = [
        family
        for index, family in enumerate(families)
        if index == 0 or families[index - 1] != family
    ]
    assert len(runs) == len(set(runs)), f"a family is split: {families}"

    # Results from the real model on every document, none on the containers.
    notes_zip = next(row for row in rows if row["path"].endswith("notes.zip"))
    assert notes_zip["container_counts"] == {"expected": 1, "extracted": 1, "failed": 0}
    containers = {mailbox["item_id"], notes_zip["item_id"]}
    documents = [row for row in rows if row["item_id"] not in containers and not row["duplicate"]]
    assert all(row["result"] is not None for row in documents)
    assert all(row["result"] is None for row in rows if row["item_id"] in containers)
    zipped = next(row for row in rows if row["parent_item_id"] == notes_zip["item_id"])
    assert zipped["family_id"] == notes_zip["family_id"] != notes_zip["item_id"]

    # The Outlook message: its attached file and attached message in its family, one thread.
    settlement = by_suffix["settlement.msg"]
    assert settlement["custodian"] == "bob" and settlement["message_id"] == "terms-2@example.test"
    in_family = [row for row in rows if row["parent_item_id"] == settlement["item_id"]]
    assert len(in_family) == 2
    assert {row["family_id"] for row in in_family} == {settlement["item_id"]}
    attached = next(row for row in in_family if row["message_id"] == "terms-1@example.test")
    assert attached["thread_id"] == settlement["thread_id"]
    assert (settlement["inclusive"], attached["inclusive"]) == (True, False)

    # The lunch message: one document, held by both custodians.
    lunch = [row for row in rows if "unch" in row["path"]]
    assert len(lunch) == 2 and len({row["item_id"] for row in lunch}) == 1
    assert {row["custodian"] for row in lunch} == {"alice", "erin"}
    assert all(row["all_custodians"] == ["alice", "erin"] for row in lunch)

    # The thread: four messages, in date order, inclusive where nothing later quotes them whole.
    q3 = sorted(
        (row for row in rows if row["thread_id"] and "Q3" in row["path"].rsplit("›", 1)[-1]),
        key=lambda row: row["thread_position"],
    )
    assert len(q3) == 4 and len({row["thread_id"] for row in q3}) == 1
    assert [row["inclusive"] for row in q3] == [True, False, False, True]
    assert all(row["email_hash"] and row["message_id_hash"] for row in q3)

    with Session(db_engine) as session:
        children = session.scalar(
            select(func.count())
            .select_from(Item)
            .where(Item.job_id == job_id, Item.parent_id.is_not(None))
        )
    # Four messages (the fifth is a duplicate), three attachments, the ZIP's file, the
    # embedded file, the MSG's two.
    assert children == 4 + 3 + 1 + 1 + 2


def test_a_mailbox_extraction_killed_half_way_resumes_from_its_checkpoint(
    tmp_path: Path,
    sieve_env: dict[str, str],
    workers: Callable[..., WorkerProcess],
    database_url: str,
    db_engine: Engine,
) -> None:
    env = sieve_env | {
        "SIEVE_WORKER__QUEUE": services.unique_queue_name(),
        "SIEVE_WORKER__SWEEP_INTERVAL_S": "3",
        "SIEVE_WORKER__REQUEUE_GRACE_S": "2",
    }
    count = 4000
    folder = tmp_path / "store"
    mailgen.write_mbox(
        folder / "archive.mbox",
        [
            mailgen.build(
                mailgen.Draft(
                    "a@example.test",
                    ["b@example.test"],
                    f"status {number}",
                    f"Status report number {number}.\n" * 20,
                    mailgen.START + dt.timedelta(minutes=number),
                    f"s{number}@example.test",
                )
            )
            for number in range(count)
        ],
    )
    worker = workers(env, "first")
    # The job is cancelled once the mailbox is extracted: 4,000 model calls are not the point.
    job_id = submit_folder(env, folder)
    data_dir = Path(env["SIEVE_DATA_DIR"])

    with Session(db_engine) as session:
        item = session.scalars(select(Item).where(Item.job_id == job_id)).one()
    manifest = data_dir / "artifacts" / item.sha256 / "children" / "manifest.json"

    def checkpointed() -> int:
        try:
            return len(json.loads(manifest.read_text())["entries"])
        except (OSError, ValueError, KeyError):
            return 0

    written = wait_until(lambda: checkpointed() >= 200, 120, "the first checkpoint")
    assert written
    with Session(db_engine) as session:
        item_run = session.scalars(select(ItemRun).where(ItemRun.item_id == item.id)).one()
        victim = item_run.lease_owner
    assert victim is not None and item_run.state == ItemState.running
    at_kill = checkpointed()
    assert at_kill < count, "the extraction finished before it could be killed"
    os.kill(int(victim.rpartition(":")[2]), signal.SIGKILL)

    def extracted() -> dict[str, Any] | None:
        with Session(db_engine) as session:
            stored = session.get(Item, item.id)
            return (stored.doc_metadata or {}) if stored and stored.extractor else None

    metadata = wait_until(extracted, 300, "the mailbox to be extracted again")
    assert metadata["messages"] == {"expected": count, "extracted": count, "failed": 0}
    assert metadata["resumed_at_message"] > 1
    with Session(db_engine) as session:
        children = session.scalars(
            select(Item.ordinal).where(Item.parent_id == item.id).order_by(Item.ordinal)
        ).all()
    assert list(children) == list(range(1, count + 1))  # none lost, none twice
    cancelled = run_sieve(["cancel", str(job_id)], env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert worker.process.poll() is None
    time.sleep(0.5)
    with Session(db_engine) as session:
        run = session.scalars(select(Run).where(Run.job_id == job_id)).one()
        assert run.state.value in ("cancelled", "completed", "running")
