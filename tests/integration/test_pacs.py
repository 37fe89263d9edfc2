"""Results back into a real PACS: SR objects over STOW-RS and C-STORE into a real Orthanc.

A generated study is stored in one Orthanc (the hospital's archive), pulled
from it over QIDO-RS/WADO-RS with ``sieve pacs pull``, and submitted by series
to the real system (PostgreSQL, Redis, a Celery worker, the real model). ``sieve export --format dicom-sr --send`` then writes a
Comprehensive SR per series and sends it to Orthanc over DICOMweb STOW-RS and
to a second Orthanc over DIMSE C-STORE. The test reads each SR back from the
Orthanc that received it and checks what it references against the images
the model was shown and the instances the PACS holds. A destination that
does not answer is reported NOT SENT, audited, and nothing is marked sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import AuditEvent, Item, Result
from tests import dicomgen, orthanc, services
from tests.integration.harness import (
    WorkerProcess,
    run_sieve,
    running_worker,
    submit_folder,
    wait_for_run,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.model,
    pytest.mark.slow,
    pytest.mark.skipif(not orthanc.available(), reason="orthanc (scripts/setup installs it)"),
]


@pytest.fixture(scope="module")
def archive_pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[orthanc.Orthanc]:
    with orthanc.running_orthanc(tmp_path_factory.mktemp("pacs-archive")) as server:
        yield server


@pytest.fixture(scope="module")
def dimse_pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[orthanc.Orthanc]:
    with orthanc.running_orthanc(tmp_path_factory.mktemp("pacs-dimse")) as server:
        yield server


@pytest.fixture(scope="module")
def stored_study(
    tmp_path_factory: pytest.TempPathFactory, archive_pacs: orthanc.Orthanc
) -> tuple[str, list[Path]]:
    """A study written locally and stored in the archive PACS; the local copy is then unused."""
    root = tmp_path_factory.mktemp("study")
    study = dicomgen.new_study()
    written = dicomgen.write_ct_series(root / "ct", study, slices=8).paths
    written += dicomgen.write_mr_series(root / "mr", study, slices=4).paths
    for path in written:
        assert archive_pacs.upload(path.read_bytes())["Status"] == "Success"
    return study.study_instance_uid, written


@pytest.fixture(scope="module")
def study_folder(
    tmp_path_factory: pytest.TempPathFactory,
    stored_study: tuple[str, list[Path]],
    pacs_env: dict[str, str],
) -> Path:
    """The study as Sieve pulled it from the archive PACS."""
    study_uid, written = stored_study
    out = tmp_path_factory.mktemp("pulled")
    pulled = run_sieve(["pacs", "pull", "archive", study_uid, "--out", str(out)], pacs_env)
    assert pulled.returncode == 0, pulled.stderr
    files = sorted(out.rglob("*.dcm"))
    assert len(files) == len(written)
    originals = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in written}
    for path in files:
        copy = pydicom.dcmread(path)
        original = pydicom.dcmread(originals[str(copy.SOPInstanceUID)])
        assert copy.pixel_array.tobytes() == original.pixel_array.tobytes()
    return out


@pytest.fixture(scope="module")
def pacs_env(
    sieve_env: dict[str, str], archive_pacs: orthanc.Orthanc, dimse_pacs: orthanc.Orthanc
) -> dict[str, str]:
    destinations = {
        "archive": {"protocol": "stow-rs", "url": archive_pacs.dicomweb_url},
        "modality": {
            "protocol": "c-store",
            "host": "127.0.0.1",
            "port": dimse_pacs.dicom_port,
            "called_ae": orthanc.AE_TITLE,
        },
        "nowhere": {
            "protocol": "c-store",
            "host": "127.0.0.1",
            "port": 9,  # discard: nothing listens
            "attempts": 2,
            "timeout_s": 2,
        },
    }
    return sieve_env | {
        "SIEVE_WORKER__QUEUE": services.unique_queue_name(),
        "SIEVE_PACS__DESTINATIONS": json.dumps(destinations),
    }


@pytest.fixture(scope="module")
def reviewed_job(
    study_folder: Path,
    pacs_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    database_url: str,
) -> int:
    worker_log = tmp_path_factory.mktemp("pacs-worker") / "worker.log"
    worker: WorkerProcess
    with running_worker(pacs_env, worker_log) as worker:
        job_id = submit_folder(pacs_env, study_folder)
        run = wait_for_run(database_url, job_id, timeout=600)
        assert run.state.value == "completed", worker.log()[-3000:]
    return job_id


def _shown_by_series(session: Session, job_id: int) -> dict[str, set[str]]:
    rows = session.execute(
        select(Item, Result).join(Result, Result.item_id == Item.id).where(Item.job_id == job_id)
    )
    return {
        item.doc_metadata["series"][0]["series_instance_uid"]: {
            entry["sop_instance_uid"] for entry in result.inputs["dicom_images_shown"]
        }
        for item, result in rows.tuples()
    }


def _image_references(report: pydicom.Dataset) -> set[str]:
    found: set[str] = set()

    def walk(dataset: pydicom.Dataset) -> None:
        for item in dataset.get("ContentSequence", []):
            if item.ValueType == "IMAGE":
                found.add(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
            walk(item)

    walk(report)
    return found


def _reports_in(server: orthanc.Orthanc) -> list[pydicom.Dataset]:
    import io

    found = server.get("/instances")
    reports = []
    for identifier in found:
        tags = server.get(f"/instances/{identifier}/simplified-tags")
        if tags.get("Modality") == "SR":
            data = server.get_bytes(f"/instances/{identifier}/file")
            reports.append(pydicom.dcmread(io.BytesIO(data)))
    return reports


def test_reports_go_to_pacs_over_stow_rs_and_c_store_and_read_back_with_their_references(
    reviewed_job: int,
    pacs_env: dict[str, str],
    archive_pacs: orthanc.Orthanc,
    dimse_pacs: orthanc.Orthanc,
    db_session: Session,
    tmp_path: Path,
) -> None:
    exported = run_sieve(
        [
            *("export", str(reviewed_job), "--format", "dicom-sr", "--out", str(tmp_path / "sr")),
            *("--send", "archive", "--send", "modality"),
        ],
        pacs_env,
    )
    assert exported.returncode == 0, exported.stderr
    lines = [line.split("\t") for line in exported.stdout.splitlines() if "\t" in line]
    assert len(lines) == 4 and all(line[2] == "sent" for line in lines)

    shown = _shown_by_series(db_session, reviewed_job)
    held = set(archive_pacs.get("/instances"))
    for server in (archive_pacs, dimse_pacs):
        reports = _reports_in(server)
        assert len(reports) == 2
        for report in reports:
            referenced = _image_references(report)
            series_uid = next(s for s, uids in shown.items() if uids == referenced)
            assert referenced == shown[series_uid]
            assert report.PatientID == dicomgen.PATIENT["PatientID"]
    # Every referenced image is an instance the archive PACS holds (besides the SRs).
    archive_uids = {
        archive_pacs.get(f"/instances/{i}/simplified-tags")["SOPInstanceUID"] for i in held
    }
    assert set().union(*shown.values()) <= archive_uids
    # The DICOMweb side finds the SR series in the study (QIDO-RS).
    study_uid = str(_reports_in(archive_pacs)[0].StudyInstanceUID)
    series = archive_pacs.get(f"/dicom-web/studies/{study_uid}/series?Modality=SR")
    assert len(series) == 1

    events = db_session.scalars(
        select(AuditEvent).where(
            AuditEvent.job_id == reviewed_job, AuditEvent.action == "dicom.sent"
        )
    ).all()
    assert {(e.details["destination"], e.details["protocol"]) for e in events} == {
        ("archive", "stow-rs"),
        ("modality", "c-store"),
    }
    assert len(events) == 4
    pulled = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "pacs.pulled")).all()
    assert len(pulled) == 1 and pulled[0].details["instances"] == 14  # 8 + scout + copy + 4 MR
    assert "Okonkwo" not in json.dumps(pulled[0].details)


def test_a_destination_that_does_not_answer_is_reported_and_nothing_marked_sent(
    reviewed_job: int, pacs_env: dict[str, str], db_session: Session, tmp_path: Path
) -> None:
    exported = run_sieve(
        [
            *("export", str(reviewed_job), "--format", "dicom-sr", "--out", str(tmp_path / "sr")),
            *("--send", "nowhere"),
        ],
        pacs_env,
    )

    assert exported.returncode == 1
    lines = [line.split("\t") for line in exported.stdout.splitlines() if "\t" in line]
    assert len(lines) == 2 and all(line[2] == "NOT SENT" for line in lines)
    failures: list[Any] = db_session.scalars(
        select(AuditEvent).where(
            AuditEvent.job_id == reviewed_job, AuditEvent.action == "dicom.send_failed"
        )
    ).all()
    assert len(failures) == 2 and all(f.details["attempts"] == 2 for f in failures)
    assert not db_session.scalars(
        select(AuditEvent).where(
            AuditEvent.job_id == reviewed_job,
            AuditEvent.action == "dicom.sent",
            AuditEvent.details["destination"].as_string() == "nowhere",
        )
    ).all()
    unknown = run_sieve(
        [
            "export",
            str(reviewed_job),
            "--format",
            "dicom-sr",
            "--out",
            str(tmp_path / "x"),
            "--send",
            "elsewhere",
        ],
        pacs_env,
    )
    assert unknown.returncode == 2 and "no PACS destination 'elsewhere'" in unknown.stderr
    assert not (tmp_path / "x").exists()


def test_the_study_list_finds_the_study_by_its_keys_and_shows_no_patient(
    stored_study: tuple[str, list[Path]], pacs_env: dict[str, str], db_session: Session
) -> None:
    study_uid, written = stored_study
    for search in (
        ["--modality", "CT"],
        ["--date", "20261201-20261205"],
        ["--study-uid", study_uid],
    ):
        listed = run_sieve(["pacs", "studies", "archive", *search], pacs_env)
        assert listed.returncode == 0, listed.stderr
        (line,) = [row for row in listed.stdout.splitlines() if row.startswith(study_uid)]
        _uid, date, modalities, counts, _description = line.split("\t")
        # The SRs sent back by the other tests join the study when they run first.
        assert date == "20261203" and {"CT", "MR"} <= set(modalities.split("/"))
        found = re.fullmatch(r"(\d+) series, (\d+) instances", counts)
        assert found is not None, counts
        assert int(found.group(1)) >= 2 and int(found.group(2)) >= len(written)
        assert "Okonkwo" not in listed.stdout + listed.stderr
    nothing = run_sieve(["pacs", "studies", "archive", "--date", "19000101"], pacs_env)
    assert nothing.returncode == 0 and nothing.stdout == "" and "0 studies" in nothing.stderr
    searches = db_session.scalars(
        select(AuditEvent).where(AuditEvent.action == "pacs.searched")
    ).all()
    assert len(searches) == 4
    assert searches[0].details == {"source": "archive", "keys": ["modality"], "studies": 1}
