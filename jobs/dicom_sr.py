"""Review results as DICOM Structured Reports, for the hospital's PACS.

Each result of a DICOM item (a series, a study or an instance) becomes one
Comprehensive SR following TID 1500 (Measurement Report), written with
highdicom, which checks the content tree as it builds it:

* the observation context names the device observer: Sieve, with a device
  UID derived from the model file's SHA-256, the model's name as its model
  name; Contributing Equipment (IHE AI Results) says the same, Device UID
  included;
* one measurement group (TID 1501) per result, tracking the result by a UID
  derived from the result's own hash, holding the answer's fields: yes/no
  answers as coded qualitative evaluations (SNOMED CT Yes/No), everything
  else as TEXT qualitative evaluations (free-text findings), with the
  source images: exactly the SOP instances and frames the model was shown;
  each field is named by its own code in Sieve's private coding scheme
  (``99SIEVE``, declared in the Coding Scheme Identification Sequence);
* the evidence sequence lists every instance referenced.

Patient and study attributes are copied from the evidence by highdicom: the
SR belongs to the same patient and study as the images, as PACS expects.
Copying them out is a read of identifiers, so the export records one access
event (``content.viewed``, ``what: identifiers``) naming the studies and the
fields, never their values, as a read of ``/items/{id}/identifiers`` does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import highdicom as hd
import pydicom
from pydicom.sr.codedict import codes
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import audit
from db.models import DicomInstance, Item, Result
from jobs import access_log
from jobs.settings import Settings
from jobs.status import resolve_run
from worker import content_store, errors, media_types
from worker.extractors.dicom import dicom_identifiers
from worker.imaging import units

# Items whose results are about DICOM images.
DICOM_ITEM_TYPES = frozenset({media_types.DICOM, *units.UNIT_MEDIA_TYPES.values()})
# PS3.16 8.2: a designator beginning with "99" is a private scheme; the SOP Common
# module's Coding Scheme Identification Sequence says whose it is.
PRIVATE_SCHEME = "99SIEVE"
_PRIVATE_SCHEME_ITEM = hd.coding_schemes.CodingSchemeIdentificationItem(
    PRIVATE_SCHEME,
    name="Sieve review answer fields",
    responsible_organization="Sieve",
)
# What a Code Value (SH) holds as it is: at most 16 characters, no backslash.
_PLAIN_CODE_VALUE = re.compile(r"[A-Za-z0-9_.-]{1,16}")
_SR_SERIES_NUMBER = 9901  # far from the modality's own series numbers
_MANUFACTURER = "Sieve"


@dataclass(frozen=True)
class WrittenReport:
    """One SR object written."""

    item_id: int
    path: Path
    sop_instance_uid: str
    study_instance_uid: str
    referenced: int  # source instances referenced
    sha256: str
    identifier_fields: tuple[str, ...] = ()  # identifying attributes copied from the images


def uid_from(text: str) -> str:
    """A DICOM UID derived from ``text`` (PS3.5 B.2: 2.25. and a 128-bit integer)."""
    return "2.25." + str(int(hashlib.sha256(text.encode()).hexdigest()[:32], 16))


def device_uid(model_sha256: str) -> str:
    """The UID of Sieve running the model file ``model_sha256``, wherever a device is named.

    The SR's device observer, its Contributing Equipment and the FHIR Device
    all carry it, so a consumer can tie them together.
    """
    return uid_from(f"sieve-model:{model_sha256}")


def field_concept(key: str) -> hd.sr.CodedConcept:
    """The concept name of the answer field ``key``, in Sieve's private scheme.

    Each field has its own code: a code's meaning is fixed by its scheme and
    value, so one code with rewritten meanings would say every field is the same.
    """
    value = key if _PLAIN_CODE_VALUE.fullmatch(key) else _hashed_code_value(key)
    meaning = key.replace("\\", "/")[:64] or "(unnamed field)"
    return hd.sr.CodedConcept(value, PRIVATE_SCHEME, meaning)


def _hashed_code_value(key: str) -> str:
    """A stable 16-character code for a key that is too long or odd for a Code Value."""
    return "H" + hashlib.sha256(key.encode()).hexdigest()[:15].upper()


def identifiers_read(
    actor: str,
    job_id: int,
    run_id: int,
    export: str,
    fields: Iterable[str],
    studies: Iterable[str],
) -> audit.EventDraft:
    """The access event for identifiers an export copies into its output.

    The same ``content.viewed`` / ``identifiers`` event a read through the API
    writes, naming which fields of which studies were read: never the values.
    """
    return access_log.content_viewed(
        actor,
        job_id,
        "identifiers",
        {
            "via": "export",
            "export": export,
            "fields": sorted(set(fields)),
            "studies": sorted(set(studies)),
        },
        run_id=run_id,
    )


def write_reports(
    session: Session,
    settings: Settings,
    job_id: int,
    out_dir: Path,
    run_number: int | None = None,
    actor: str = "sieve",
) -> list[WrittenReport]:
    """An SR for each result of the run's DICOM items, under ``out_dir/<study UID>/``.

    Raises :class:`~worker.errors.UsageError` when the run has no result of a
    DICOM item.
    """
    run = resolve_run(session, job_id, run_number)
    written = [
        _write_one(session, settings, item, result, out_dir)
        for item, result in _dicom_results(session, run.id)
    ]
    if not written:
        raise errors.UsageError(
            f"run {run.number} of job {job_id} has no result of a DICOM item to report"
        )
    events = [_export_event(actor, job_id, run.id, out_dir, written)]
    read = [w for w in written if w.identifier_fields]
    if read:
        fields = (field for w in read for field in w.identifier_fields)
        studies = (w.study_instance_uid for w in read)
        events.insert(0, identifiers_read(actor, job_id, run.id, "dicom-sr", fields, studies))
    audit.append_events(session, events)
    session.commit()
    return written


def _export_event(
    actor: str, job_id: int, run_id: int, out_dir: Path, written: list[WrittenReport]
) -> audit.EventDraft:
    return audit.EventDraft(
        "export.dicom_sr",
        actor,
        job_id,
        run_id,
        details={
            "reports": len(written),
            "out": str(out_dir),
            "objects": [
                {
                    "item_id": w.item_id,
                    "sop_instance_uid": w.sop_instance_uid,
                    "sha256": w.sha256,
                }
                for w in written
            ],
        },
    )


def _dicom_results(session: Session, run_id: int) -> Iterator[tuple[Item, Result]]:
    rows = session.execute(
        select(Item, Result)
        .join(Result, Result.item_id == Item.id)
        .where(Result.run_id == run_id, Item.media_type.in_(DICOM_ITEM_TYPES))
        .order_by(Item.id)
    )
    yield from rows.tuples()


def _write_one(
    session: Session, settings: Settings, item: Item, result: Result, out_dir: Path
) -> WrittenReport:
    shown = _shown(item, result)
    instances = _instances(session, item, shown)
    evidence = [_header(settings, instance) for instance in instances.values()]
    if not evidence:
        raise errors.UsageError(f"item {item.id} has no indexed instance to reference")
    report = _report(item, result, shown, instances, evidence)
    study_uid = str(evidence[0].StudyInstanceUID)
    target = out_dir / units.uid_path_part(study_uid) / f"{report.SOPInstanceUID}.dcm"
    target.parent.mkdir(parents=True, exist_ok=True)
    report.save_as(target, enforce_file_format=True)
    return WrittenReport(
        item.id,
        target,
        str(report.SOPInstanceUID),
        study_uid,
        len(evidence),
        hashlib.sha256(target.read_bytes()).hexdigest(),
        tuple(sorted(dicom_identifiers(report))),
    )


def _shown(item: Item, result: Result) -> list[dict[str, Any]]:
    """The SOP instances and frames the answer rests on: what the model was shown."""
    shown = list((result.inputs or {}).get("dicom_images_shown") or [])
    if not shown:
        shown = list((item.doc_metadata or {}).get("shown") or [])
    return [entry for entry in shown if entry.get("sop_instance_uid")]


def _instances(
    session: Session, item: Item, shown: list[dict[str, Any]]
) -> dict[str, DicomInstance]:
    """The indexed instances the report references, by SOP Instance UID (the item's own if none)."""
    rows = session.scalars(select(DicomInstance).where(DicomInstance.item_id == item.id)).all()
    by_uid = {row.sop_instance_uid: row for row in rows}
    wanted = [entry["sop_instance_uid"] for entry in shown if entry["sop_instance_uid"] in by_uid]
    if not wanted:
        wanted = sorted(by_uid)[:1]
    return {uid: by_uid[uid] for uid in dict.fromkeys(wanted)}


def _header(settings: Settings, instance: DicomInstance) -> pydicom.Dataset:
    path = settings.objects_dir / content_store.object_relative_path(instance.sha256)
    return pydicom.dcmread(path, stop_before_pixels=True)


def _report(
    item: Item,
    result: Result,
    shown: list[dict[str, Any]],
    instances: dict[str, DicomInstance],
    evidence: list[pydicom.Dataset],
) -> hd.sr.ComprehensiveSR:
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device_uid(result.model_sha256),
            name="Sieve",
            manufacturer_name=_MANUFACTURER,
            model_name=result.model_name[:64],
        ),
    )
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=uid_from(f"sieve-result:{result.id}:{result.output_sha256}"),
            identifier=f"Sieve result {result.id} (item {item.id}, task {result.task_name})",
        ),
        qualitative_evaluations=_coded_answers(result.output),
        source_images=_source_images(shown, instances),
    )
    _add_free_text(group, result.output)
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=[group],
    )
    return hd.sr.ComprehensiveSR(
        evidence=evidence,
        content=content[0],
        # One SR series per study and run: a series never spans two studies.
        series_instance_uid=uid_from(
            f"sieve-sr-series:{item.job_id}:{result.run_id}:{evidence[0].StudyInstanceUID}"
        ),
        series_number=_SR_SERIES_NUMBER,
        sop_instance_uid=uid_from(f"sieve-sr:{result.id}:{result.output_sha256}"),
        instance_number=1,
        manufacturer=_MANUFACTURER,
        is_complete=True,
        is_final=False,  # a model's answer, not a verified report
        contributing_equipment=[_equipment(result)],
        coding_schemes=[_PRIVATE_SCHEME_ITEM],
    )


def _equipment(result: Result) -> hd.ContributingEquipment:
    """Contributing Equipment (IHE AI Results): the model, and the same Device UID as the observer."""
    equipment = hd.ContributingEquipment(
        manufacturer=_MANUFACTURER,
        purpose_of_reference=codes.DCM.ProcessingEquipment,
        manufacturer_model_name=result.model_name[:64],
        software_versions=f"{result.task_name} {result.task_version}",
        device_serial_number=result.model_sha256[:16],
        contribution_datetime=dt.datetime.now(dt.UTC),
        contribution_description=f"Reviewed by a local model ({result.model_name})"[:64],
    )
    # highdicom takes no Device UID here; the item is a Dataset, so it is set directly.
    equipment.DeviceUID = device_uid(result.model_sha256)
    return equipment


def _coded_answers(output: dict[str, Any]) -> list[hd.sr.QualitativeEvaluation]:
    return [
        hd.sr.QualitativeEvaluation(
            name=field_concept(key),
            value=codes.SCT.Yes if value else codes.SCT.No,
        )
        for key, value in output.items()
        if isinstance(value, bool)
    ]


def _add_free_text(
    group: hd.sr.MeasurementsAndQualitativeEvaluations, output: dict[str, Any]
) -> None:
    """The answer's other fields as TEXT qualitative evaluations (TID 1501 allows TEXT)."""
    container = group[0]
    for key, value in output.items():
        if isinstance(value, bool) or value in (None, "", [], {}):
            continue
        text = value if isinstance(value, str) else _flattened(value)
        container.ContentSequence.append(
            hd.sr.TextContentItem(
                name=field_concept(key),
                value=f"{key}: {text}"[:1024],
                relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
            )
        )


def _flattened(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_flattened(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_flattened(v)}" for k, v in value.items())
    return str(value)


def _source_images(
    shown: list[dict[str, Any]], instances: dict[str, DicomInstance]
) -> list[hd.sr.SourceImageForMeasurementGroup]:
    frames: dict[str, list[int]] = {}
    for entry in shown:
        uid = entry["sop_instance_uid"]
        if uid in instances:
            frames.setdefault(uid, []).append(int(entry.get("frame") or 1))
    if not frames:
        frames = {uid: [] for uid in instances}
    return [
        hd.sr.SourceImageForMeasurementGroup(
            referenced_sop_class_uid=instances[uid].sop_class_uid,
            referenced_sop_instance_uid=uid,
            referenced_frame_numbers=sorted(set(numbers))
            if instances[uid].number_of_frames > 1
            else None,
        )
        for uid, numbers in frames.items()
    ]
