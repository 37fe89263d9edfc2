"""Index an archive at submit, and make its series or studies the items.

Every DICOM file submitted is read header-only (:mod:`worker.imaging.headers`).
With ``--unit series`` (the default) the instances of one series become one
item, with ``--unit study`` the series of one study do, and with ``--unit
instance`` each file stays its own item. A DICOMDIR is a file-set's index,
read with pydicom's ``FileSet`` to check that what it references was
submitted; it never becomes an item. A file whose header cannot be read stays
an item of its own, so that it fails with its code and reason like any bad
input.

The index (patients, studies, series, instances) is written in the
submission's transaction by :func:`record_index`.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydicom
import pydicom.fileset
from sqlalchemy.orm import Session

from db.models import DicomInstance, DicomPatient, DicomSeries, DicomStudy, Item
from worker import content_store, errors, media_types
from worker.imaging import units
from worker.imaging.headers import HEADER_ERRORS, HeaderRead, read_header

if TYPE_CHECKING:
    from jobs.submit import IngestedFile

UNITS = ("series", "study", "instance")
# A DICOMDIR's file IDs (PS3.10 8.2): up to eight components of A-Z, 0-9 and "_".
_FILE_ID_PART = re.compile(r"[A-Z0-9_]{1,8}")
_MAX_FILE_ID_PARTS = 8


@dataclass(frozen=True)
class FileSetRead:
    """A DICOMDIR, read as an index: how many instances it lists, which were not submitted."""

    path: Path
    sha256: str
    referenced: int
    missing: tuple[str, ...] = ()
    problem: str | None = None  # why it could not be read as a file-set, or checked
    invalid: int = 0  # records whose file ID is not a PS3.10 one (never followed)


@dataclass
class ImagingPlan:
    """What a submission's DICOM files become."""

    # What becomes items, in submission order: other files, instances kept as
    # items, and one entry per series or study (its manifest, with members).
    files: list[IngestedFile] = field(default_factory=list)
    headers: dict[Path, HeaderRead] = field(default_factory=dict)
    filesets: list[FileSetRead] = field(default_factory=list)

    @property
    def dicom_units(self) -> int:
        return sum(1 for f in self.files if f.members)


def plan_units(files: Sequence[IngestedFile], objects_dir: Path, unit: str) -> ImagingPlan:
    """Read every DICOM file's header and group the instances into ``unit`` items.

    ``files`` are :class:`jobs.submit.IngestedFile` values; a unit entry is
    one too, its ``path`` a description of the series or study and its
    ``members`` the instance files.
    """
    if unit not in UNITS:
        raise errors.UsageError(f"--unit is one of {', '.join(UNITS)}, not {unit!r}")
    plan = ImagingPlan()
    grouped: dict[str, dict[str, list[IngestedFile]]] = defaultdict(lambda: defaultdict(list))
    submitted = {ingested.path for ingested in files}
    for ingested in files:
        if ingested.media_type != media_types.DICOM:
            plan.files.append(ingested)
            continue
        try:
            read = read_header(objects_dir / ingested.stored.relative_path)
        except errors.CorruptFileError:
            plan.files.append(ingested)  # it fails as an item, with its reason
            continue
        if read.header.is_dicomdir:
            plan.filesets.append(_read_fileset(ingested, objects_dir, submitted))
            continue
        plan.headers[ingested.path] = read
        header = read.header
        if unit == "instance" or not header.series_instance_uid or not header.study_instance_uid:
            plan.files.append(ingested)
            continue
        key = header.study_instance_uid if unit == "study" else header.series_instance_uid
        grouped[key][header.series_instance_uid].append(ingested)
    for key, series in grouped.items():
        plan.files.append(_unit_file(unit, key, series, plan.headers, objects_dir))
    return plan


def _unit_file(
    unit: str,
    key: str,
    series: dict[str, list[IngestedFile]],
    headers: dict[Path, HeaderRead],
    objects_dir: Path,
) -> IngestedFile:
    from jobs.submit import IngestedFile

    members = [ingested for instances in series.values() for ingested in instances]
    first = headers[members[0].path].header
    manifest = units.build_manifest(
        unit,
        first.study_instance_uid,
        [
            (
                series_uid,
                [
                    units.Member(i.stored.sha256, headers[i.path].header.sop_instance_uid)
                    for i in instances
                ],
            )
            for series_uid, instances in series.items()
        ],
    )
    stored = content_store.store_bytes(manifest.to_bytes(), objects_dir)
    folder = Path(os.path.commonpath([str(m.path.parent) for m in members]))
    if unit == "study":
        described = f"study {key} ({len(series)} series, {len(members)} instances)"
    else:
        number = first.series_number if first.series_number is not None else "?"
        described = f"series {number} {first.modality} ({len(members)} instances) {key}"
    return IngestedFile(folder / f"› {described}", stored, manifest.media_type, tuple(members))


def _read_fileset(ingested: IngestedFile, objects_dir: Path, submitted: set[Path]) -> FileSetRead:
    """The DICOMDIR's references, checked against what was submitted beside it.

    pydicom's ``FileSet`` reads and checks the index (from the stored copy);
    the references are taken from its directory records, since a ``FileSet``
    leaves out a record whose file is gone, and a file lost from the media is
    just what must be named. An uploaded DICOMDIR came without its folders,
    so its references are counted but cannot be checked.
    """
    stored = objects_dir / ingested.stored.relative_path
    fileset = pydicom.fileset.FileSet()
    try:
        dicomdir = pydicom.dcmread(stored)
        with warnings.catch_warnings():
            # A listed file that is not there is reported below, as "not submitted".
            warnings.filterwarnings("ignore", "The referenced SOP Instance", UserWarning)
            fileset.load(dicomdir)
    except (*HEADER_ERRORS, AttributeError) as exc:
        reason = str(exc).replace(str(stored), "the file")
        return FileSetRead(ingested.path, ingested.stored.sha256, 0, problem=reason)
    finally:
        _discard_staging(fileset)
    file_ids, invalid = _referenced_file_ids(dicomdir)
    if not ingested.path.is_absolute():
        return FileSetRead(
            ingested.path,
            ingested.stored.sha256,
            len(file_ids),
            problem="uploaded without its folders: its references cannot be checked",
            invalid=invalid,
        )
    root = ingested.path.parent
    referenced = [root.joinpath(*parts).resolve() for parts in file_ids]
    missing = tuple(str(path) for path in referenced if path not in submitted)
    return FileSetRead(
        ingested.path, ingested.stored.sha256, len(referenced), missing, invalid=invalid
    )


def _referenced_file_ids(dicomdir: pydicom.Dataset) -> tuple[list[tuple[str, ...]], int]:
    """The file IDs a DICOMDIR's records name, and how many records named an invalid one.

    A file ID is at most eight components of one to eight characters from
    A-Z, 0-9 and underscore (PS3.10 8.2, 8.5): nothing else is followed, so a
    hostile index cannot point outside its folder ("..", an absolute path).
    """
    file_ids: list[tuple[str, ...]] = []
    invalid = 0
    for record in dicomdir.get("DirectoryRecordSequence", []):
        components = record.get("ReferencedFileID")
        if not components:
            continue
        parts = (components,) if isinstance(components, str) else tuple(components)
        if 0 < len(parts) <= _MAX_FILE_ID_PARTS and all(map(_FILE_ID_PART.fullmatch, parts)):
            file_ids.append(parts)
        else:
            invalid += 1
    return file_ids, invalid


def _discard_staging(fileset: pydicom.fileset.FileSet) -> None:
    """pydicom stages edits to a file-set in a temporary folder; this one is only read."""
    fileset._stage["t"].cleanup()  # FileSet has no public close()


def patient_key(job_id: int, identifiers: dict[str, Any], study_instance_uid: str) -> str:
    """Which patient a study is of, as a hash (the identifiers themselves are kept apart)."""
    patient = identifiers.get("PatientID") or f"(no PatientID: study {study_instance_uid})"
    issuer = identifiers.get("IssuerOfPatientID", "")
    return hashlib.sha256(f"{job_id}|{issuer}|{patient}".encode()).hexdigest()


def record_index(
    session: Session,
    job_id: int,
    plan: ImagingPlan,
    items_by_path: dict[Path, Item],
    recorded_path: Callable[[Path], str],
) -> int:
    """Write patients, studies, series and instances for the plan's headers; returns instances.

    ``items_by_path`` maps each submitted path to the item that reviews it (a
    member's is its series' or study's item).
    """
    patients: dict[str, DicomPatient] = {}
    studies: dict[str, DicomStudy] = {}
    series_rows: dict[str, DicomSeries] = {}
    instances = 0
    seen: set[tuple[str, str]] = set()
    sha_by_path = {f.path: f.stored.sha256 for f in _every_file(plan.files)}
    for path, read in plan.headers.items():
        header, item = read.header, items_by_path[path]
        study = studies.get(header.study_instance_uid)
        if study is None:
            key = patient_key(job_id, read.patient_identifiers, header.study_instance_uid)
            patient = patients.get(key)
            if patient is None:
                patient = DicomPatient(
                    job_id=job_id, patient_key=key, identifiers=read.patient_identifiers or None
                )
                session.add(patient)
                patients[key] = patient
                session.flush()
            study = DicomStudy(
                job_id=job_id,
                patient_id=patient.id,
                study_instance_uid=header.study_instance_uid or f"(none: {path.name})",
                study_date=header.study_date[:8] or None,
                modalities=[],
                identifiers=read.study_identifiers or None,
                item_id=item.id if item.media_type == units.STUDY_MEDIA_TYPE else None,
            )
            session.add(study)
            studies[header.study_instance_uid] = study
            session.flush()
        if header.modality and header.modality not in study.modalities:
            study.modalities = [*study.modalities, header.modality]
        series = series_rows.get(header.series_instance_uid)
        if series is None:
            series = DicomSeries(
                job_id=job_id,
                study_id=study.id,
                series_instance_uid=header.series_instance_uid or f"(none: {path.name})",
                series_number=header.series_number,
                modality=header.modality or None,
                description=header.series_description or None,
                body_part=header.body_part or None,
                frame_of_reference_uid=header.frame_of_reference_uid or None,
                series_date=header.series_date[:8] or None,
                instance_count=0,
                item_id=item.id if item.media_type == units.SERIES_MEDIA_TYPE else None,
            )
            session.add(series)
            series_rows[header.series_instance_uid] = series
            session.flush()
        ingested_sha = sha_by_path[path]
        if (header.sop_instance_uid, ingested_sha) in seen:
            continue  # the same file at a second path: one instance
        seen.add((header.sop_instance_uid, ingested_sha))
        series.instance_count += 1
        session.add(
            DicomInstance(
                job_id=job_id,
                series_id=series.id,
                item_id=item.id,
                path=recorded_path(path),
                sha256=ingested_sha,
                **header.index_row(),
            )
        )
        instances += 1
    session.flush()
    return instances


def _every_file(files: Iterable[IngestedFile]) -> Iterable[IngestedFile]:
    for ingested in files:
        yield ingested
        yield from ingested.members
