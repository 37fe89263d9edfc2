"""The ``sieve`` command line as a user runs it: embedded mode, no servers."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from db import migrate
from tests import pdfgen

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"

pytestmark = pytest.mark.model

SIEVE = str(Path(sys.executable).parent / "sieve")


def sieve(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIEVE_")}
    env.update(
        {
            "SIEVE_DATA_DIR": str(data_dir),
            "SIEVE_MODEL__N_CTX": "2048",
            "SIEVE_MODEL__MAX_TEXT_CHARS": "80",
            "SIEVE_MODEL__MAX_OUTPUT_TOKENS": "160",
        }
    )
    return subprocess.run(
        [SIEVE, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture
def good_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "good"
    folder.mkdir()
    pdfgen.make_text_pdf(folder / "invoice.pdf", [pdfgen.INVOICE_PAGE], title="Invoice")
    return folder


def test_run_on_good_files_exits_zero_and_prints_a_table(good_folder: Path, tmp_path: Path) -> None:
    done = sieve(["run", str(good_folder), "--task", "summarize"], tmp_path / "data")
    assert done.returncode == 0, done.stderr
    assert "invoice.pdf" in done.stdout and "done" in done.stdout
    assert (tmp_path / "data" / "sieve.db").is_file()
    # Once, saying the answers come from the small test model and how to change it.
    assert done.stderr.count("bundled Gemma 3 270M test model") == 1
    assert "SIEVE_MODEL__PATH" in done.stderr


def test_run_with_a_bad_file_exits_one_and_results_export_every_row(
    good_folder: Path, tmp_path: Path
) -> None:
    pdfgen.make_corrupt_pdf(good_folder / "broken.pdf")
    data = tmp_path / "data"
    done = sieve(["run", str(good_folder), "--format", "jsonl"], data)
    assert done.returncode == 1, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert {Path(r["path"]).name: r["state"] for r in rows} == {
        "broken.pdf": "failed",
        "invoice.pdf": "done",
    }
    exported = sieve(["results", "--format", "csv"], data)  # no JOB: the latest
    assert exported.returncode == 1
    records = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [r["error_code"] for r in records] == ["corrupt_file", ""]
    assert json.loads(records[1]["result"])["summary"]
    listed = sieve(["jobs"], data)
    assert listed.returncode == 0 and "1:completed" in listed.stdout


def test_classify_answers_with_one_of_the_given_labels(good_folder: Path, tmp_path: Path) -> None:
    done = sieve(
        [
            "run",
            str(good_folder),
            "--task",
            "classify",
            "--labels",
            "invoice,contract,letter",
            "--format",
            "jsonl",
        ],
        tmp_path / "data",
    )
    assert done.returncode == 0, done.stderr
    [row] = [json.loads(line) for line in done.stdout.splitlines()]
    assert row["result"]["label"] in {"invoice", "contract", "letter"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "{folder}", "--task", "translate"], "unknown task"),
        (["run", "{folder}", "--task", "classify", "--labels", "only-one"], "two distinct"),
        (["run", "{folder}", "--task", "extract"], "--schema"),
        (["run", "/no/such/folder"], "does not exist"),
        (["status", "42"], "no job with id 42"),
        (["worker", "--sequences", "2", "--concurrency", "2"], "one model process"),
        (["worker", "--sequences", "0"], "--sequences"),
    ],
)
def test_usage_errors_exit_two_with_a_clear_message(
    args: list[str], message: str, good_folder: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    sieve(["db", "upgrade"], data)
    failed = sieve([a.replace("{folder}", str(good_folder)) for a in args], data)
    assert failed.returncode == 2
    assert message in failed.stderr + failed.stdout


def test_db_upgrade_and_current_report_the_newest_revision(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert sieve(["db", "current"], data).stdout.strip() == "empty"
    assert sieve(["db", "upgrade"], data).returncode == 0
    newest = migrate.head_revision()
    assert newest == sorted(p.name[:4] for p in MIGRATIONS.glob("0*.py"))[-1]
    assert sieve(["db", "current"], data).stdout.strip() == newest


def test_a_worker_with_more_processes_than_memory_holds_refuses_to_start(tmp_path: Path) -> None:
    """The plan is made from the GGUF header before any process loads the model."""
    import psutil

    from worker import capacity
    from worker.config import ModelSettings
    from worker.model import bundled_model_path

    one = capacity.model_footprint(bundled_model_path(), ModelSettings(n_ctx=2048)).total
    too_many = psutil.virtual_memory().available // one + 2
    refused = sieve(["worker", "--concurrency", str(too_many)], tmp_path / "data")
    assert refused.returncode == 2, refused.stderr
    assert f"{too_many} model process(es) need" in refused.stderr
    assert "fit at n_ctx=2048" in refused.stderr


def test_an_embedded_rerun_runs_in_process_and_is_listed_diffed_and_reported(
    good_folder: Path, tmp_path: Path
) -> None:
    """On the embedded default a re-run needs no broker: it runs in the command itself."""
    from worker.model import bundled_model_path

    data = tmp_path / "data"
    pdfgen.make_corrupt_pdf(good_folder / "broken.pdf")
    first = sieve(["run", str(good_folder), "--task", "summarize"], data)
    assert first.returncode == 1  # one item failed
    again = sieve(["rerun", "1", "--failed-only"], data)
    assert again.returncode == 1, again.stderr  # completed here, and the item failed again
    assert "1 of 2 item(s) selected from run 1" in again.stderr
    assert "0 of 1 item(s) done" in again.stderr  # still broken, and processed here
    model = str(bundled_model_path())
    options = ["--run", "1", "--where", "state = done", "--model", model, "--deterministic"]
    first_id = int(sieve(["rerun", "1", *options], data).stdout.split()[-1])
    second_id = int(sieve(["rerun", "1", *options], data).stdout.split()[-1])
    listing = sieve(["runs", "1"], data).stdout.splitlines()
    assert [line.split("\t")[0] for line in listing] == ["1", "2", str(first_id), str(second_id)]
    assert "deterministic" in listing[-1] and "rerun-of=#1" in listing[-1]
    compared = sieve(["diff", str(first_id), str(second_id)], data)
    assert "unchanged=1 changed=0" in compared.stderr
    report = sieve(["report", "1"], data)
    assert report.returncode == 0 and report.stderr.strip().endswith("= 2: ok")


def test_run_reviews_a_dicom_archive_by_study_series_or_instance(tmp_path: Path) -> None:
    """``--unit`` on ``sieve run``: the same archive makes one, two or every-file items."""
    from tests import dicomgen

    archive = tmp_path / "archive"
    study = dicomgen.new_study()
    dicomgen.write_ct_series(archive / "ct", study, slices=4, localizer=False, duplicate=False)
    dicomgen.write_mr_series(archive / "mr", study, slices=3)
    files = sorted(path for path in archive.rglob("*.dcm"))
    items_by_unit = {}
    for unit in ("study", "series", "instance"):
        data = tmp_path / f"data-{unit}"
        done = sieve(["run", str(archive), "--task", "summarize", "--unit", unit], data)
        assert done.returncode in (0, 1), done.stderr  # exit 1: some item did not end done
        assert f"DICOM: {len(files)} instances indexed" in done.stdout + done.stderr
        report = sieve(["report", "1", "--format", "csv"], data)
        rows = list(csv.DictReader(io.StringIO(report.stdout)))
        # Every instance file accounted for once, whatever the unit made of it.
        assert sorted(row["path"] for row in rows) == [str(path) for path in files]
        assert report.stderr.strip().endswith(f"= {len(files)}: ok")
        items_by_unit[unit] = len({row["item_id"] for row in rows})
    assert items_by_unit == {"study": 1, "series": 2, "instance": len(files)}
