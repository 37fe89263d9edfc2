"""DICOM: clinical metadata, rendered frames, and identifiers kept apart.

A DICOM instance carries two very different kinds of data: what the image is
(modality, body part, study and series, geometry) and whom it is of (the
patient, the staff, the institution). The first goes into ``metadata`` and
segment text; the second, the attributes the DICOM confidentiality profile
removes, goes only into :attr:`Extraction.identifiers`, which the pipeline
stores apart and keeps out of prompts unless
``MediaSettings.dicom_identifiers_in_prompt`` says otherwise. Text burned into
the pixels is OCR'd, and identifier values found in it are redacted under the
same rule.

Pixels are rendered with the instance's own window (its window centre and
width, or its VOI LUT), falling back to the full range of the frame; only the
frames to be rendered are decoded, straight from the file.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.errors
import pydicom.pixels

from worker import errors, ocr, pictures
from worker.config import LimitSettings, MediaSettings
from worker.extractors import registry
from worker.extractors.base import (
    ExtractedSegment,
    Extraction,
    Extractor,
    SegmentKind,
    errors_mapped_to,
)
from worker.imaging import decoding, rendering
from worker.imaging.headers import HEADER_ERRORS

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/dicom"

# Identifying attributes: the Basic Profile of DICOM PS3.15 Annex E, Table
# E.1-1 ("Application Level Confidentiality Profile Attributes"), limited to
# the attributes that name or describe a person, an institution or a device,
# or are free text that may do so. Two groups that profile also removes are
# kept in ``metadata`` on purpose: the UIDs (they identify the study, not the
# patient, and are needed to cite and group images) and the study/series dates
# (needed to order them). StudyDescription is left out of both places.
IDENTIFYING_KEYWORDS: tuple[str, ...] = (
    # the patient
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientSex",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "PatientMotherBirthName",
    "PatientBirthName",
    "OtherPatientIDs",
    "OtherPatientNames",
    "OtherPatientIDsSequence",
    "ReferencedPatientSequence",
    "ReferencedPatientPhotoSequence",
    "PatientSexNeutered",
    "MilitaryRank",
    "BranchOfService",
    "EthnicGroup",
    "Occupation",
    "PatientReligiousPreference",
    "CountryOfResidence",
    "RegionOfResidence",
    "PatientInsurancePlanCodeSequence",
    "MedicalRecordLocator",
    "ResponsiblePerson",
    "ResponsibleOrganization",
    "AdditionalPatientHistory",
    "PatientComments",
    "MedicalAlerts",
    "Allergies",
    "PregnancyStatus",
    "SmokingStatus",
    "LastMenstrualDate",
    "PatientState",
    "CurrentPatientLocation",
    "PatientInstitutionResidence",
    "AdmittingDiagnosesDescription",
    "DischargeDiagnosisDescription",
    "AdmissionID",
    "IssuerOfAdmissionID",
    "ServiceEpisodeID",
    # the order and the visit
    "AccessionNumber",
    "IssuerOfAccessionNumberSequence",
    "StudyID",
    "RequestedProcedureID",
    "ScheduledProcedureStepID",
    "PerformedProcedureStepID",
    "FillerOrderNumberImagingServiceRequest",
    "PlacerOrderNumberImagingServiceRequest",
    "RequestAttributesSequence",
    "ReasonForStudy",
    "ReasonForTheRequestedProcedure",
    "RequestedProcedureDescription",
    "RequestedProcedureComments",
    "ImagingServiceRequestComments",
    "ScheduledProcedureStepDescription",
    "PerformedProcedureStepDescription",
    "StudyComments",
    "ImageComments",
    "DerivationDescription",
    "ProtocolName",
    "SourceImageSequence",
    # staff
    "ReferringPhysicianName",
    "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers",
    "ReferringPhysicianIdentificationSequence",
    "PhysiciansOfRecord",
    "PhysiciansOfRecordIdentificationSequence",
    "PerformingPhysicianName",
    "PerformingPhysicianIdentificationSequence",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansReadingStudyIdentificationSequence",
    "OperatorsName",
    "OperatorIdentificationSequence",
    "RequestingPhysician",
    "RequestingService",
    "ScheduledPerformingPhysicianName",
    "ScheduledPerformingPhysicianIdentificationSequence",
    "ContentCreatorName",
    "VerifyingObserverName",
    "VerifyingOrganization",
    "PersonName",
    "PersonAddress",
    "PersonTelephoneNumbers",
    "OrderEnteredBy",
    "OrderEntererLocation",
    "OrderCallbackPhoneNumber",
    "InterpretationRecorder",
    "InterpretationTranscriber",
    "InterpretationAuthor",
    "DistributionName",
    "DistributionAddress",
    "ReviewerName",
    # the institution and its equipment
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "InstitutionCodeSequence",
    "StationName",
    "PerformedStationName",
    "PerformedLocation",
    "ScheduledStationName",
    "ScheduledStationAETitle",
    "PerformedStationAETitle",
    "DeviceSerialNumber",
    "PlateID",
    "DetectorID",
    "GantryID",
    "CassetteID",
)

# Non-identifying attributes stored as metadata, under Sieve's names.
_METADATA_KEYWORDS = {
    "Modality": "modality",
    "SOPClassUID": "sop_class_uid",
    "SOPInstanceUID": "sop_instance_uid",
    "StudyInstanceUID": "study_instance_uid",
    "SeriesInstanceUID": "series_instance_uid",
    "StudyDate": "study_date",
    "SeriesDate": "series_date",
    "SeriesDescription": "series_description",
    "SeriesNumber": "series_number",
    "InstanceNumber": "instance_number",
    "BodyPartExamined": "body_part",
    "Manufacturer": "manufacturer",
    "Rows": "rows",
    "Columns": "columns",
    "PhotometricInterpretation": "photometric_interpretation",
    "BitsStored": "bits_stored",
    "WindowCenter": "window_center",
    "WindowWidth": "window_width",
}

# Elements larger than this are left on disk until needed: the pixel data is
# then read frame by frame from the file, never all at once.
_DEFER_BYTES = 64 * 1024

# What pydicom raises for a file it cannot parse or a pixel stream it cannot
# decode (short data is a ValueError, a damaged header often a struct.error).
PYDICOM_ERRORS = HEADER_ERRORS

# Identifier fragments shorter than this are not redacted from OCR text: a
# two-letter initial would blank out half the words on an image.
_MIN_REDACTED_LENGTH = 3
_REDACTED = "[redacted]"


@registry.register
class DicomExtractor(Extractor):
    """Reads DICOM instances with pydicom: metadata, identifiers and rendered frames."""

    name = "dicom"
    version = "1"
    media_types = frozenset({MEDIA_TYPE})
    score = 100

    def extract(
        self,
        source: Path,
        artifacts_dir: Path,
        limits: LimitSettings,
        media: MediaSettings = MediaSettings(),
    ) -> Extraction:
        """One ``image`` segment per rendered frame (``frame-NNNNN.png``).

        A multi-frame instance is sampled: at most ``media.dicom_max_frames``
        frames, evenly spaced. Each segment is labelled after the instance
        ("instance 3 frame 1"); its text is a short description (modality,
        body part, series) plus any burned-in text OCR finds. An instance with
        no pixel data (a structured report, a plan) gives no segments.
        Identifiers go only into ``identifiers`` unless
        ``media.dicom_identifiers_in_prompt`` is true.

        Raises :class:`~worker.errors.CorruptFileError` when the file is not
        valid DICOM, an attribute describing the pixels is invalid, or the
        pixel data cannot be decoded (truncated, say), and
        :class:`~worker.errors.LimitExceededError` for frames larger than
        ``limits.max_image_pixels``.
        """
        if not source.is_file():
            raise FileNotFoundError(source)
        with pydicom_warnings_logged():
            with errors_mapped_to(
                errors.CorruptFileError, PYDICOM_ERRORS, "not a readable DICOM file", source=source
            ):
                dataset = pydicom.dcmread(source, defer_size=_DEFER_BYTES)
            _check_is_an_instance(dataset)
            identifiers = dicom_identifiers(dataset)
            metadata = _dicom_metadata(dataset)
            segments: list[ExtractedSegment] = []
            if "PixelData" in dataset:
                try:
                    segments = _render_frames(
                        source, dataset, identifiers, artifacts_dir, limits, media
                    )
                except errors.UnsupportedTypeError as exc:
                    metadata["pixels_unreadable"] = exc.message
                    segments = [header_only_segment(dataset, exc.message)]
        metadata["frames_rendered"] = sum(1 for s in segments if s.kind == SegmentKind.image)
        return Extraction(
            extractor=self.qualified_name(),
            media_type=MEDIA_TYPE,
            segments=segments,
            metadata=metadata,
            identifiers=identifiers,
        )


def header_only_segment(dataset: pydicom.Dataset, why: str) -> ExtractedSegment:
    """What is left to review when the pixels cannot be decoded: the header, saying so."""
    frame_count = _integer_attribute(dataset, "NumberOfFrames", default=1)
    return ExtractedSegment(
        kind=SegmentKind.part,
        index=0,
        label=_frame_label(dataset, 0).replace("frame 1", "header"),
        text=(
            f"{_description(dataset, frame_count)}\nNote: {why}; the images were not seen, "
            "this is the header alone."
        ),
        attributes={"pixels_unreadable": True},
    )


def dicom_identifiers(dataset: pydicom.Dataset) -> dict[str, Any]:
    """The :data:`IDENTIFYING_KEYWORDS` present with a value, as JSON-ready data."""
    found: dict[str, Any] = {}
    for keyword in IDENTIFYING_KEYWORDS:
        value = _json_value(dataset.get(keyword))
        if value not in ("", [], None):
            found[keyword] = value
    return found


@contextlib.contextmanager
def pydicom_warnings_logged() -> Iterator[None]:
    """pydicom's warnings about odd values kept from being printed or raised.

    pydicom already logs each one on its own logger (``warn_and_log``), so
    here they are only repeated at debug level.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        logger.debug("pydicom: %s", warning.message)


def _check_is_an_instance(dataset: pydicom.Dataset) -> None:
    """Refuse what pydicom parsed without complaint but is no DICOM instance.

    pydicom reads leniently: bytes after a "DICM" preamble can come back as an
    empty dataset. Every storable instance names its SOP class, in the file
    meta information or in the dataset itself.
    """
    file_meta = getattr(dataset, "file_meta", None)
    if "SOPClassUID" not in dataset and (
        file_meta is None or "MediaStorageSOPClassUID" not in file_meta
    ):
        raise errors.CorruptFileError(
            "not a readable DICOM file: it names no SOP class (damaged, or not DICOM at all)"
        )


def _render_frames(
    source: Path,
    dataset: pydicom.Dataset,
    identifiers: dict[str, Any],
    artifacts_dir: Path,
    limits: LimitSettings,
    media: MediaSettings,
) -> list[ExtractedSegment]:
    """Decode the sampled frames from ``source`` and turn each into a segment."""
    rows, columns = _pixel_geometry(dataset)
    pictures.check_pixel_count(columns, rows, limits, "each frame of the DICOM instance")
    frame_count = _integer_attribute(dataset, "NumberOfFrames", default=1)
    chosen = pictures.evenly_spaced(frame_count, media.dicom_max_frames)
    description = _description(dataset, frame_count)
    if media.dicom_identifiers_in_prompt and identifiers:
        description += "\nIdentifiers: " + "; ".join(
            f"{key}: {value}" for key, value in identifiers.items()
        )
    segments = []
    frames = _decoded_frames(source, dataset, chosen, media)
    for index, (frame_number, pixels) in enumerate(zip(chosen, frames, strict=True)):
        picture = rendering.rendered(pixels, dataset)
        artifact_name = f"frame-{frame_number + 1:05d}.png"
        png = pictures.save_png(picture, artifacts_dir / artifact_name)
        burned_in, attributes = ocr.segment_text(png, media)
        if not media.dicom_identifiers_in_prompt:
            burned_in = redact(burned_in, identifiers)
        text = description + (f"\nText in the image: {burned_in}" if burned_in.strip() else "")
        segments.append(
            ExtractedSegment(
                kind=SegmentKind.image,
                index=index,
                label=_frame_label(dataset, frame_number),
                text=text,
                artifact_path=artifact_name,
                attributes={
                    "width": picture.width,
                    "height": picture.height,
                    "sop_instance_uid": str(dataset.get("SOPInstanceUID", "")),
                    "frame": frame_number + 1,
                    **attributes,
                },
            )
        )
    return segments


def _decoded_frames(
    source: Path, dataset: pydicom.Dataset, chosen: list[int], media: MediaSettings
) -> list[np.ndarray]:
    """The pixels of frames ``chosen``, read from the file one frame at a time.

    Raises :class:`~worker.errors.UnsupportedTypeError` when the pixel data
    is compressed in a way no installed decoder (nor DCMTK) reads, and
    CorruptFileError when the data itself is damaged.
    """
    with (
        decoding.FrameDecoder(media) as decoder,
        errors_mapped_to(
            errors.CorruptFileError,
            PYDICOM_ERRORS,
            "the DICOM pixel data cannot be decoded (damaged or truncated)",
            source=source,
        ),
    ):
        return [decoder.frame(source, dataset, index) for index in chosen]


def redact(text: str, identifiers: dict[str, Any]) -> str:
    """``text`` with every identifier value (and each part of a person's name) blanked out."""
    fragments = set()
    for value in identifiers.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                fragments.add(item.strip())
                fragments.update(part.strip() for part in re.split(r"[\^=,]", item))
    for fragment in sorted(fragments, key=len, reverse=True):
        if len(fragment) >= _MIN_REDACTED_LENGTH:
            text = re.sub(re.escape(fragment), _REDACTED, text, flags=re.IGNORECASE)
    return text


def _pixel_geometry(dataset: pydicom.Dataset) -> tuple[int, int]:
    """Rows and columns, which pixel data cannot be read without."""
    rows = _integer_attribute(dataset, "Rows", default=0)
    columns = _integer_attribute(dataset, "Columns", default=0)
    if rows <= 0 or columns <= 0:
        raise errors.CorruptFileError(
            f"the DICOM file has pixel data but no valid size (rows {rows}, columns {columns})"
        )
    return rows, columns


def _integer_attribute(dataset: pydicom.Dataset, keyword: str, *, default: int) -> int:
    """An integer attribute; CorruptFileError when it holds something else (a bad VR value)."""
    value = dataset.get(keyword)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise errors.CorruptFileError(
            f"the DICOM attribute {keyword} holds {str(value)!r}, which is not a whole number "
            "(an invalid value for its VR)"
        ) from exc


def _description(dataset: pydicom.Dataset, frame_count: int) -> str:
    """A short, non-identifying caption: modality, body part, series, frame count."""
    modality = str(dataset.get("Modality", "") or "unknown modality")
    parts = [f"DICOM {modality} image"]
    if body_part := str(dataset.get("BodyPartExamined", "") or "").strip():
        parts.append(f"body part {body_part}")
    if series := str(dataset.get("SeriesDescription", "") or "").strip():
        parts.append(f"series {series!r}")
    if frame_count > 1:
        parts.append(f"{frame_count} frames")
    return ", ".join(parts) + "."


def _frame_label(dataset: pydicom.Dataset, frame_number: int) -> str:
    """What a result cites: the instance number when there is one, and the 1-based frame."""
    instance = str(dataset.get("InstanceNumber", "") or "").strip()
    prefix = f"instance {instance} " if instance else ""
    return f"{prefix}frame {frame_number + 1}"


def _dicom_metadata(dataset: pydicom.Dataset) -> dict[str, Any]:
    """The non-identifying attributes in :data:`_METADATA_KEYWORDS` that have a value."""
    metadata: dict[str, Any] = {}
    for keyword, key in _METADATA_KEYWORDS.items():
        value = _json_value(dataset.get(keyword))
        if value not in ("", [], None):
            metadata[key] = value
    if sop_class := dataset.get("SOPClassUID"):
        metadata["sop_class"] = getattr(sop_class, "name", str(sop_class))
    metadata["number_of_frames"] = _integer_attribute(dataset, "NumberOfFrames", default=1)
    metadata["transfer_syntax"] = str(getattr(dataset.file_meta, "TransferSyntaxUID", "") or "")
    metadata["has_pixel_data"] = "PixelData" in dataset
    return metadata


def _json_value(value: Any) -> Any:
    """A DICOM value as JSON-ready data: strings, numbers, lists, dicts for sequence items."""
    if value is None:
        return None
    if isinstance(value, pydicom.Sequence):
        return [
            {element.keyword or str(element.tag): _json_value(element.value) for element in item}
            for item in value
        ]
    if isinstance(value, pydicom.multival.MultiValue):
        return [_json_value(item) for item in value]
    # pydicom's IS and DS values subclass int and float; store the plain numbers.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value).strip()
