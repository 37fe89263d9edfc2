"""Results written back as DICOM Structured Reports, read back and validated.

The generated study goes through the embedded pipeline by series; ``sieve
export --format dicom-sr`` writes one Comprehensive SR per result. Each is
read back with pydicom, its content tree walked by hand (not by the writer),
and run through ``dciodvfy`` (dicom3tools, installed by scripts/setup), the
IOD validator PACS vendors test against. A second study is reviewed with an
extraction whose answer has yes/no and enum fields, so the coded branch of
the report (its private concept names, SNOMED CT Yes/No) is written too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from db import audit
from db.models import AuditEvent, Item, Result
from jobs import cli, dicom_sr, embedded, fhir_export, submit
from tests import dicomgen
from tests.fake_model import FakeModel
from tests.unit.test_dicom_units import submit_archive
from tests.unit.test_embedded_pipeline import Embedded, make_embedded
from worker.task_specs import build_task

Reviewed = tuple[Embedded, int, dicomgen.WrittenSeries]
# An extraction with yes/no fields (one whose key cannot be a Code Value as it
# is) and an enum field: what a radiology checklist asks.
CONTRAST = "contrast agent given (iv)"
CHECKLIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "fracture": {"type": "boolean"},
        CONTRAST: {"type": "boolean"},
        "finding": {"type": "string", "enum": ["normal", "displaced fracture"]},
    },
    "required": ["fracture", CONTRAST, "finding"],
}
SNOMED_YES = ("373066001", "SCT")
SNOMED_NO = ("373067005", "SCT")


@pytest.fixture
def reviewed(tmp_path: Path) -> Iterator[tuple[Embedded, int, dicomgen.WrittenSeries]]:
    for env in make_embedded(tmp_path, FakeModel()):
        study = dicomgen.new_study()
        ct = dicomgen.write_ct_series(tmp_path / "archive" / "ct", study)
        dicomgen.write_enhanced_ct(tmp_path / "archive" / "enhanced.dcm", study)
        made = submit_archive(env, tmp_path / "archive")
        yield env, made.job_id, ct


def _checklist_answer(output: dict[str, Any], content: str) -> dict[str, Any]:
    return {**output, "fracture": True, CONTRAST: False, "finding": "displaced fracture"}


@pytest.fixture
def reviewed_checklist(tmp_path: Path) -> Iterator[Reviewed]:
    for env in make_embedded(tmp_path, FakeModel(rewrite=_checklist_answer)):
        study = dicomgen.new_study()
        ct = dicomgen.write_ct_series(tmp_path / "archive" / "ct", study)
        task = build_task(
            "extract", {"schema": CHECKLIST_SCHEMA}, env.settings.model.max_text_chars
        )
        made = submit.submit(
            env.session_factory,
            env.settings,
            paths=[tmp_path / "archive"],
            task=task,
            name="checklist",
            executor="in_process",
            options=submit.RunOptions(unit="series"),
        )
        embedded.run_item_runs(env.context, made.item_run_ids)
        yield env, made.job_id, ct


def _concept(item: pydicom.Dataset) -> tuple[str, str, str]:
    code = item.ConceptNameCodeSequence[0]
    return code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning


def _dciodvfy_errors(path: Path) -> tuple[list[str], str]:
    """The error lines dciodvfy reports for ``path``, and its whole report."""
    checked = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    return [
        line for line in checked.stderr.splitlines() if line.startswith("Error")
    ], checked.stderr


def _identifier_reads(env: Embedded) -> list[AuditEvent]:
    with env.session_factory() as session:
        return list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "content.viewed")
                .order_by(AuditEvent.id)
            )
        )


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
@pytest.mark.parametrize("answers", ["reviewed", "reviewed_checklist"])
def test_the_reports_pass_the_dicom3tools_iod_validator(
    answers: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    env, job_id, _ = request.getfixturevalue(answers)
    with env.session_factory() as session:
        written = dicom_sr.write_reports(session, env.settings, job_id, tmp_path / "sr")
    for report in written:
        errors_found, whole = _dciodvfy_errors(report.path)
        assert errors_found == [], whole


def test_yes_no_fields_are_coded_snomed_answers_each_under_its_own_private_concept(
    reviewed_checklist: Reviewed, tmp_path: Path
) -> None:
    env, job_id, _ = reviewed_checklist
    with env.session_factory() as session:
        (written,) = dicom_sr.write_reports(session, env.settings, job_id, tmp_path / "sr")
    report = pydicom.dcmread(written.path)
    items = [i for i in _content_items(report) if "ConceptNameCodeSequence" in i]
    fields = [i for i in items if _concept(i)[1] == "99SIEVE"]
    coded = {
        _concept(i)[2]: (
            i.ConceptCodeSequence[0].CodeValue,
            i.ConceptCodeSequence[0].CodingSchemeDesignator,
        )
        for i in fields
        if i.ValueType == "CODE"
    }
    assert coded == {"fracture": SNOMED_YES, CONTRAST: SNOMED_NO}
    texts = {_concept(i)[2]: i.TextValue for i in fields if i.ValueType == "TEXT"}
    assert texts == {"finding": "finding: displaced fracture"}
    # One code per field: the key where it fits a Code Value, a stable hash where not.
    by_meaning = {_concept(i)[2]: _concept(i)[0] for i in fields}
    assert by_meaning["fracture"] == "fracture" and by_meaning["finding"] == "finding"
    assert len(set(by_meaning.values())) == 3 and len(by_meaning[CONTRAST]) <= 16
    assert by_meaning[CONTRAST] == dicom_sr.field_concept(CONTRAST).value
    # The UMLS concept once reused for every field is gone.
    assert not [i for i in items if _concept(i)[0] == "C0034375"]
    # The private scheme is declared in the SOP Common module.
    schemes = {s.CodingSchemeDesignator: s for s in report.CodingSchemeIdentificationSequence}
    assert schemes["99SIEVE"].CodingSchemeName


def test_contributing_equipment_carries_the_device_uid_of_the_observer(
    reviewed: Reviewed, tmp_path: Path
) -> None:
    env, job_id, _ = reviewed
    with env.session_factory() as session:
        written = dicom_sr.write_reports(session, env.settings, job_id, tmp_path / "sr")
        model_hashes = {r.model_sha256 for r in session.scalars(select(Result))}
    (model_sha256,) = model_hashes
    expected = dicom_sr.device_uid(model_sha256)
    assert expected == dicom_sr.uid_from(f"sieve-model:{model_sha256}")
    for report in (pydicom.dcmread(w.path) for w in written):
        observer = [i.UID for i in _content_items(report) if i.ValueType == "UIDREF"]
        assert expected in observer
        assert report.ContributingEquipmentSequence[0].DeviceUID == expected


def test_the_sr_export_records_the_identifiers_it_copied_but_not_their_values(
    reviewed: Reviewed, tmp_path: Path
) -> None:
    env, job_id, ct = reviewed
    source = pydicom.dcmread(ct.paths[0])
    assert _identifier_reads(env) == []
    with env.session_factory() as session:
        dicom_sr.write_reports(session, env.settings, job_id, tmp_path / "sr", actor="rita")
    (event,) = _identifier_reads(env)
    assert event.actor == "rita" and event.job_id == job_id
    assert event.details["what"] == "identifiers" and event.details["export"] == "dicom-sr"
    assert event.details["studies"] == [str(source.StudyInstanceUID)]
    assert {"PatientID", "PatientName"} <= set(event.details["fields"])
    payload = json.dumps(event.details)
    assert str(source.PatientID) not in payload
    assert str(source.PatientName) not in payload and "Okonkwo" not in payload
    with env.session_factory() as session:
        assert audit.verify_chain(session, audit.chain_name(job_id)) is None


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


def test_the_fhir_export_records_the_patient_id_read_but_not_its_value(
    reviewed: Reviewed, tmp_path: Path
) -> None:
    env, job_id, ct = reviewed
    source = pydicom.dcmread(ct.paths[0])
    with env.session_factory() as session:
        fhir_export.write_bundles(session, job_id, tmp_path / "fhir", actor="rita")
    (event,) = _identifier_reads(env)
    assert event.actor == "rita" and event.job_id == job_id
    assert event.details["what"] == "identifiers" and event.details["export"] == "fhir"
    assert event.details["fields"] == ["PatientID"]
    assert event.details["studies"] == [str(source.StudyInstanceUID)]
    assert str(source.PatientID) not in json.dumps(event.details)
