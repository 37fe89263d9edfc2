"""A series or a study as one item: the manifest that names its instances.

With ``--unit series`` (the default for DICOM) or ``--unit study`` the item
a worker reviews is not one file but a set of them. The set is written down
as a small JSON manifest, stored in the content store like any original and
hashed like one: the item's SHA-256 is the manifest's, so the same series
submitted twice is one item, and what a result rests on is fixed. Members
are named by their own SHA-256 and found beside the manifest in the store.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from worker import content_store, errors

SERIES_MEDIA_TYPE = "application/x-sieve-dicom-series+json"
STUDY_MEDIA_TYPE = "application/x-sieve-dicom-study+json"
UNIT_MEDIA_TYPES = {"series": SERIES_MEDIA_TYPE, "study": STUDY_MEDIA_TYPE}
_FORMAT = "sieve-dicom-unit"
_VERSION = 1


@dataclass(frozen=True)
class Member:
    """One instance file of a series."""

    sha256: str
    sop_instance_uid: str


@dataclass(frozen=True)
class SeriesEntry:
    """One series of the unit, its members in a fixed order (by SOP Instance UID, then hash)."""

    series_instance_uid: str
    members: tuple[Member, ...]


@dataclass(frozen=True)
class UnitManifest:
    """What a series or study item is made of."""

    unit: str  # "series" or "study"
    study_instance_uid: str
    series: tuple[SeriesEntry, ...]

    @property
    def media_type(self) -> str:
        return UNIT_MEDIA_TYPES[self.unit]

    @property
    def instance_count(self) -> int:
        return sum(len(entry.members) for entry in self.series)

    def to_bytes(self) -> bytes:
        """Canonical JSON: the same set of instances always gives the same bytes and hash."""
        document = {
            "format": _FORMAT,
            "version": _VERSION,
            "unit": self.unit,
            "study_instance_uid": self.study_instance_uid,
            "series": [
                {
                    "series_instance_uid": entry.series_instance_uid,
                    "members": [
                        {"sha256": m.sha256, "sop_instance_uid": m.sop_instance_uid}
                        for m in entry.members
                    ],
                }
                for entry in self.series
            ],
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def build_manifest(
    unit: str, study_instance_uid: str, series: Sequence[tuple[str, Sequence[Member]]]
) -> UnitManifest:
    """A manifest with its series and members in canonical order."""
    entries = tuple(
        SeriesEntry(uid, tuple(sorted(set(members), key=lambda m: (m.sop_instance_uid, m.sha256))))
        for uid, members in sorted(series, key=lambda pair: pair[0])
    )
    return UnitManifest(unit, study_instance_uid, entries)


def read_manifest(path: Path) -> UnitManifest:
    """The manifest stored at ``path``; CorruptFileError when it is not one."""
    try:
        document = json.loads(path.read_bytes())
        if document.get("format") != _FORMAT or document.get("version") != _VERSION:
            raise ValueError(f"not a {_FORMAT} manifest of version {_VERSION}")
        series = tuple(
            SeriesEntry(
                entry["series_instance_uid"],
                tuple(Member(m["sha256"], m["sop_instance_uid"]) for m in entry["members"]),
            )
            for entry in document["series"]
        )
        return UnitManifest(document["unit"], document["study_instance_uid"], series)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise errors.CorruptFileError(f"not a readable DICOM unit manifest: {exc}") from exc


def member_path(manifest_path: Path, member: Member) -> Path:
    """Where a member lies: beside the manifest, in the same content store."""
    objects_dir = manifest_path.parent.parent
    return objects_dir / content_store.object_relative_path(member.sha256)


_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def uid_path_part(uid: str) -> str:
    """``uid`` as a file or folder name: as it is when it is a valid UID, else a hash of it.

    UIDs come from files and from PACS answers; a hostile one (``../../etc``)
    must never steer where an output is written.
    """
    text = str(uid).strip()
    if _UID.fullmatch(text) and len(text) <= 64:
        return text
    return "invalid-uid-" + hashlib.sha256(text.encode()).hexdigest()[:16]
