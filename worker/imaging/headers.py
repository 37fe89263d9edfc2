"""The header-only pass: what an archive holds, read without touching a pixel.

A hospital archive is indexed before anything is reviewed: patient, study,
series and instance, with the geometry a series is assembled by. Reading with
``stop_before_pixels`` costs a few kilobytes per instance however large the
image, which is what lets a 300-slice series be grouped, sorted and checked
before one frame is decoded.

Identifiers stay apart here too: :class:`InstanceHeader` carries UIDs, dates
and geometry; the patient's and staff's attributes come back separately, in
``identifiers``, for the index's own identifier columns.
"""

from __future__ import annotations

import contextlib
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
import pydicom.errors
from pydicom.uid import UID

from worker import errors

# The DICOMDIR's SOP class: a file-set's index, never an image to review.
MEDIA_STORAGE_DIRECTORY_SOP_CLASS = "1.2.840.10008.1.3.10"

# What pydicom raises on a file it cannot parse or a pixel stream it cannot decode
# (short data is a ValueError, a damaged header often a struct.error).
HEADER_ERRORS: tuple[type[BaseException], ...] = (
    pydicom.errors.InvalidDicomError,
    ValueError,
    EOFError,
    struct.error,
    OSError,
    KeyError,
    IndexError,
    TypeError,
)

Vector = tuple[float, float, float]


@dataclass(frozen=True)
class InstanceHeader:
    """One instance as the index and the series assembly need it; no identifiers."""

    sop_instance_uid: str
    sop_class_uid: str
    series_instance_uid: str
    study_instance_uid: str
    transfer_syntax_uid: str
    modality: str
    rows: int
    columns: int
    number_of_frames: int
    has_pixels: bool
    instance_number: int | None = None
    acquisition_number: int | None = None
    series_number: int | None = None
    series_description: str = ""
    body_part: str = ""
    study_date: str = ""
    series_date: str = ""
    acquisition_date: str = ""
    content_date: str = ""
    frame_of_reference_uid: str = ""
    image_type: tuple[str, ...] = ()
    position: Vector | None = None  # ImagePositionPatient, mm
    orientation: tuple[float, ...] | None = None  # ImageOrientationPatient: row, column cosines
    pixel_spacing: tuple[float, float] | None = None
    # Enhanced multi-frame objects place each frame in their functional groups.
    frame_positions: tuple[Vector | None, ...] = ()
    frame_orientations: tuple[tuple[float, ...] | None, ...] = ()

    @property
    def is_dicomdir(self) -> bool:
        return self.sop_class_uid == MEDIA_STORAGE_DIRECTORY_SOP_CLASS

    @property
    def sop_class_name(self) -> str:
        return UID(self.sop_class_uid).name if self.sop_class_uid else ""

    def index_row(self) -> dict[str, Any]:
        """The instance's columns in the index (JSON-ready)."""
        return {
            "sop_instance_uid": self.sop_instance_uid,
            "sop_class_uid": self.sop_class_uid,
            "transfer_syntax_uid": self.transfer_syntax_uid,
            "number_of_frames": self.number_of_frames,
            "rows": self.rows,
            "columns": self.columns,
            "instance_number": self.instance_number,
            "acquisition_number": self.acquisition_number,
            "acquisition_date": self.acquisition_date[:8] or None,
            "content_date": self.content_date[:8] or None,
            "image_type": list(self.image_type),
            "image_position": list(self.position) if self.position else None,
            "image_orientation": list(self.orientation) if self.orientation else None,
        }


@dataclass(frozen=True)
class HeaderRead:
    """An instance's header and, kept apart, whom it is of."""

    header: InstanceHeader
    patient_identifiers: dict[str, Any] = field(default_factory=dict)
    study_identifiers: dict[str, Any] = field(default_factory=dict)


# Who the patient is, and what identifies the visit: stored with the index's
# patient and study rows, never with the series or instances.
PATIENT_KEYWORDS = (
    "PatientID",
    "IssuerOfPatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
)
STUDY_KEYWORDS = ("AccessionNumber", "StudyID", "StudyDescription", "ReferringPhysicianName")


# Elements longer than this are skipped, not read: the pixel data (whatever its
# size) costs a seek, and whether it is there is still known.
_SKIPPED_BYTES = 1024


def read_header(path: Path) -> HeaderRead:
    """The header of the DICOM file at ``path``, its pixel data left unread.

    Raises :class:`~worker.errors.CorruptFileError` when it is not a readable
    DICOM file or names no SOP class.
    """
    try:
        with _warnings_quiet():
            dataset = pydicom.dcmread(path, defer_size=_SKIPPED_BYTES)
            has_pixels = any(keyword in dataset for keyword in _PIXEL_KEYWORDS)
            return header_of(dataset, has_pixels=has_pixels)
    except HEADER_ERRORS as exc:
        reason = str(exc).replace(str(path), "the file")
        raise errors.CorruptFileError(f"not a readable DICOM header: {reason}") from exc


def header_of(dataset: pydicom.Dataset, *, has_pixels: bool) -> HeaderRead:
    """What :func:`read_header` returns, from a dataset already read."""
    file_meta = getattr(dataset, "file_meta", None) or pydicom.Dataset()
    sop_class = str(dataset.get("SOPClassUID", "") or file_meta.get("MediaStorageSOPClassUID", ""))
    sop_instance = str(
        dataset.get("SOPInstanceUID", "") or file_meta.get("MediaStorageSOPInstanceUID", "")
    )
    if not sop_class:
        raise errors.CorruptFileError("not a readable DICOM file: it names no SOP class")
    frame_positions, frame_orientations = _per_frame_geometry(dataset)
    shared = _shared_group(dataset)
    header = InstanceHeader(
        sop_instance_uid=sop_instance,
        sop_class_uid=sop_class,
        series_instance_uid=_text(dataset, "SeriesInstanceUID"),
        study_instance_uid=_text(dataset, "StudyInstanceUID"),
        transfer_syntax_uid=str(file_meta.get("TransferSyntaxUID", "") or ""),
        modality=_text(dataset, "Modality"),
        rows=_whole(dataset, "Rows") or 0,
        columns=_whole(dataset, "Columns") or 0,
        number_of_frames=_whole(dataset, "NumberOfFrames") or 1,
        has_pixels=has_pixels,
        instance_number=_whole(dataset, "InstanceNumber"),
        acquisition_number=_whole(dataset, "AcquisitionNumber"),
        series_number=_whole(dataset, "SeriesNumber"),
        series_description=_text(dataset, "SeriesDescription"),
        body_part=_text(dataset, "BodyPartExamined"),
        study_date=_text(dataset, "StudyDate"),
        series_date=_text(dataset, "SeriesDate"),
        acquisition_date=_text(dataset, "AcquisitionDate"),
        content_date=_text(dataset, "ContentDate"),
        frame_of_reference_uid=_text(dataset, "FrameOfReferenceUID"),
        image_type=tuple(str(v).strip() for v in _values(dataset.get("ImageType"))),
        position=_vector(dataset.get("ImagePositionPatient"), 3)
        or _vector(_group_value(shared, "PlanePositionSequence", "ImagePositionPatient"), 3),
        orientation=_vector(dataset.get("ImageOrientationPatient"), 6)
        or _vector(_group_value(shared, "PlaneOrientationSequence", "ImageOrientationPatient"), 6),
        pixel_spacing=_vector(dataset.get("PixelSpacing"), 2)
        or _vector(_group_value(shared, "PixelMeasuresSequence", "PixelSpacing"), 2),
        frame_positions=frame_positions,
        frame_orientations=frame_orientations,
    )
    return HeaderRead(
        header,
        patient_identifiers=_present(dataset, PATIENT_KEYWORDS),
        study_identifiers=_present(dataset, STUDY_KEYWORDS),
    )


_PIXEL_KEYWORDS = frozenset({"PixelData", "FloatPixelData", "DoubleFloatPixelData"})


def _per_frame_geometry(
    dataset: pydicom.Dataset,
) -> tuple[tuple[Vector | None, ...], tuple[tuple[float, ...] | None, ...]]:
    """Each frame's position and orientation from PerFrameFunctionalGroupsSequence."""
    groups = dataset.get("PerFrameFunctionalGroupsSequence")
    if not groups:
        return (), ()
    positions = tuple(
        _vector(_group_value(group, "PlanePositionSequence", "ImagePositionPatient"), 3)
        for group in groups
    )
    orientations = tuple(
        _vector(_group_value(group, "PlaneOrientationSequence", "ImageOrientationPatient"), 6)
        for group in groups
    )
    return positions, orientations


def _shared_group(dataset: pydicom.Dataset) -> pydicom.Dataset | None:
    shared = dataset.get("SharedFunctionalGroupsSequence")
    return shared[0] if shared else None


def _group_value(group: pydicom.Dataset | None, sequence: str, keyword: str) -> Any:
    if group is None or sequence not in group or not group[sequence].value:
        return None
    return group[sequence].value[0].get(keyword)


def _vector(value: Any, length: int) -> Any:
    """A fixed-length tuple of floats, or None when absent or malformed."""
    numbers = _values(value)
    if len(numbers) != length:
        return None
    try:
        return tuple(float(number) for number in numbers)
    except (TypeError, ValueError):
        return None


def _values(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return list(value)
    return [value]


def _whole(dataset: pydicom.Dataset, keyword: str) -> int | None:
    value = dataset.get(keyword)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(dataset: pydicom.Dataset, keyword: str) -> str:
    return str(dataset.get(keyword, "") or "").strip()


def _present(dataset: pydicom.Dataset, keywords: tuple[str, ...]) -> dict[str, Any]:
    return {k: _text(dataset, k) for k in keywords if _text(dataset, k)}


@contextlib.contextmanager
def _warnings_quiet() -> Iterator[None]:
    """pydicom warns (and logs) about odd values; an index pass over an archive stays quiet."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
