"""Results written back as DICOM Structured Reports, read back and validated.

The generated study goes through the embedded pipeline by series; ``sieve
export --format dicom-sr`` writes one Comprehensive SR per result. Each is
read back with pydicom, its content tree walked by hand (not by the writer),
and run through ``dciodvfy`` (dicom3tools, installed by scripts/setup), the
IOD validator PACS vendors test against.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from db.models import AuditEvent, Item, Result
from jobs import cli, dicom_sr
from tests import dicomgen
from tests.fake_model import FakeModel
from tests.unit.test_dicom_units import submit_archive
from tests.unit.test_embedded_pipeline import Embedded, make_embedded


@pytest.fixture
def reviewed(tmp_path: Path) -> Iterator[tuple[Embedded, int, dicomgen.WrittenSeries]]:
    for env in make_embedded(tmp_path, FakeModel()):
        study = dicomgen.new_study()
        ct = dicomgen.write_ct_series(tmp_path / "archive" / "ct", study)
        dicomgen.write_enhanced_ct(tmp_path / "archive" / "enhanced.dcm", study)
        made = submit_archive(env, tmp_path / "archive")
        yield env, made.job_id, ct


def _content_items(dataset: pydicom.Dataset) -> Iterator[pydicom.Dataset]:
    for item in dataset.get("ContentSequence", []):
        yield item
        yield from _content_items(item)


def _evidence_uids(report: pydicom.Dataset) -> set[str]:
    return {
        instance.ReferencedSOPInstanceUID
        for study in report.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for instance in series.ReferencedSOPSequence
    }


def test_each_result_becomes_a_tid_1500_report_referencing_what_the_model_was_shown(
    reviewed: tuple[Embedded, int, dicomgen.WrittenSeries], tmp_path: Path
) -> None:
    env, job_id, ct = reviewed
    out = tmp_path / "sr"
    result = CliRunner().invoke(
        cli.cli,
        ["export", str(job_id), "--format", "dicom-sr", "--out", str(out)],
        env={"SIEVE_DATA_DIR": str(env.settings.data_dir)},
    )
    assert result.exit_code == 0, result.output
    written = sorted(out.rglob("*.dcm"))
    assert len(written) == 2  # the CT series and the enhanced CT

    with env.session_factory() as session:
        item = session.scalars(select(Item).where(Item.path.contains(ct.series_instance_uid))).one()
        answer = session.scalars(select(Result).where(Result.item_id == item.id)).one()
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "export.dicom_sr")
        ).one()
    shown = {entry["sop_instance_uid"] for entry in answer.inputs["dicom_images_shown"]}
    source = pydicom.dcmread(ct.paths[0])
    report = next(r for r in map(pydicom.dcmread, written) if _evidence_uids(r) & shown)

    assert report.SOPClassUID == pydicom.uid.ComprehensiveSRStorage
    assert report.Modality == "SR"
    # Same patient and study as the images, so PACS files it with them.
    assert report.PatientID == source.PatientID and report.PatientName == source.PatientName
    assert report.StudyInstanceUID == source.StudyInstanceUID
    assert report.SeriesInstanceUID != source.SeriesInstanceUID
    # TID 1500: the document title, the device observer with the model's UID, the group.
    assert report.ConceptNameCodeSequence[0].CodeValue == "126000"
    items = list(_content_items(report))
    device_uids = [i.UID for i in items if i.ValueType == "UIDREF"]
    assert dicom_sr.uid_from(f"sieve-model:{answer.model_sha256}") in device_uids
    texts = [i.TextValue for i in items if i.ValueType == "TEXT"]
    assert any(text.startswith("summary: ") for text in texts)
    # The images referenced are exactly those the model was shown, and all are evidence.
    referenced = {
        i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in items if i.ValueType == "IMAGE"
    }
    assert referenced == shown == _evidence_uids(report)
    equipment = report.ContributingEquipmentSequence[0]
    assert equipment.Manufacturer == "Sieve" and equipment.ManufacturerModelName
    assert event.details["reports"] == 2
    assert {o["sop_instance_uid"] for o in event.details["objects"]} == {
        str(pydicom.dcmread(p).SOPInstanceUID) for p in written
    }


def test_the_enhanced_objects_report_cites_its_frames(
    reviewed: tuple[Embedded, int, dicomgen.WrittenSeries], tmp_path: Path
) -> None:
    env, job_id, _ = reviewed
    with env.session_factory() as session:
        written = dicom_sr.write_reports(session, env.settings, job_id, tmp_path / "sr")
    frames: list[Any] = []
    for report in (pydicom.dcmread(w.path) for w in written):
        for item in _content_items(report):
            if (
                item.ValueType == "IMAGE"
                and "ReferencedFrameNumber" in item.ReferencedSOPSequence[0]
            ):
                frames.append(item.ReferencedSOPSequence[0].ReferencedFrameNumber)
    assert frames, "the multi-frame object's report names the frames shown"


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools (scripts/setup)")
def test_the_reports_pass_the_dicom3tools_iod_validator(
    reviewed: tuple[Embedded, int, dicomgen.WrittenSeries], tmp_path: Path
) -> None:
    env, job_id, _ = reviewed
    with env.session_factory() as session:
        written = dicom_sr.write_reports(session, env.settings, job_id, tmp_path / "sr")
    for report in written:
        checked = subprocess.run(
            ["dciodvfy", str(report.path)], capture_output=True, text=True, check=False
        )
        errors_found = [line for line in checked.stderr.splitlines() if line.startswith("Error")]
        assert errors_found == [], checked.stderr


def test_fhir_bundles_carry_a_report_and_an_observation_per_answer_field(
    reviewed: tuple[Embedded, int, dicomgen.WrittenSeries], tmp_path: Path
) -> None:
    from fhir.resources.bundle import Bundle

    env, job_id, ct = reviewed
    out = tmp_path / "fhir"
    result = CliRunner().invoke(
        cli.cli,
        ["export", str(job_id), "--format", "fhir", "--out", str(out)],
        env={"SIEVE_DATA_DIR": str(env.settings.data_dir)},
    )
    assert result.exit_code == 0, result.output
    (path,) = out.glob("*.json")
    bundle = Bundle.model_validate_json(path.read_text())  # the FHIR models validate it
    resources = [entry.resource for entry in bundle.entry]
    (report,) = [r for r in resources if r.get_resource_type() == "DiagnosticReport"]
    observations = [r for r in resources if r.get_resource_type() == "Observation"]
    assert report.status == "preliminary" and report.code.coding[0].code == "18748-4"
    source = pydicom.dcmread(ct.paths[0])
    assert report.study[0].identifier.value == f"urn:oid:{source.StudyInstanceUID}"
    assert report.subject.identifier.value == source.PatientID
    assert {ref.reference for ref in report.result} == {f"urn:uuid:{o.id}" for o in observations}
    with env.session_factory() as session:
        answers = session.scalars(select(Result)).all()
    fields = sum(
        len([v for v in a.output.values() if v not in (None, "", [], {})]) for a in answers
    )
    assert len(observations) == fields
    summary = next(o for o in observations if o.code.text.endswith(": summary"))
    assert summary.valueString in {a.output["summary"] for a in answers}
    shown = {e["sop_instance_uid"] for a in answers for e in a.inputs["dicom_images_shown"]}
    derived = {
        d.identifier.value.removeprefix("urn:oid:") for o in observations for d in o.derivedFrom
    }
    assert shown <= derived
