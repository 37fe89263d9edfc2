"""Review results as FHIR: one Bundle per study, a DiagnosticReport and its Observations.

Following the shape of HL7's DICOM SR to FHIR mapping (R5): the study's
results become a ``DiagnosticReport`` (status ``preliminary``: a model's
answer, not a signed report; category RAD; LOINC 18748-4 "Diagnostic imaging
study") whose ``result`` lists one ``Observation`` per answer field
(``valueBoolean`` for yes/no, ``valueString`` otherwise). Each Observation
names the ``ImagingStudy`` it is derived from by Study Instance UID
(``urn:oid:``), the series and SOP instances the model was shown as
``derivedFrom`` identifiers, and the ``Device`` (Sieve, identified by the
model's device UID, as in the SR). The patient is referenced by the
PatientID of the images: these go back into the hospital's own systems.
That is a read of identifiers, recorded as the SR export records it (the
studies and the field, never the value). Every resource is built and
validated with ``fhir.resources``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db import audit
from db.models import DicomPatient, DicomStudy, Item, Result
from jobs.dicom_sr import DICOM_ITEM_TYPES, device_uid, identifiers_read
from jobs.status import resolve_run
from worker import errors
from worker.imaging import units


def write_bundles(
    session: Session,
    job_id: int,
    out_dir: Path,
    run_number: int | None = None,
    actor: str = "sieve",
) -> list[Path]:
    """A Bundle per study of the run's DICOM results, as ``out_dir/<study UID>.json``."""
    from fhir.resources.bundle import Bundle

    run = resolve_run(session, job_id, run_number)
    by_study: dict[str, list[tuple[Item, Result]]] = defaultdict(list)
    rows = session.execute(
        select(Item, Result)
        .join(Result, Result.item_id == Item.id)
        .where(Result.run_id == run.id, Item.media_type.in_(DICOM_ITEM_TYPES))
        .order_by(Item.id)
    )
    for item, result in rows.tuples():
        study_uid = (item.doc_metadata or {}).get("study_instance_uid")
        if study_uid:
            by_study[study_uid].append((item, result))
    if not by_study:
        raise errors.UsageError(f"run {run.number} of job {job_id} has no DICOM result to report")
    out_dir.mkdir(parents=True, exist_ok=True)
    patients = {study_uid: _patient_id(session, job_id, study_uid) for study_uid in by_study}
    written = []
    for study_uid, results in by_study.items():
        bundle = Bundle.model_validate(_bundle(study_uid, results, patients[study_uid]))
        target = out_dir / f"{units.uid_path_part(study_uid)}.json"
        target.write_text(bundle.model_dump_json(indent=2))
        written.append(target)
    events = [
        audit.EventDraft(
            "export.fhir",
            actor,
            job_id,
            run.id,
            details={"bundles": len(written), "studies": sorted(by_study), "out": str(out_dir)},
        )
    ]
    identified = [study_uid for study_uid, patient_id in patients.items() if patient_id]
    if identified:
        events.insert(0, identifiers_read(actor, job_id, run.id, "fhir", ["PatientID"], identified))
    audit.append_events(session, events)
    session.commit()
    return written


def _bundle(
    study_uid: str, results: list[tuple[Item, Result]], patient_id: str | None
) -> dict[str, Any]:
    device = device_uid(results[0][1].model_sha256)
    observations = [
        _observation(study_uid, item, result, field, value, patient_id, device)
        for item, result in results
        for field, value in result.output.items()
        if value not in (None, "", [], {})
    ]
    report = {
        "resourceType": "DiagnosticReport",
        "id": _id(f"report:{study_uid}:{results[0][1].run_id}"),
        "status": "preliminary",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                        "code": "RAD",
                        "display": "Radiology",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": "18748-4",
                    "display": "Diagnostic imaging study",
                }
            ]
        },
        "subject": {"identifier": {"value": patient_id}} if patient_id else None,
        "issued": dt.datetime.now(dt.UTC).isoformat(),
        "performer": [{"identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{device}"}}],
        "study": [{"identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"}}],
        "result": [{"reference": f"urn:uuid:{o['id']}"} for o in observations],
        "conclusion": _conclusion(results),
    }
    resources = [{k: v for k, v in report.items() if v is not None}, *observations]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }


def _observation(
    study_uid: str,
    item: Item,
    result: Result,
    field: str,
    value: Any,
    patient_id: str | None,
    device: str,
) -> dict[str, Any]:
    shown = (result.inputs or {}).get("dicom_images_shown") or []
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": _id(f"observation:{result.id}:{field}"),
        "status": "preliminary",
        "code": {"text": f"{result.task_name}: {field}"},
        "device": {"identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{device}"}},
        "derivedFrom": [
            {"identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"}},
            *(
                {
                    "identifier": {
                        "system": "urn:dicom:uid",
                        "value": f"urn:oid:{entry['sop_instance_uid']}",
                    }
                }
                for entry in shown
            ),
        ],
        "note": [{"text": f"Sieve item {item.id}, result {result.id}, model {result.model_name}"}],
    }
    if patient_id:
        observation["subject"] = {"identifier": {"value": patient_id}}
    if isinstance(value, bool):
        observation["valueBoolean"] = value
    elif isinstance(value, (int, float)):
        observation["valueQuantity"] = {"value": value}
    else:
        observation["valueString"] = value if isinstance(value, str) else json.dumps(value)
    return observation


def _conclusion(results: list[tuple[Item, Result]]) -> str | None:
    texts = [
        r.output.get("summary") for _, r in results if isinstance(r.output.get("summary"), str)
    ]
    return "\n".join(texts) if texts else None


def _patient_id(session: Session, job_id: int, study_uid: str) -> str | None:
    study = session.scalars(
        select(DicomStudy).where(
            DicomStudy.job_id == job_id, DicomStudy.study_instance_uid == study_uid
        )
    ).first()
    if study is None:
        return None
    patient = session.get(DicomPatient, study.patient_id)
    return (patient.identifiers or {}).get("PatientID") if patient else None


def _id(text: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sieve:{text}"))
