"""A corpus of hostile and broken files through a real worker (tests/hostile.py).

Every file must end in its expected state with its expected error code, the
worker must stay up throughout, a normal file queued after the corpus must
still succeed, and nothing in any file name may ever reach a shell.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.models import Item, ItemRun, ItemSource, Run
from jobs import custody
from tests import hostile, pdfgen, services
from tests.integration.harness import (
    WorkerProcess,
    run_sieve,
    running_worker,
    submit_folder,
    wait_for_run,
)

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.slow]


@pytest.fixture(scope="module")
def hostile_env(sieve_env: dict[str, str]) -> dict[str, str]:
    limits = hostile.HOSTILE_LIMITS
    return sieve_env | {
        "SIEVE_WORKER__QUEUE": services.unique_queue_name(),
        "SIEVE_LIMITS__MAX_PDF_PAGES": str(limits.max_pdf_pages),
        "SIEVE_LIMITS__EXTRACT_CPU_S": str(limits.extract_cpu_s),
        "SIEVE_LIMITS__EXTRACT_WALL_S": str(limits.extract_wall_s),
        "SIEVE_LIMITS__EXTRACT_MEMORY_MB": str(limits.extract_memory_mb),
        "SIEVE_LIMITS__CONVERT_BASE_S": str(limits.convert_base_s),
        "SIEVE_LIMITS__CONVERT_PER_MIB_S": str(limits.convert_per_mib_s),
    }


@pytest.fixture(scope="module")
def hostile_worker(
    hostile_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    with running_worker(hostile_env, tmp_path_factory.mktemp("hostile") / "worker.log") as worker:
        yield worker


@pytest.fixture(scope="module")
def corpus_run(
    hostile_env: dict[str, str],
    hostile_worker: WorkerProcess,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("hostile")
    corpus = root / "corpus"
    cases = hostile.build_hostile_corpus(corpus)
    after = root / "after"
    after.mkdir()
    pdfgen.make_text_pdf(after / "ordinary.pdf", pdfgen.MEMO_PAGES[:1], title="Ordinary")

    started = time.monotonic()
    corpus_job = submit_folder(hostile_env, corpus)
    ordinary_job = submit_folder(hostile_env, after)  # queued behind every hostile file
    wait_for_run(database_url, corpus_job, timeout=900)
    wait_for_run(database_url, ordinary_job, timeout=300)
    return {
        "cases": cases,
        "root": root,
        "corpus_job": corpus_job,
        "ordinary_job": ordinary_job,
        "seconds": time.monotonic() - started,
    }


def _outcomes(engine: Engine, job_id: int) -> dict[str, tuple[str, str | None, str | None]]:
    """Submitted path (relative to the corpus) -> (state, error code, message)."""
    with Session(engine) as session:
        rows = session.execute(
            select(ItemSource.path, ItemRun.state, ItemRun.error_code, ItemRun.error_message)
            .join(Item, Item.id == ItemSource.item_id)
            .join(ItemRun, ItemRun.item_id == Item.id)
            .join(Run, Run.id == ItemRun.run_id)
            .where(Run.job_id == job_id)
        ).all()
    return {Path(path).name: (state.value, code, message) for path, state, code, message in rows}


def _case_ids() -> list[str]:
    return list(hostile.CASE_KEYS)


@pytest.mark.parametrize("key", _case_ids())
def test_each_hostile_file_ends_with_its_expected_state_and_code(
    key: str, corpus_run: dict[str, Any], db_engine: Engine
) -> None:
    case = next(case for case in corpus_run["cases"] if case.key == key)
    outcomes = _outcomes(db_engine, corpus_run["corpus_job"])
    name = os.fsencode(case.path.name).decode("utf-8", "backslashreplace")
    assert name in outcomes, f"{name!r} not among {sorted(outcomes)}"
    state, code, message = outcomes[name]
    expected = (case.expected_state, case.expected_codes)
    assert (state, code in case.expected_codes if case.expected_codes else code is None) == (
        case.expected_state,
        True,
    ), f"{case.description}: got {state}/{code} ({message}), expected {expected}"
    if code is not None:
        assert message and len(message) < 2000, "a readable, bounded reason is recorded"


def test_the_worker_survives_and_a_normal_file_after_the_corpus_succeeds(
    corpus_run: dict[str, Any], hostile_worker: WorkerProcess, db_engine: Engine
) -> None:
    assert hostile_worker.process.poll() is None
    assert _outcomes(db_engine, corpus_run["ordinary_job"]) == {
        "ordinary.pdf": ("done", None, None)
    }
    with Session(db_engine) as session:
        assert custody.verify_job(session, corpus_run["corpus_job"]) == []
    log = hostile_worker.log()
    assert log.count("ready: model") == 1, "the worker's child never died (model loaded once)"


def test_no_file_name_ever_reached_a_shell(
    corpus_run: dict[str, Any], hostile_env: dict[str, str]
) -> None:
    # The corpus holds a file named "invoice;touch PWNED;$(touch PWNED2).pdf": a
    # shell given that name would create PWNED or PWNED2 in its working directory.
    searched = [corpus_run["root"], Path(hostile_env["SIEVE_DATA_DIR"])]
    planted = [path for place in searched for path in place.rglob("PWNED*")]
    planted += [
        place / name
        for place in (Path.cwd(), Path("/tmp"), Path.home())
        for name in ("PWNED", "PWNED2")
        if (place / name).exists()
    ]
    assert planted == []


def test_status_groups_the_failures_by_code(
    corpus_run: dict[str, Any], hostile_env: dict[str, str]
) -> None:
    status = run_sieve(["status", str(corpus_run["corpus_job"])], hostile_env)
    assert status.returncode == 1  # finished, with failures
    for code in ("encrypted", "limit_exceeded", "unsafe_archive", "timeout", "empty_file"):
        assert code in status.stdout
    results = run_sieve(
        ["results", str(corpus_run["corpus_job"]), "--format", "jsonl"], hostile_env
    )
    rows = [json.loads(line) for line in results.stdout.splitlines()]
    submitted = [row for row in rows if " › " not in row["path"]]
    assert len(submitted) == len(corpus_run["cases"])
    # The one file found inside another: the invoice beside the ../ member. The corpus holds
    # the same invoice loose, so the ZIP's copy is a duplicate path of that item.
    (found,) = [row for row in rows if " › " in row["path"]]
    assert found["path"].endswith("zip-partly-hostile.zip › invoices/INV-2024-0412.pdf")
    assert found["duplicate"] is True and found["state"] == "done"


def test_the_report_accounts_for_every_hostile_path_exactly_once(
    corpus_run: dict[str, Any], hostile_env: dict[str, str]
) -> None:
    job = str(corpus_run["corpus_job"])
    report = run_sieve(["report", job, "--format", "jsonl"], hostile_env)
    assert report.returncode == 0, report.stderr
    rows = [json.loads(line) for line in report.stdout.splitlines()]
    submitted = [row for row in rows if row["found_in_item_id"] is None]
    found = [row for row in rows if row["found_in_item_id"] is not None]
    # Found inside items: the invoice of the partly hostile ZIP (a duplicate of the loose
    # copy), and every member an archive refused (never an item), named under its archive.
    (invoice,) = [row for row in found if row["category"] == "duplicate"]
    assert invoice["path"].endswith("zip-partly-hostile.zip › invoices/INV-2024-0412.pdf")
    refused = [row for row in found if row is not invoice]
    assert refused and all(row["category"].startswith("refused in archive ") for row in refused)
    assert any(row["path"].endswith("!../sieve-pwned-partly.txt") for row in refused)
    assert len(submitted) == len(corpus_run["cases"])
    assert len({row["path"] for row in submitted}) == len(submitted)
    results = run_sieve(["results", job, "--format", "jsonl"], hostile_env)
    by_path = {row["path"]: row for row in map(json.loads, results.stdout.splitlines())}
    for row in submitted:
        result = by_path[row["path"]]
        expected = "duplicate" if result["duplicate"] else result["state"]
        assert row["category"] == {"done": "processed"}.get(expected, expected), row
    check, found_check = report.stderr.strip().splitlines()[-2:]
    assert check.startswith(f"check: {len(submitted)} submitted paths = ")
    assert check.endswith(f"= {len(submitted)}: ok")
    assert found_check == "check: 1 found paths = 1 duplicate: ok"
    assert "by error code:" in report.stderr
    table = run_sieve(["report", job, "--format", "csv"], hostile_env)
    assert table.returncode == 0
    assert (
        table.stdout.splitlines()[0] == "path,category,item_id,error_code,detail,found_in_item_id"
    )
