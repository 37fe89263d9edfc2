"""``sieve pacs studies`` and ``sieve pacs pull``: studies found and fetched over DICOMweb.

The optional front door: QIDO-RS finds studies (by date, modality,
accession or UID) and lists a study's instances, WADO-RS
retrieves each one (one at a time, so a 3,000-instance study never sits in
memory), and each is written as ``OUT/<study>/<series>/<SOP instance>.dcm``,
then ``sieve submit OUT`` indexes and reviews it like any folder. The pull
is an audit event naming the PACS and the study UIDs, never the patient.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from db import audit
from jobs import dicom_send
from jobs.settings import Settings
from worker import errors
from worker.extractors.base import errors_mapped_to
from worker.imaging import units

_STUDY = "0020000D"
_SERIES = "0020000E"
_INSTANCE = "00080018"
# What a study list shows: the study, never who the patient is.
_STUDY_FIELDS = {
    "StudyDate": "00080020",
    "ModalitiesInStudy": "00080061",
    "StudyDescription": "00081030",
    "NumberOfStudyRelatedSeries": "00201206",
    "NumberOfStudyRelatedInstances": "00201208",
}
# The QIDO-RS search keys ``sieve pacs studies`` offers, by option name.
SEARCH_KEYS = {
    "date": "StudyDate",  # YYYYMMDD or a range YYYYMMDD-YYYYMMDD
    "modality": "ModalitiesInStudy",
    "accession": "AccessionNumber",
    "study_uid": "StudyInstanceUID",
}


@contextlib.contextmanager
def _pacs_answers(source: str) -> Iterator[None]:
    """Map what the HTTP client raises to Sieve's errors: no answer is transient, a refusal not.

    ``retrying.RetryError`` is the DICOMweb client's own retries (on 429 and
    5xx answers) giving up: busy, so transient too.
    """
    import requests
    import retrying

    with (
        errors_mapped_to(
            errors.PacsUnavailableError,
            (requests.exceptions.ConnectionError, requests.exceptions.Timeout, retrying.RetryError),
            f"{source} did not answer",
        ),
        errors_mapped_to(errors.ToolError, (requests.exceptions.HTTPError,), f"{source} refused"),
    ):
        yield


def _uid(entry: dict[str, Any], tag: str, source: str) -> str:
    """A UID from a QIDO-RS answer (DICOM JSON), or CorruptFileError naming what is missing."""
    values = (entry.get(tag) or {}).get("Value") or []
    if not values or not isinstance(values[0], str):
        raise errors.CorruptFileError(f"{source}'s QIDO-RS answer lacks ({tag[:4]},{tag[4:]})")
    return values[0]


@dataclass(frozen=True)
class StudyFound:
    """One study in a QIDO-RS answer, as a study list shows it (no patient identifiers)."""

    study_instance_uid: str
    study_date: str
    modalities: tuple[str, ...]
    description: str
    series_count: int | None
    instance_count: int | None


def find_studies(
    session: Session,
    settings: Settings,
    source: str,
    filters: dict[str, str],
    actor: str,
    limit: int = 200,
) -> list[StudyFound]:
    """The studies ``source`` holds that match ``filters`` (``SEARCH_KEYS`` names), at most ``limit``.

    The search is an audit event naming the PACS, which keys were searched
    on and how many studies answered; the values are left out, since an
    accession number identifies a visit.
    """
    unknown = sorted(set(filters) - set(SEARCH_KEYS))
    if unknown:
        raise errors.UsageError(f"unknown search keys: {', '.join(unknown)}")
    target = dicom_send.destination(settings, source)
    client, http = dicom_send.dicomweb_client(target)
    client.set_http_retry_params(retry=False)  # one question, one answer (or a clear error)
    studies: list[StudyFound] = []
    try:
        with _pacs_answers(source):
            answer = client.search_for_studies(
                search_filters={SEARCH_KEYS[key]: value for key, value in filters.items()},
                fields=list(_STUDY_FIELDS),
                limit=limit,
            )
        studies = [_study_found(entry, source) for entry in answer]
    finally:
        http.close()
        # Recorded whether or not the PACS answered: the question was asked of it.
        audit.append_event(
            session,
            audit.EventDraft(
                "pacs.searched",
                actor,
                details={"source": source, "keys": sorted(filters), "studies": len(studies)},
            ),
        )
        session.commit()
    return studies


def _study_found(entry: dict[str, Any], source: str) -> StudyFound:
    def values(keyword: str) -> list[Any]:
        return list((entry.get(_STUDY_FIELDS[keyword]) or {}).get("Value") or [])

    def count(keyword: str) -> int | None:
        found = values(keyword)
        return int(found[0]) if found and str(found[0]).isdigit() else None

    return StudyFound(
        study_instance_uid=_uid(entry, _STUDY, source),
        study_date=str((values("StudyDate") or [""])[0]),
        modalities=tuple(str(value) for value in values("ModalitiesInStudy")),
        description=str((values("StudyDescription") or [""])[0]),
        series_count=count("NumberOfStudyRelatedSeries"),
        instance_count=count("NumberOfStudyRelatedInstances"),
    )


@dataclass(frozen=True)
class Pulled:
    """What a pull wrote."""

    study_instance_uid: str
    files: list[Path]


def pull_studies(
    session: Session,
    settings: Settings,
    source: str,
    study_uids: Sequence[str],
    out_dir: Path,
    actor: str,
    progress: Callable[[Path], None] | None = None,
) -> list[Pulled]:
    """Retrieve every instance of ``study_uids`` from ``source`` into ``out_dir``."""
    target = dicom_send.destination(settings, source)
    client, http = dicom_send.dicomweb_client(target)
    pulled: list[Pulled] = []
    try:
        for study_uid in study_uids:
            with _pacs_answers(source):
                found = client.search_for_instances(
                    study_instance_uid=study_uid, get_remaining=True
                )
            if not found:
                raise errors.NotFoundError(f"{source} holds no study {study_uid}")
            files: list[Path] = []
            pulled.append(Pulled(study_uid, files))
            for entry in found:
                series_uid, sop_uid = _uid(entry, _SERIES, source), _uid(entry, _INSTANCE, source)
                with _pacs_answers(source):
                    dataset = client.retrieve_instance(study_uid, series_uid, sop_uid)
                if str(dataset.get("SOPInstanceUID", "")) != sop_uid:
                    raise errors.CorruptFileError(
                        f"{source} answered instance {sop_uid} with "
                        f"{dataset.get('SOPInstanceUID', 'no SOP Instance UID')}"
                    )
                target_path = (
                    out_dir
                    / units.uid_path_part(study_uid)
                    / units.uid_path_part(series_uid)
                    / f"{units.uid_path_part(sop_uid)}.dcm"
                )
                target_path.parent.mkdir(parents=True, exist_ok=True)
                dataset.save_as(target_path, enforce_file_format=True)
                files.append(target_path)
                if progress is not None:
                    progress(target_path)
    finally:
        http.close()
        # Recorded whether or not the pull finished: what was written is on disk.
        audit.append_event(
            session,
            audit.EventDraft(
                "pacs.pulled",
                actor,
                details={
                    "source": source,
                    "studies": [p.study_instance_uid for p in pulled],
                    "instances": sum(len(p.files) for p in pulled),
                    "out": str(out_dir),
                },
            ),
        )
        session.commit()
    return pulled
