"""``sieve pacs pull``: a study fetched from a PACS over DICOMweb, ready to submit.

The optional front door: QIDO-RS lists the study's instances, WADO-RS
retrieves each one (one at a time, so a 3,000-instance study never sits in
memory), and each is written as ``OUT/<study>/<series>/<SOP instance>.dcm``,
then ``sieve submit OUT`` indexes and reviews it like any folder. The pull
is an audit event naming the PACS and the study UIDs, never the patient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from db import audit
from jobs import dicom_send
from jobs.settings import Settings
from worker import errors
from worker.imaging import units

_SERIES = "0020000E"
_INSTANCE = "00080018"


def _uid(entry: dict[str, Any], tag: str, source: str) -> str:
    """A UID from a QIDO-RS answer (DICOM JSON), or CorruptFileError naming what is missing."""
    values = (entry.get(tag) or {}).get("Value") or []
    if not values or not isinstance(values[0], str):
        raise errors.CorruptFileError(f"{source}'s QIDO-RS answer lacks ({tag[:4]},{tag[4:]})")
    return values[0]


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
            found = client.search_for_instances(study_instance_uid=study_uid, get_remaining=True)
            if not found:
                raise errors.NotFoundError(f"{source} holds no study {study_uid}")
            files: list[Path] = []
            pulled.append(Pulled(study_uid, files))
            for entry in found:
                series_uid, sop_uid = _uid(entry, _SERIES, source), _uid(entry, _INSTANCE, source)
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
