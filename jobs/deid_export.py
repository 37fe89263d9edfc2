"""``sieve export JOB --format dicom-deid``: a de-identified copy of a job's archive.

Every indexed instance of the job is read from the content store (the
originals are never touched), de-identified by the profile given
(:mod:`worker.imaging.deid`), and written as
``OUT/<new study UID>/<new series UID>/<new SOP UID>.dcm``. What was replaced
goes to ``deid_mappings``, never into the copy; the export is an audit event
that names no identifier. ``sieve deid mapping JOB`` reads the mapping back,
and each read is an audit event too (who, when, which studies).
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import audit
from db.models import DeidMapping, DicomInstance
from jobs.settings import Settings
from worker import content_store, errors, sandbox
from worker.extractors.dicom import dicom_identifiers
from worker.imaging import deid, units
from worker.imaging.deid_profile import Profile
from worker.imaging.headers import HEADER_ERRORS

KEY_FILE = "deid.key"


@dataclass
class DeidExport:
    """What an export wrote."""

    files: list[Path] = field(default_factory=list)
    studies: set[str] = field(default_factory=set)  # new Study Instance UIDs
    pixel_reviews: list[dict[str, Any]] = field(default_factory=list)  # text left for review
    frames_cleaned: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)  # instance, code, reason
    # How cleaned pixels were written (transfer syntax name -> instances), and why any
    # was not compressed or had its colour converted on decoding.
    pixel_encodings: Counter[str] = field(default_factory=Counter)
    encoding_notes: list[dict[str, str]] = field(default_factory=list)


def installation_secret(settings: Settings) -> bytes:
    """The de-identification key: the setting, or ``deid.key`` (made on first use, 0600)."""
    if settings.deid.secret is not None:
        return settings.deid.secret.get_secret_value().encode()
    path = settings.data_dir / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def export(
    session: Session,
    settings: Settings,
    job_id: int,
    out_dir: Path,
    profile: Profile,
    actor: str,
) -> DeidExport:
    """De-identify every instance of ``job_id`` into ``out_dir`` (which must be empty or new)."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise errors.UsageError(f"{out_dir} is not empty: a de-identified copy needs a new folder")
    instances = _distinct_instances(session, job_id)
    if not instances:
        raise errors.UsageError(f"job {job_id} has no indexed DICOM instance to de-identify")
    pseudonyms = deid.Pseudonyms(installation_secret(settings))
    try:
        safe_private = frozenset(deid.SafePrivate.parse(t) for t in settings.deid.safe_private)
    except ValueError as exc:
        raise errors.ConfigurationError(f"SIEVE_DEID__SAFE_PRIVATE: {exc}") from None
    made = DeidExport()
    mappings: dict[tuple[str, str], tuple[str, str | None]] = {}
    for instance in instances:
        try:
            written = _one(settings, instance, profile, pseudonyms, safe_private, out_dir, made)
        except (errors.InputError, *HEADER_ERRORS, AttributeError) as exc:
            # One damaged instance fails alone; the rest of the archive is still copied.
            code = exc.code if isinstance(exc, errors.SieveError) else errors.CorruptFileError.code
            made.failed.append({"path": instance.path, "error_code": code, "error": str(exc)[:500]})
            continue
        original_study = written.original_study
        for original, replacement in written.result.uids.items():
            mappings[("uid", original)] = (replacement, original_study)
        if written.result.patient:
            original, pseudonym = written.result.patient
            mappings[("patient", original)] = (pseudonym, original_study)
            if written.result.date_offset_days is not None:
                mappings[("date_offset", original)] = (
                    str(written.result.date_offset_days),
                    original_study,
                )
    _record_mappings(session, job_id, mappings)
    audit.append_event(
        session,
        audit.EventDraft(
            "export.dicom_deid",
            actor,
            job_id,
            details={
                "profile": list(profile.options),
                "instances": len(made.files),
                "studies": len(made.studies),
                "frames_cleaned": made.frames_cleaned,
                "pixel_text_for_review": len(made.pixel_reviews),
                "pixel_encodings": dict(sorted(made.pixel_encodings.items())),
                "encoding_notes": len(made.encoding_notes),
                "failed": [{"error_code": f["error_code"]} for f in made.failed],
                "out": str(out_dir),
            },
        ),
    )
    session.commit()
    return made


@dataclass
class _Written:
    result: deid.Deidentified
    original_study: str


def _one(
    settings: Settings,
    instance: DicomInstance,
    profile: Profile,
    pseudonyms: deid.Pseudonyms,
    safe_private: frozenset[deid.SafePrivate],
    out_dir: Path,
    made: DeidExport,
) -> _Written:
    source = settings.objects_dir / content_store.object_relative_path(instance.sha256)
    dataset = pydicom.dcmread(source)
    header = pydicom.dcmread(source, stop_before_pixels=True)
    identifiers = dicom_identifiers(header)
    original_study = str(header.get("StudyInstanceUID", ""))
    result = deid.deidentify(dataset, profile, pseudonyms, identifiers, safe_private)
    if profile.has("clean-pixel") and "PixelData" in dataset:
        frames, result.pixels = sandbox.clean_pixels_isolated(
            source, identifiers, settings.limits, settings.media, settings.deid.pixel_regions
        )
        deid.store_cleaned(dataset, frames, header, result.pixels)
        made.frames_cleaned += result.pixels.frames
        written_as = result.pixels.transfer_syntax
        made.pixel_encodings[pydicom.uid.UID(written_as).name if written_as else "unchanged"] += 1
        made.encoding_notes.extend(
            {"sop_instance_uid": str(dataset.SOPInstanceUID), "note": note}
            for note in result.pixels.encoding_notes
        )
        made.pixel_reviews.extend(
            {"sop_instance_uid": str(dataset.SOPInstanceUID), **entry}
            for entry in result.pixels.review
        )
    target = (
        out_dir
        / units.uid_path_part(str(dataset.get("StudyInstanceUID", "")))
        / units.uid_path_part(str(dataset.get("SeriesInstanceUID", "")))
        / f"{units.uid_path_part(str(dataset.get('SOPInstanceUID', '')))}.dcm"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(target, enforce_file_format=True)
    made.files.append(target)
    made.studies.add(str(dataset.get("StudyInstanceUID", "")))
    return _Written(result, original_study)


def _distinct_instances(session: Session, job_id: int) -> list[DicomInstance]:
    rows = session.scalars(
        select(DicomInstance).where(DicomInstance.job_id == job_id).order_by(DicomInstance.id)
    ).all()
    seen: set[str] = set()
    distinct = []
    for row in rows:
        # One output per SOP instance: a second copy (other bytes, same UID) would
        # overwrite the first at the same path.
        if row.sha256 not in seen and row.sop_instance_uid not in seen:
            seen.update((row.sha256, row.sop_instance_uid))
            distinct.append(row)
    return distinct


def _record_mappings(
    session: Session, job_id: int, mappings: dict[tuple[str, str], tuple[str, str | None]]
) -> None:
    known = {
        (row.kind, row.original)
        for row in session.scalars(select(DeidMapping).where(DeidMapping.job_id == job_id))
    }
    session.add_all(
        DeidMapping(
            job_id=job_id,
            kind=kind,
            original=original,
            replacement=replacement,
            study_instance_uid=study,
        )
        for (kind, original), (replacement, study) in mappings.items()
        if (kind, original) not in known
    )
    session.flush()


def read_mapping(
    session: Session, job_id: int, actor: str, kind: str | None = None
) -> list[DeidMapping]:
    """The job's mapping rows; the read itself is recorded (who, when, which studies)."""
    query = select(DeidMapping).where(DeidMapping.job_id == job_id).order_by(DeidMapping.id)
    if kind is not None:
        query = query.where(DeidMapping.kind == kind)
    rows = list(session.scalars(query))
    audit.append_event(
        session,
        audit.EventDraft(
            "deid.mapping_read",
            actor,
            job_id,
            details={
                "kind": kind,
                "rows": len(rows),
                "studies": sorted(
                    {row.study_instance_uid for row in rows if row.study_instance_uid}
                ),
            },
        ),
    )
    session.commit()
    return rows
