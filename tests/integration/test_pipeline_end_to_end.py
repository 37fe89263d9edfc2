"""A folder of PDFs through the real system: sieve submit → Redis → a Celery
worker subprocess running the real GGUF → Postgres, then status and results.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import audit
from db.models import AuditEvent, Item, ItemRun, Result, Run
from tests import contract, pdfgen
from tests.integration.harness import WorkerProcess, run_sieve, submit_folder, wait_for_run
from worker.model import bundled_model_path
from worker.task_specs import build_task

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.slow]

LONG_PAGES = 60


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def discovery_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The inputs the issue names: text pages, a scan, a long document, bad files, a duplicate."""
    root = tmp_path_factory.mktemp("discovery-set")
    pdfgen.make_text_pdf(
        root / "memo.pdf",
        pdfgen.MEMO_PAGES,
        title="Acme memo",
        author="J. Smith",
    )
    pdfgen.make_mixed_pdf(root / "mixed.pdf")
    pdfgen.make_image_only_pdf(root / "scan.pdf")
    pdfgen.make_long_pdf(root / "annual-report.pdf", page_count=LONG_PAGES)
    pdfgen.make_corrupt_pdf(root / "corrupt.pdf")
    pdfgen.make_encrypted_pdf(root / "locked.pdf")
    (root / "empty.pdf").write_bytes(b"")
    (root / "photo.bin").write_bytes(bytes(range(256)) * 16)
    (root / "copies").mkdir()
    shutil.copy(root / "memo.pdf", root / "copies" / "memo-copy.pdf")
    return root


@pytest.fixture(scope="module")
def completed_job(
    discovery_set: Path, sieve_env: dict[str, str], celery_worker: WorkerProcess, database_url: str
) -> dict[str, Any]:
    """Submit the set through the CLI and wait until the worker has finished it."""
    job_id = submit_folder(sieve_env, discovery_set, "--name", "Matter 123 vol 1")
    run = wait_for_run(database_url, job_id, timeout=900)
    results = run_sieve(["results", str(job_id), "--format", "jsonl"], sieve_env)
    rows = [json.loads(line) for line in results.stdout.splitlines() if line.strip()]
    return {
        "job_id": job_id,
        "run": run,
        "rows": {Path(r["path"]).name: r for r in rows},
        "results_exit": results.returncode,
    }


def test_every_input_file_gets_one_row_with_the_expected_state(
    completed_job: dict[str, Any],
) -> None:
    rows = completed_job["rows"]
    expected = {
        "memo.pdf": ("done", None),
        "memo-copy.pdf": ("done", None),
        "mixed.pdf": ("done", None),
        "annual-report.pdf": ("done", None),
        "scan.pdf": ("done", None),
        "corrupt.pdf": ("failed", "corrupt_file"),
        "locked.pdf": ("failed", "encrypted"),
        "empty.pdf": ("failed", "empty_file"),
        "photo.bin": ("unsupported", "unsupported_type"),
    }
    actual = {name: (row["state"], row["error_code"]) for name, row in rows.items()}
    assert actual == expected
    for name, row in rows.items():
        for key in contract.JSONL_ROW_FIELDS:
            assert key in row, f"{name} lacks {key}"
        if row["state"] == "done":
            assert row["error_message"] is None
        else:
            assert row["error_message"], f"{name} failed without a message"
    # Some items failed, so `sieve results` exits 1 (the run itself completed).
    assert completed_job["results_exit"] == 1


def test_the_duplicate_is_processed_once_and_reported_under_both_paths(
    completed_job: dict[str, Any], db_session: Session
) -> None:
    rows = completed_job["rows"]
    original, copy = rows["memo.pdf"], rows["memo-copy.pdf"]
    assert original["item_id"] == copy["item_id"]
    assert original["sha256"] == copy["sha256"]
    assert copy["duplicate"] is True and original["duplicate"] is False
    assert copy["result"] == original["result"]
    session = db_session
    results = session.scalars(select(Result).where(Result.item_id == original["item_id"])).all()
    assert len(results) == 1


def test_results_are_schema_valid_json_with_full_provenance(
    completed_job: dict[str, Any], discovery_set: Path, db_session: Session
) -> None:
    task = build_task("summarize", {}, 100)
    model_sha256 = _sha256(bundled_model_path())
    session = db_session
    run = session.get(Run, completed_job["run"].id)
    assert run is not None and run.prompt_hash == task.prompt_hash
    results = session.scalars(select(Result).where(Result.run_id == run.id)).all()
    assert len(results) == 4  # memo (one result for it and its copy), mixed, scan, annual report
    for result in results:
        item = session.get(Item, result.item_id)
        assert item is not None
        jsonschema.validate(result.output, task.schema)
        assert result.input_sha256 == item.sha256 == _sha256(Path(item.path))
        assert result.model_sha256 == model_sha256
        assert result.model_name == "gemma-3-270m-q4_k_m.gguf"
        assert result.task_name == "summarize" and result.task_version == task.version
        assert result.prompt_hash == task.prompt_hash
        assert result.sampling["n_ctx"] == 2048 and result.seed == 1234
        assert result.prompt_tokens > 0 and result.completion_tokens > 0
        assert result.timings["analyse_seconds"] > 0
        assert result.extractor == "pdf/1"
        assert re.fullmatch(r"worker@.+:\d+", result.produced_by)


def test_a_document_longer_than_the_context_is_mapped_and_reduced_citing_pages(
    completed_job: dict[str, Any],
) -> None:
    row = completed_job["rows"]["annual-report.pdf"]
    assert row["page_count"] == LONG_PAGES
    assert row["citations"] == [f"page {n}" for n in range(1, LONG_PAGES + 1)]
    partials = row["partials"]
    assert len(partials) >= 3, "60 pages in a 2048-token context need several windows"
    covered = [label for partial in partials for label in partial["cites"]]
    assert covered == row["citations"], "windows cover every page once, in order"
    for partial in partials:
        assert partial["span"].startswith("page ")
        assert set(partial["output"]) == {"summary", "key_points"}
    assert row["provenance"]["model_calls"] > len(partials)  # map calls plus reduce


def test_pages_without_text_are_rendered_read_by_ocr_and_the_result_says_so(
    completed_job: dict[str, Any], db_session: Session, sieve_env: dict[str, str]
) -> None:
    rows = completed_job["rows"]
    scan_inputs = rows["scan.pdf"]["provenance"]["inputs"]
    assert scan_inputs["modalities"] == ["text"] and scan_inputs["pictures_available"] == 1
    assert "cannot see" in scan_inputs["note"]
    scan_segment = db_session.get(Item, rows["scan.pdf"]["item_id"]).segments[0]  # type: ignore[union-attr]
    assert "SCANNED PAGE" in scan_segment.text and scan_segment.attributes["ocr"]["engine"]
    mixed = rows["mixed.pdf"]
    assert mixed["citations"] == ["page 1", "page 2", "page 3"]  # page 3 through OCR
    session = db_session
    item = session.get(Item, mixed["item_id"])
    assert item is not None
    segments = {segment.index: segment for segment in item.segments}
    assert not segments[0].needs_ocr and segments[2].needs_ocr
    artifact = Path(sieve_env["SIEVE_DATA_DIR"]) / "artifacts" / segments[2].artifact_path
    assert artifact.read_bytes().startswith(b"\x89PNG")
    assert item.doc_metadata is not None and item.doc_metadata["page_count"] == 3


def test_every_state_change_and_result_is_in_an_intact_audit_chain(
    completed_job: dict[str, Any], db_session: Session
) -> None:
    job_id = completed_job["job_id"]
    session = db_session
    assert audit.verify_chain(session, audit.chain_name(job_id)) is None
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.job_id == job_id).order_by(AuditEvent.seq)
    ).all()
    actions = [event.action for event in events]
    assert actions[:2] == ["job.created", "run.created"]
    assert actions[-1] == "run.completed"
    assert actions.count("item.ingested") == 9  # every path, duplicates included
    assert actions.count("result.stored") == 4
    item_runs = session.scalars(
        select(ItemRun).where(ItemRun.run_id == completed_job["run"].id)
    ).all()
    for item_run in item_runs:
        transitions = [
            (event.details["from"], event.details["to"])
            for event in events
            if event.action == "item.state" and event.item_id == item_run.item_id
        ]
        # Publishing comes before marking queued (a message must never precede
        # its row), so a fast worker may claim an item while it is still pending.
        assert transitions[:2] in (
            [("pending", "queued"), ("queued", "running")],
            [("pending", "running"), ("running", item_run.state.value)],
        ), transitions
        assert all(after[0] == before[1] for before, after in itertools.pairwise(transitions))
        assert transitions[-1] == ("running", item_run.state.value)
        assert item_run.attempts == 1
    submitted_by = events[0].actor
    assert all(e.actor == submitted_by for e in events if e.action == "item.ingested")
    assert all(e.actor.startswith("worker@") for e in events if e.action == "result.stored")


def test_the_worker_loaded_the_model_once_and_survived(
    completed_job: dict[str, Any], celery_worker: WorkerProcess
) -> None:
    assert celery_worker.process.poll() is None, "the worker must survive bad input"
    log = celery_worker.log()
    assert log.count("loaded model") == 1, log[-3000:]


def test_status_shows_counts_and_failures_grouped_by_code(
    completed_job: dict[str, Any], sieve_env: dict[str, str]
) -> None:
    shown = run_sieve(["status", str(completed_job["job_id"])], sieve_env)
    assert shown.returncode == 1  # finished, with failures
    for text in (
        "done: 4",
        "failed: 3",
        "unsupported: 1",
        "corrupt_file",
        "encrypted",
        "empty_file",
        "unsupported_type",
        "Matter 123 vol 1",
    ):
        assert text in shown.stdout, shown.stdout


def test_results_export_as_csv(
    completed_job: dict[str, Any], sieve_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "results.csv"
    exported = run_sieve(
        ["results", str(completed_job["job_id"]), "--format", "csv", "--output", str(out)],
        sieve_env,
    )
    assert exported.returncode == 1
    import csv

    with out.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    assert len(records) == 9
    done = [r for r in records if r["state"] == "done"]
    assert all(json.loads(r["result"])["summary"] for r in done)
