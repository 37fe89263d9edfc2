"""The admin's session, for real: PostgreSQL, Redis, a ``sieve worker`` and the real model.

A job with broken files is re-run ``--failed-only`` (only those selected), by
``--where`` with each operator, deterministically twice (same output hashes,
``sieve diff`` shows nothing changed), and with a new task version (listed by
``sieve runs``, changes shown by ``sieve diff``); the report accounts for
every path; a paused job waits while the worker runs; a small high-priority
job overtakes a big low one; and ``--dry-run`` counts an archive's members.
"""

from __future__ import annotations

import json
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import AuditEvent, ItemRun, ItemState, Result, Run
from tests import pdfgen
from tests.integration.harness import WorkerProcess, run_sieve, wait_for_run, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.slow]


def _submit(env: dict[str, str], folder: Path, *extra: str) -> int:
    submitted = run_sieve(["submit", str(folder), *extra], env)
    assert submitted.returncode == 0, submitted.stderr
    return int(submitted.stdout.strip().splitlines()[-1])


def _rerun(env: dict[str, str], job_id: int, *options: str) -> int:
    made = run_sieve(["rerun", str(job_id), *options], env)
    assert made.returncode == 0, made.stderr
    return int(made.stdout.strip().splitlines()[-1])


def _selected(env: dict[str, str], job_id: int, *options: str) -> int:
    """How many items a re-run with ``options`` would select (a dry run)."""
    return _rerun(env, job_id, "--dry-run", *options)


def _items_by_state(session: Session, run_id: int) -> dict[str, set[int]]:
    states: dict[str, set[int]] = {}
    for item_id, state in session.execute(
        select(ItemRun.item_id, ItemRun.state).where(ItemRun.run_id == run_id)
    ):
        states.setdefault(state.value, set()).add(item_id)
    return states


def _run(session: Session, job_id: int, number: int) -> Run:
    run = session.scalars(select(Run).where(Run.job_id == job_id, Run.number == number)).one()
    session.expire_all()
    return run


@pytest.fixture(scope="module")
def matter(
    sieve_env: dict[str, str],
    celery_worker: WorkerProcess,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """Two good documents and two broken files, processed once by the worker."""
    folder = tmp_path_factory.mktemp("matter")
    pdfgen.make_text_pdf(folder / "memo.pdf", pdfgen.MEMO_PAGES, title="Memo")
    (folder / "letter.txt").write_text("Dear Ms Ng, the shipment of 300 crates left on Monday.\n")
    pdfgen.make_corrupt_pdf(folder / "corrupt.pdf")
    (folder / "empty.pdf").write_bytes(b"")
    shutil.copy(folder / "memo.pdf", folder / "memo-copy.pdf")
    job_id = _submit(sieve_env, folder, "--task", "summarize", "--custodian", "Alice Ng")
    run = wait_for_run(database_url, job_id, timeout=600)
    return {"job_id": job_id, "run_id": run.id, "folder": folder}


def test_failed_only_selects_exactly_the_items_that_failed(
    matter: dict[str, Any], sieve_env: dict[str, str], database_url: str, db_session: Session
) -> None:
    job_id = matter["job_id"]
    first = _items_by_state(db_session, matter["run_id"])
    assert len(first["failed"]) == 2 and len(first["done"]) == 2
    assert _selected(sieve_env, job_id, "--failed-only") == 2
    run_id = _rerun(sieve_env, job_id, "--run", "1", "--failed-only")
    wait_for_run(database_url, job_id, timeout=300)
    again = _items_by_state(db_session, run_id)
    assert set().union(*again.values()) == first["failed"]  # nothing else was selected
    assert again.get("failed") == first["failed"]  # broken files stay broken
    rerun = db_session.get(Run, run_id)
    assert rerun is not None and rerun.parent_run_id == matter["run_id"]
    assert rerun.selection and rerun.selection["failed_only"] and rerun.selection["selected"] == 2
    # The first run and its results are untouched.
    assert _items_by_state(db_session, matter["run_id"]) == first
    event = db_session.scalars(
        select(AuditEvent).where(AuditEvent.run_id == run_id, AuditEvent.action == "run.created")
    ).one()
    assert event.details["rerun_of"] == 1 and event.details["selected"] == 2
    assert event.details["options"]["failed_only"] is True


@pytest.mark.parametrize(
    ("expression", "count"),
    [
        ("state = done", 2),
        ("state != done", 2),
        ("error_code = null", 2),
        ("error_code ~ 'empty*' or error_code = corrupt_file", 2),
        ("media_type = text/plain", 1),
        ("media_type !~ 'application/*'", 2),  # the text file and the empty one
        ("path ~ '*/memo*.pdf'", 1),  # the item is named by its first path in walk order
        ("custodian = 'Alice Ng'", 4),
        ("custodian != 'Alice Ng'", 0),
        ("size_bytes > 0 and size_bytes < 1MB", 3),
        ("size_bytes <= 0", 1),
        ("page_count >= 2", 1),
        ("task_version < 2 and not state = failed", 2),
        ("model_sha256 = current", 2),
        ("(state = done or state = failed) and not path ~ '*.txt'", 3),
    ],
)
def test_where_selects_by_each_field_and_operator(
    matter: dict[str, Any], sieve_env: dict[str, str], expression: str, count: int
) -> None:
    assert _selected(sieve_env, matter["job_id"], "--run", "1", "--where", expression) == count


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("state = finished", "expected a state"),
        ("colour = red", "expected a field"),
        ("state = done and", "at position 17"),
        ("size_bytes > big", "expected a number"),
    ],
)
def test_a_bad_where_is_a_usage_error_naming_the_position(
    matter: dict[str, Any], sieve_env: dict[str, str], expression: str, message: str
) -> None:
    refused = run_sieve(["rerun", str(matter["job_id"]), "--where", expression], sieve_env)
    assert refused.returncode == 2
    assert message in refused.stderr
    assert "at position" in refused.stderr


def test_deterministic_reruns_reproduce_the_same_output_hashes(
    matter: dict[str, Any], sieve_env: dict[str, str], database_url: str, db_session: Session
) -> None:
    job_id = matter["job_id"]
    options = ("--run", "1", "--where", "state = done", "--deterministic")
    first = _rerun(sieve_env, job_id, *options)
    wait_for_run(database_url, job_id, timeout=300)
    second = _rerun(sieve_env, job_id, *options)
    wait_for_run(database_url, job_id, timeout=300)
    hashes = {
        run_id: {
            result.item_id: result.output_sha256
            for result in db_session.scalars(select(Result).where(Result.run_id == run_id))
        }
        for run_id in (first, second)
    }
    assert len(hashes[first]) == 2
    assert hashes[first] == hashes[second]
    assert all(hashes[first].values())
    result = db_session.scalars(select(Result).where(Result.run_id == second)).first()
    assert result is not None and result.runtime
    assert {"llama_cpp_python", "ggml_version", "constraint_engine"} <= result.runtime.keys()
    compared = run_sieve(["diff", str(first), str(second)], sieve_env)
    assert compared.returncode == 0, compared.stderr
    assert "unchanged=2 changed=0 only_in_a=0 only_in_b=0" in compared.stderr


def test_a_new_task_version_is_listed_and_its_changes_shown(
    matter: dict[str, Any], sieve_env: dict[str, str], database_url: str
) -> None:
    job_id = matter["job_id"]
    done = ("--run", "1", "--where", "state = done")
    asked = _rerun(sieve_env, job_id, *done, "--task", "prompt", "--prompt", "Who wrote it?")
    wait_for_run(database_url, job_id, timeout=300)
    reworded = _rerun(
        sieve_env,
        job_id,
        *("--where", "state = done", "--task", "prompt", "--prompt", "When was it written?"),
        *("--priority", "high"),
    )
    wait_for_run(database_url, job_id, timeout=300)
    listing = run_sieve(["runs", str(job_id)], sieve_env)
    assert listing.returncode == 0
    lines = {int(line.split("\t")[0]): line for line in listing.stdout.splitlines()}
    assert "task=prompt@v1" in lines[asked]
    assert "task=prompt@v2" in lines[reworded] and "priority=high" in lines[reworded]
    assert "rerun-of=#1" in lines[asked] and "where=" in lines[asked]
    assert "est=" in lines[asked]  # estimated from the first run's measured rates
    # Summaries against answers: every field differs.
    across = run_sieve(["diff", str(matter["run_id"]), str(asked), "--format", "jsonl"], sieve_env)
    rows = [json.loads(line) for line in across.stdout.splitlines()]
    changed = [row for row in rows if row["status"] == "changed"]
    assert len(changed) == 2
    assert all("output.answer" in row["changes"] for row in changed)
    assert {row["status"] for row in rows if row not in changed} == {"only_in_a"}
    versions = run_sieve(["diff", str(asked), str(reworded)], sieve_env)
    assert versions.returncode == 0
    summary = versions.stderr.strip().splitlines()[-1]
    assert summary.startswith("unchanged=") and "only_in_a=0 only_in_b=0" in summary


def test_the_report_accounts_for_every_submitted_path(
    matter: dict[str, Any], sieve_env: dict[str, str]
) -> None:
    report = run_sieve(
        ["report", str(matter["job_id"]), "--run", "1", "--format", "jsonl"], sieve_env
    )
    assert report.returncode == 0, report.stderr
    categories = {
        Path(row["path"]).name: row["category"]
        for row in map(json.loads, report.stdout.splitlines())
    }
    assert categories == {
        "memo-copy.pdf": "processed",  # first in walk order: the item's own path
        "letter.txt": "processed",
        "memo.pdf": "duplicate",
        "corrupt.pdf": "failed",
        "empty.pdf": "failed",
    }
    assert "check: 5 submitted paths = 2 processed + 1 duplicate + 2 failed" in report.stderr
    assert report.stderr.strip().endswith("= 5: ok")


def _letters(folder: Path, count: int, prefix: str) -> Path:
    folder.mkdir()
    for n in range(count):
        (folder / f"{prefix}-{n}.txt").write_text(f"{prefix} {n}: the crates left on day {n}.\n")
    return folder


def test_a_paused_job_waits_while_the_worker_runs_and_finishes_once_unpaused(
    sieve_env: dict[str, str],
    celery_worker: WorkerProcess,
    database_url: str,
    db_session: Session,
    tmp_path: Path,
) -> None:
    job_id = _submit(sieve_env, _letters(tmp_path / "held", 5, "held"), "--task", "summarize")
    assert run_sieve(["pause", str(job_id)], sieve_env).returncode == 0
    run = _run(db_session, job_id, 1)

    def settled() -> dict[str, set[int]] | None:
        db_session.expire_all()
        states = _items_by_state(db_session, run.id)
        return None if states.get("running") or states.get("queued") else states

    held = wait_until(settled, timeout=120, what="the paused job's items to settle")
    time.sleep(4)  # the worker is idle: nothing more of the job may start
    assert _items_by_state(db_session, run.id) == held
    assert len(held.get("pending", ())) >= 3  # at most the items already taken finished
    unpaused = run_sieve(["unpause", str(job_id)], sieve_env)
    assert unpaused.returncode == 0, unpaused.stderr
    wait_for_run(database_url, job_id, timeout=300)
    assert set(_items_by_state(db_session, run.id)) == {ItemState.done.value}
    actions = set(db_session.scalars(select(AuditEvent.action).where(AuditEvent.job_id == job_id)))
    assert {"job.paused", "job.unpaused"} <= actions


def test_a_small_high_priority_job_overtakes_a_big_low_one(
    sieve_env: dict[str, str],
    celery_worker: WorkerProcess,
    database_url: str,
    db_session: Session,
    tmp_path: Path,
) -> None:
    low = _submit(sieve_env, _letters(tmp_path / "archive", 6, "archive"), "--priority", "low")
    high = _submit(sieve_env, _letters(tmp_path / "urgent", 1, "urgent"), "--priority", "high")
    wait_for_run(database_url, high, timeout=300)
    wait_for_run(database_url, low, timeout=600)
    high_done = _run(db_session, high, 1).finished_at
    low_run = _run(db_session, low, 1)
    low_finished = sorted(
        finished
        for finished in db_session.scalars(
            select(ItemRun.finished_at).where(ItemRun.run_id == low_run.id)
        )
    )
    assert high_done is not None and low_run.finished_at is not None
    assert high_done < low_run.finished_at
    # Only what the worker had already taken (one running, one reserved) went before it.
    assert sum(1 for finished in low_finished if finished < high_done) <= 3


def test_a_dry_run_counts_archive_members_and_estimates_from_history(
    sieve_env: dict[str, str], matter: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    pdfgen.make_text_pdf(folder / "two-pages.pdf", pdfgen.MEMO_PAGES[:2])
    (folder / "note.txt").write_text("A short note.\n")
    with zipfile.ZipFile(folder / "mail.zip", "w") as archive:
        archive.writestr("a.txt", "one")
        archive.writestr("b.txt", "two")
        archive.writestr("scans/c.pdf", (folder / "two-pages.pdf").read_bytes())
    fresh = sieve_env | {"SIEVE_DATA_DIR": str(tmp_path / "fresh")}
    fresh.pop("SIEVE_DATABASE_URL")
    assert run_sieve(["db", "upgrade"], fresh).returncode == 0
    first_time = run_sieve(["submit", "--dry-run", str(folder)], fresh)
    assert first_time.returncode == 0, first_time.stderr
    assert first_time.stdout.strip() == "5"
    assert "items: 5" in first_time.stderr and "3 of them inside archives" in first_time.stderr
    assert "pages: 2" in first_time.stderr
    assert "no history yet" in first_time.stderr
    with_history = run_sieve(["submit", "--dry-run", str(folder)], sieve_env)
    assert "estimated duration:" in with_history.stderr
    assert "no history yet for this model" not in with_history.stderr
