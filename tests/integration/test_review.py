"""Review, then produce: real worker, PostgreSQL, Redis and the real model, with grounding.

A privilege review of a small set (a counsel's letter, a memo, an e-mail),
then a responsiveness re-run against a case file given with ``--case``:
every stored answer validates against its task's schema, and every quote's
verdict is re-derived here, independently, from the segments stored for the
item (the bundled model is a base model: what it quotes is whatever it
quotes; what is under test is that each verdict is right and counted). The
job is then produced with what the privilege run found privileged withheld,
and the production is checked by ``sieve production check`` and parsed by
the unit layer's byte-level DAT parser; a text file removed by hand is caught.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.models import Result, StoredSegment
from tests import mailgen, pdfgen
from tests.integration.harness import WorkerProcess, run_sieve, submit_folder, wait_for_run
from tests.unit.test_production import parse_dat
from worker.task_specs import build_task

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.slow]

COUNSEL_LETTER = (
    "PRIVILEGED AND CONFIDENTIAL - LEGAL ADVICE\n\n"
    "Hartley & Moss LLP, 4 March 2024\n\n"
    "Dear Ms Okafor,\n\n"
    "You asked whether the indemnity in clause 12 of the Halvorsen supply agreement can be "
    "enforced. In our view it cannot, because it was never incorporated into the signed "
    "terms. We recommend that you do not rely on it in negotiations.\n\n"
    "Yours sincerely,\nDaniel Moss, Partner"
)
CASE = (
    "Brightwater Foods v Halvorsen Packaging. Request 1: documents about the supply "
    "agreement and its indemnity. Request 2: documents about deliveries and loading docks."
)


def _independent_verdict(quote: str, page_text: str | None) -> bool:
    """Whether ``quote`` is on the page, by this test's own plain comparison."""
    if page_text is None:
        return False

    def flat(text: str) -> str:
        return " ".join(text.casefold().split())

    return flat(quote).rstrip(" .…") in flat(page_text)


def _check_run(db_engine: Engine, run_id: int, task_name: str, options: dict[str, Any]) -> int:
    """Validate every answer of the run and re-derive its quote verdicts; the quotes seen."""
    task = build_task(task_name, options, 100)
    quotes = 0
    with Session(db_engine) as session:
        stored = session.scalars(select(Result).where(Result.run_id == run_id)).all()
        assert stored, "the run stored no results"
        for result in stored:
            task.validate(result.output)
            pages = {
                segment.label: segment.text
                for segment in session.scalars(
                    select(StoredSegment).where(StoredSegment.item_id == result.item_id)
                )
            }
            given = [
                (c["page"], c["quote"])
                for c in result.output.get("citations", result.output.get("findings", []))
            ]
            if not given:
                assert result.grounding is None
                continue
            verdict = result.grounding
            assert verdict is not None and verdict["quotes"] == len(given)
            assert verdict["verified"] + verdict["unverified"] == len(given)
            for (page, quote), check in zip(given, verdict["checks"], strict=True):
                assert (check["page"], check["quote"]) == (page, quote)
                if check["verified"]:
                    assert _independent_verdict(quote, pages.get(check["found_on"]))
                else:
                    assert not _independent_verdict(quote, pages.get(page))
            quotes += len(given)
    return quotes


def test_privilege_then_responsiveness_answers_validate_and_every_quote_is_checked(
    tmp_path: Path,
    sieve_env: dict[str, str],
    celery_worker: WorkerProcess,
    database_url: str,
    db_engine: Engine,
) -> None:
    folder = tmp_path / "review-set"
    folder.mkdir()
    pdfgen.make_text_pdf(folder / "counsel-letter.pdf", [COUNSEL_LETTER])
    pdfgen.make_text_pdf(folder / "dock-memo.pdf", pdfgen.MEMO_PAGES[:1])
    mailgen.write_eml(folder / "lunch.eml", mailgen.lunch_message())
    case_file = tmp_path / "case.txt"
    case_file.write_text(CASE)

    job_id = submit_folder(sieve_env, folder, "--task", "privilege")
    first = wait_for_run(database_url, job_id, timeout=600)
    assert celery_worker.process.poll() is None
    first_quotes = _check_run(db_engine, first.id, "privilege", {})

    made = run_sieve(
        ["rerun", str(job_id), "--task", "responsiveness", "--case", str(case_file)], sieve_env
    )
    assert made.returncode == 0, made.stderr
    second = wait_for_run(database_url, job_id, timeout=600)
    assert second.number == 2 and second.task_name == "responsiveness"
    second_quotes = _check_run(db_engine, second.id, "responsiveness", {"case": CASE})

    shown = run_sieve(["results", str(job_id), "--format", "jsonl"], sieve_env)
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    assert len(rows) == 3 and all(
        row["provenance"]["task_name"] == "responsiveness" for row in rows
    )
    assert sum(row["quotes"] or 0 for row in rows) == second_quotes
    report = run_sieve(["report", str(job_id), "--run", "1"], sieve_env)
    assert report.returncode == 0, report.stderr
    if first_quotes:
        assert f"quotes: {first_quotes} checked against their cited pages" in report.stderr
    # A production of the review, what run 1 found privileged withheld, checked twice over.
    out = tmp_path / "production"
    exported = run_sieve(
        [
            "export",
            str(job_id),
            "--bates-prefix",
            "BFH",
            "--digits",
            "6",
            "--withhold-privileged",
            "--review-fields",
            "responsive,request",
            "--out",
            str(out),
        ],
        sieve_env,
    )
    assert exported.returncode == 0, exported.stderr
    checked = run_sieve(["production", "check", str(out)], sieve_env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "3 documents" in checked.stderr and ": ok" in checked.stderr
    documents = parse_dat(out / "VOL001" / "DATA" / "VOL001.dat")
    with Session(db_engine) as session:
        privileged = {
            result.item_id
            for result in session.scalars(select(Result).where(Result.run_id == first.id))
            if result.output["privileged"]
        }
    withheld = {row["path"] for row in rows if row["item_id"] in privileged}
    assert {d["FILE_PATH"] for d in documents if d["WITHHELD"] == "Y"} == withheld
    assert documents[0]["BEGBATES"] == "BFH000001"
    assert all(d["REVIEW_RESPONSIVE"] in ("yes", "no", "partly") for d in documents)
    # The privilege log: exactly the withheld documents, by their Bates numbers.
    log_path = tmp_path / "privilege-log.csv"
    logged = run_sieve(
        [
            "export",
            str(job_id),
            "--format",
            "privilege-log",
            "--production",
            str(out),
            "--output",
            str(log_path),
        ],
        sieve_env,
    )
    assert logged.returncode == 0, logged.stderr
    with log_path.open(encoding="utf-8", newline="") as handle:
        log = list(csv.DictReader(handle))
    assert {row["CONTROL_NUMBER"] for row in log} == {
        d["BEGBATES"] for d in documents if d["WITHHELD"] == "Y"
    }
    if privileged:
        chosen = min(privileged)
        confirmed = run_sieve(["review", "confirm", str(job_id), str(chosen)], sieve_env)
        assert confirmed.returncode == 0, confirmed.stderr
        only = tmp_path / "confirmed.xlsx"
        run_sieve(
            [
                "export",
                str(job_id),
                "--format",
                "privilege-log",
                "--confirmed-only",
                "--output",
                str(only),
            ],
            sieve_env,
        )
        sheet = openpyxl.load_workbook(only).active
        assert sheet.max_row == 2 and sheet["A2"].value == f"SIEVE-{chosen:08d}"

    broken = out / "VOL001" / "TEXT" / "0001" / f"{documents[-1]['BEGBATES']}.txt"
    broken.unlink()
    caught = run_sieve(["production", "check", str(out)], sieve_env)
    assert caught.returncode == 1 and "is not there" in caught.stdout

    bad_case = run_sieve(
        ["submit", str(folder), "--task", "privilege", "--case", str(case_file)], sieve_env
    )
    assert bad_case.returncode == 2 and "--case goes with --task responsiveness" in bad_case.stderr
