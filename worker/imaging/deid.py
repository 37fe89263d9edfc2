"""De-identification of one DICOM dataset by the Annex E table, pixels included.

Headers: every element, in sequences too, gets its action from
:mod:`worker.imaging.deid_profile`. UIDs are replaced by a keyed HMAC of the
original under a per-installation secret (``2.25.`` and 128 bits): the same
UID always maps to the same new one, across runs and within a study
(FrameOfReferenceUID included, so registrations still hold), and without the
secret a guess cannot be checked by hashing it. Dates are shifted back by a
number of days derived from the patient's ID under the same secret, so
intervals between a patient's studies survive. The patient's name and ID
become one pseudonym, so their studies stay together.

Pixels (Clean Pixel Data): what is known to hold text is blanked first,
whatever is drawn there: for ultrasound everything outside the
SequenceOfUltrasoundRegions, and the boxes of the device region rules that
match the header. Then burned-in text is found by OCR in what survives on
every frame (identical frames read once) and matched against the instance's
own header identifiers; matched words are blanked. Text found but not
matched is listed for review rather than silently kept; BurnedInAnnotation
becomes NO only when every frame was cleaned and nothing is left to review.
The pixel data is written back RLE Lossless: compressed, bit for bit what
was cleaned, and never colour-converted (RGB stays RGB). What RLE cannot
hold is written uncompressed instead, and the reason recorded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataelem import DataElement
from pydicom.uid import UID, ExplicitVRLittleEndian, RLELossless

from worker import errors, ocr
from worker.config import MediaSettings
from worker.extractors.base import errors_mapped_to
from worker.imaging import decoding, rendering
from worker.imaging.deid_profile import Profile, RegionRule
from worker.imaging.headers import HEADER_ERRORS

logger = logging.getLogger(__name__)

_MIN_MATCHED_LENGTH = 3
_BLANK_MARGIN_PX = 2
# Lossless, read by every decoder Sieve has (pydicom, pylibjpeg-rle, GDCM, dcmdrle),
# and unlike JPEG 2000 or JPEG-LS it has no colour transform: RGB is stored as RGB.
_CLEANED_SYNTAX = RLELossless
# What pydicom raises when it will not encode an array (depth, profile, no plug-in).
_ENCODER_REFUSALS = (ValueError, RuntimeError, NotImplementedError)
# The dtypes pydicom's set_pixel_data accepts; 32-bit pixels are written by hand.
_SETTABLE_DTYPES = (np.uint8, np.int8, np.uint16, np.int16)

_Box = tuple[int, int, int, int]  # left, top, right, bottom
_FoundText = tuple[list[_Box], list[dict[str, Any]]]  # matched boxes, unmatched words


@dataclass(frozen=True)
class Pseudonyms:
    """Replacement values derived from the installation's secret: stable, not reversible."""

    secret: bytes

    def _digest(self, kind: str, value: str) -> bytes:
        return hmac.new(self.secret, f"{kind}:{value}".encode(), hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        return "2.25." + str(int.from_bytes(self._digest("uid", original)[:16], "big"))

    def patient(self, patient_id: str) -> str:
        return "SIEVE-" + self._digest("patient", patient_id).hex()[:12].upper()

    def date_offset_days(self, patient_id: str) -> int:
        """How many days this patient's dates move back: 1 to 3650, the same every time."""
        return 1 + int.from_bytes(self._digest("dates", patient_id)[:4], "big") % 3650


@dataclass
class PixelCleaning:
    """What the pixel pass found and did."""

    frames: int = 0
    frames_read: int = 0  # distinct frames OCR'd (identical frames are read once)
    blanked: list[dict[str, Any]] = field(default_factory=list)  # frame, box, why
    review: list[dict[str, Any]] = field(default_factory=list)  # text found, not matched
    regions_kept: int = 0  # ultrasound regions kept (everything else blanked)
    rules_applied: list[str] = field(default_factory=list)  # device region rules that matched
    transfer_syntax: str = ""  # what the cleaned pixels were written as (store_cleaned)
    encoding_notes: list[str] = field(default_factory=list)  # colour decoded, left uncompressed

    @property
    def clean(self) -> bool:
        return self.frames_read > 0 and not self.review

    def as_json(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "frames_read": self.frames_read,
            "blanked": len(self.blanked),
            "review": self.review,
            "ultrasound_regions_kept": self.regions_kept,
            "region_rules": self.rules_applied,
            "transfer_syntax": self.transfer_syntax,
            "encoding_notes": self.encoding_notes,
        }


@dataclass
class Deidentified:
    """One dataset de-identified, and what was replaced (for the mapping table)."""

    dataset: pydicom.Dataset
    uids: dict[str, str] = field(default_factory=dict)  # original → replacement
    patient: tuple[str, str] | None = None  # (original PatientID, pseudonym)
    date_offset_days: int | None = None
    removed: int = 0
    pixels: PixelCleaning | None = None


@dataclass(frozen=True)
class SafePrivate:
    """A private attribute known to hold nothing identifying: group, creator, element byte.

    Written ``"0019,GEMS_ACQU_01,1B"`` in ``SIEVE_DEID__SAFE_PRIVATE``: the
    group, the private creator's value, and the low byte of the element.
    """

    group: int
    creator: str
    element: int

    @classmethod
    def parse(cls, text: str) -> SafePrivate:
        try:
            group, creator, element = (part.strip() for part in text.split(","))
            return cls(int(group, 16), creator, int(element, 16))
        except ValueError:
            raise ValueError(
                f"a safe private attribute is GROUP,CREATOR,ELEMENT in hex, not {text!r}"
            ) from None


def deidentify(
    dataset: pydicom.Dataset,
    profile: Profile,
    pseudonyms: Pseudonyms,
    identifiers: dict[str, Any],
    safe_private: frozenset[SafePrivate] = frozenset(),
) -> Deidentified:
    """``dataset`` de-identified in place by ``profile`` (headers only; pixels: clean_pixels).

    ``identifiers`` are the instance's header identifiers (as
    :func:`worker.extractors.dicom.dicom_identifiers` reads them): what
    Clean Descriptors blanks out of the free text it keeps.
    """
    patient_id = str(dataset.get("PatientID", "") or "")
    result = Deidentified(dataset)
    key = patient_key(dataset)
    result.patient = (patient_id or key, pseudonyms.patient(key))
    offset = pseudonyms.date_offset_days(key)
    fragments = identifier_fragments(identifiers)

    keep_private = safe_private if profile.has("retain-safe-private") else frozenset()

    def visit(item: pydicom.Dataset) -> None:
        for element in list(item):
            if element.tag.is_private and _is_safe_private(item, element, keep_private):
                continue
            if element.tag.is_private or _is_curve_or_overlay(element):
                del item[element.tag]
                result.removed += 1
                continue
            action = profile.action(element.keyword, element.VR)
            if action == "C" and element.VR in ("SQ", "OB", "UN"):
                # Cleaning a sequence is cleaning what it holds; bytes cannot be cleaned.
                action = "K" if element.VR == "SQ" else "X"
            if action == "K":
                if element.VR == "SQ":
                    for child in element.value:
                        visit(child)
                continue
            _apply(item, element, action, result, pseudonyms, offset, fragments)

    visit(dataset)
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta and not profile.has("retain-uids"):
        original = str(meta.MediaStorageSOPInstanceUID)
        meta.MediaStorageSOPInstanceUID = result.uids.setdefault(original, pseudonyms.uid(original))
    if profile.has("retain-dates-modified"):
        result.date_offset_days = offset
    _mark(dataset, profile)
    return result


def patient_key(dataset: pydicom.Dataset) -> str:
    """Whose the instance is: issuer and PatientID, or its study when it names no patient.

    Two patients with one ID from different issuers stay apart; instances
    without a PatientID are not all made one patient.
    """
    patient_id = str(dataset.get("PatientID", "") or "").strip()
    if not patient_id:
        return f"(no PatientID) study {dataset.get('StudyInstanceUID', '')}"
    issuer = str(dataset.get("IssuerOfPatientID", "") or "").strip()
    return f"{issuer}|{patient_id}" if issuer else patient_id


def _is_safe_private(
    item: pydicom.Dataset, element: DataElement, safe: frozenset[SafePrivate]
) -> bool:
    """Whether Retain Safe Private keeps this private element (or the creator of a kept one)."""
    if not safe:
        return False
    group, number = element.tag.group, element.tag.element
    if 0x0010 <= number <= 0x00FF:  # a private creator: kept when one of its elements is
        return any(s.group == group and s.creator == str(element.value).strip() for s in safe)
    creator = item.get((group, number >> 8))
    if creator is None:
        return False
    return SafePrivate(group, str(creator.value).strip(), number & 0xFF) in safe


def _is_curve_or_overlay(element: DataElement) -> bool:
    """Groups 50xx (curves) and 60xx (overlays, where burned-in text can also live): removed."""
    group = element.tag.group
    return 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF


def _apply(
    item: pydicom.Dataset,
    element: DataElement,
    action: str,
    result: Deidentified,
    pseudonyms: Pseudonyms,
    offset: int,
    fragments: list[str],
) -> None:
    if action == "X":
        del item[element.tag]
        result.removed += 1
    elif action == "Z":
        element.value = None if element.VR == "SQ" else ""
    elif action == "D" and element.VR == "UI":  # a dummy UID: the original's replacement
        element.value = _replaced_uids(element.value, result, pseudonyms)
    elif action == "D":
        assert result.patient is not None
        element.value = _dummy(element.VR, result.patient[1])
    elif action == "U":
        element.value = _replaced_uids(element.value, result, pseudonyms)
    elif action == "C":
        element.value = _cleaned(element, offset, fragments)


# D: a dummy value valid for the VR; text gets the patient's pseudonym so records still group.
_DUMMIES: dict[str, Any] = {
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "AS": "000D",
    "CS": "ANONYMIZED",
    "AE": "ANONYMOUS",
    "IS": "0",
    "DS": "0",
    "UR": "",
    "SQ": None,
    "OB": b"",
    "OW": b"",
    "UN": b"",
    **dict.fromkeys(("US", "SS", "UL", "SL", "UV", "SV", "FL", "FD"), 0),
}
_TEXT_LIMITS = {"SH": 16, "LO": 64}


def _dummy(vr: str, pseudonym: str) -> Any:
    if vr == "PN":
        return f"ANONYMOUS^{pseudonym}"
    if vr in _DUMMIES:
        return _DUMMIES[vr]
    return pseudonym[: _TEXT_LIMITS.get(vr, 1024)]


def _replaced_uids(value: Any, result: Deidentified, pseudonyms: Pseudonyms) -> Any:
    if isinstance(value, (list, pydicom.multival.MultiValue)):
        return [_replaced_uids(v, result, pseudonyms) for v in value]
    if not value:
        return value
    original = str(value)
    if UID(original).name != original:
        return value  # a registered SOP class, transfer syntax or coding scheme: not an instance
    return result.uids.setdefault(original, pseudonyms.uid(original))


def _cleaned(element: DataElement, offset: int, fragments: list[str]) -> Any:
    """C: dates moved back by ``offset`` days; free text with identifier values blanked out."""
    if element.VR == "DA":
        return _shifted_dates(element.value, offset, 8)
    if element.VR == "DT":
        return _shifted_dates(element.value, offset, 8)
    if element.VR == "TM":
        return element.value
    text = str(element.value or "")
    for fragment in fragments:
        text = re.sub(re.escape(fragment), "", text, flags=re.IGNORECASE)
    return " ".join(text.split())


def _shifted_dates(value: Any, offset: int, length: int) -> Any:
    if isinstance(value, (list, pydicom.multival.MultiValue)):
        return [_shifted_dates(v, offset, length) for v in value]
    text = str(value or "")
    try:
        day = dt.datetime.strptime(text[:length], "%Y%m%d").date()
    except ValueError:
        return ""  # not a date that can be shifted: removed rather than kept
    return (day - dt.timedelta(days=offset)).strftime("%Y%m%d") + text[length:]


def _mark(dataset: pydicom.Dataset, profile: Profile) -> None:
    """PatientIdentityRemoved, DeidentificationMethod(+CodeSequence), the temporal flag."""
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = ("Sieve: DICOM PS3.15 Annex E, " + ", ".join(profile.options))[
        :64
    ]
    codes = []
    for value, meaning in profile.codes():
        code = pydicom.Dataset()
        code.CodeValue = value
        code.CodingSchemeDesignator = "DCM"
        code.CodeMeaning = meaning
        codes.append(code)
    dataset.DeidentificationMethodCodeSequence = codes
    dataset.LongitudinalTemporalInformationModified = (
        "MODIFIED" if profile.has("retain-dates-modified") else "REMOVED"
    )


def identifier_fragments(identifiers: dict[str, Any]) -> list[str]:
    """Identifier values and each part of a person's name, longest first (what is matched)."""
    fragments: set[str] = set()
    for value in identifiers.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                fragments.add(item.strip())
                fragments.update(part.strip() for part in re.split(r"[\^=,\s]", item))
    return sorted((f for f in fragments if len(f) >= _MIN_MATCHED_LENGTH), key=len, reverse=True)


def clean_pixels(
    path: Path,
    dataset: pydicom.Dataset,
    header: pydicom.Dataset,
    identifiers: dict[str, Any],
    media: MediaSettings,
    region_rules: Sequence[RegionRule] = (),
) -> PixelCleaning:
    """Blank burned-in identifiers in every frame of ``path``'s pixels into ``dataset``.

    ``header`` is the original dataset (for decoding and rendering);
    ``dataset`` the one being de-identified, whose pixel data is replaced.
    In this process: the export runs :func:`cleaned_frames` in the sandbox
    (``worker.sandbox.clean_pixels_isolated``) and then :func:`store_cleaned`.
    """
    frames, cleaning = cleaned_frames(path, header, identifiers, media, region_rules)
    store_cleaned(dataset, frames, header, cleaning)
    return cleaning


def cleaned_frames(
    path: Path,
    header: pydicom.Dataset,
    identifiers: dict[str, Any],
    media: MediaSettings,
    region_rules: Sequence[RegionRule] = (),
) -> tuple[list[np.ndarray], PixelCleaning]:
    """Every frame of ``path`` decoded, with its burned-in identifiers blanked.

    Ultrasound outside its regions and the boxes of every ``region_rules``
    entry that matches the header are blanked first, so the OCR reads only
    what survives them (and text they removed is neither matched nor left for
    review). Frames identical after that are read once. This decodes and OCRs
    untrusted pixel data: run it where a crash costs one instance.
    """
    frame_count = int(header.get("NumberOfFrames", 1) or 1)
    fragments = [_normalised(f) for f in identifier_fragments(identifiers)]
    cleaning = PixelCleaning(frames=frame_count)
    rules = [rule for rule in region_rules if rule.matches(header)]
    cleaning.rules_applied = [rule.name for rule in rules]
    read_by_digest: dict[str, _FoundText] = {}
    frames = []
    with (
        decoding.FrameDecoder(media) as decoder,
        contextlib.closing(decoder.frames(path, header)) as decoded,
    ):
        for index in range(frame_count):
            with errors_mapped_to(
                errors.CorruptFileError,
                HEADER_ERRORS,
                "the DICOM pixel data cannot be decoded (damaged or truncated)",
                source=path,
            ):
                frame = next(decoded, None)
            if frame is None:
                raise errors.CorruptFileError(
                    f"the pixel data holds {index} frame(s); the header says {frame_count}"
                )
            pixels = np.array(frame)
            _blank_known_regions(pixels, index, header, rules, cleaning)
            digest = hashlib.sha256(pixels.tobytes()).hexdigest()
            if digest not in read_by_digest:
                read_by_digest[digest] = _found_text(pixels, header, fragments, media)
                cleaning.frames_read += 1
            _blank_found_text(pixels, index, read_by_digest[digest], cleaning)
            frames.append(pixels)
    return frames, cleaning


def _blank_known_regions(
    pixels: np.ndarray,
    index: int,
    header: pydicom.Dataset,
    rules: Sequence[RegionRule],
    cleaning: PixelCleaning,
) -> None:
    """Blank what is known to hold text, read or not: rule boxes, ultrasound's outside."""
    for rule in rules:
        for left, top, right, bottom in rule.boxes:
            pixels[max(top, 0) : bottom, max(left, 0) : right] = _blank_value(pixels)
            cleaning.blanked.append(
                {"frame": index + 1, "box": [left, top, right, bottom], "rule": rule.name}
            )
    cleaning.regions_kept = _ultrasound_regions(header, pixels)


def _blank_found_text(
    pixels: np.ndarray, index: int, found: _FoundText, cleaning: PixelCleaning
) -> None:
    """Blank the words OCR matched to an identifier; list the others for review."""
    boxes, unmatched = found
    for left, top, right, bottom in boxes:
        pixels[top:bottom, left:right] = _blank_value(pixels)
        cleaning.blanked.append({"frame": index + 1, "box": [left, top, right, bottom]})
    cleaning.review.extend({"frame": index + 1, **entry} for entry in unmatched)


def store_cleaned(
    dataset: pydicom.Dataset,
    frames: list[np.ndarray],
    header: pydicom.Dataset,
    cleaning: PixelCleaning,
) -> None:
    """The cleaned frames as ``dataset``'s pixel data, and BurnedInAnnotation by the outcome.

    Records in ``cleaning`` the transfer syntax written and, when the pixels
    are not stored as RLE Lossless or their colour was converted, why.
    """
    cleaning.transfer_syntax, cleaning.encoding_notes = _store_pixels(dataset, frames, header)
    dataset.BurnedInAnnotation = "NO" if cleaning.clean else "YES"


def _found_text(
    pixels: np.ndarray, header: pydicom.Dataset, fragments: list[str], media: MediaSettings
) -> _FoundText:
    """Boxes of words matching an identifier, and the other words (for review)."""
    picture = rendering.rendered(pixels, header)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    read = ocr.read_text(buffer.getvalue(), media)
    boxes: list[_Box] = []
    unmatched: list[dict[str, Any]] = []
    for word in read.words:
        text = _normalised(word.text)
        box = (
            max(word.left - _BLANK_MARGIN_PX, 0),
            max(word.top - _BLANK_MARGIN_PX, 0),
            word.left + word.width + _BLANK_MARGIN_PX,
            word.top + word.height + _BLANK_MARGIN_PX,
        )
        if len(text) >= _MIN_MATCHED_LENGTH and any(
            text in fragment or fragment in text for fragment in fragments
        ):
            boxes.append(box)
        elif text:
            # Whatever its confidence or script: a misread name is still a name.
            unmatched.append(
                {"text": word.text, "confidence": round(word.confidence, 2), "box": list(box)}
            )
    return boxes, unmatched


def _normalised(text: str) -> str:
    """Letters and digits of any script, upper case (so "Иванов" is matched too)."""
    return re.sub(r"[\W_]", "", text.upper())


def _blank_value(pixels: np.ndarray) -> Any:
    return pixels.min() if pixels.size else 0


def _ultrasound_regions(header: pydicom.Dataset, pixels: np.ndarray) -> int:
    """Ultrasound: blank all but the SequenceOfUltrasoundRegions (where the image is)."""
    if str(header.get("Modality", "")) != "US" or "SequenceOfUltrasoundRegions" not in header:
        return 0
    keep = np.zeros(pixels.shape[:2], dtype=bool)
    regions = header.SequenceOfUltrasoundRegions
    for region in regions:
        keep[
            int(region.RegionLocationMinY0) : int(region.RegionLocationMaxY1) + 1,
            int(region.RegionLocationMinX0) : int(region.RegionLocationMaxX1) + 1,
        ] = True
    pixels[~keep] = _blank_value(pixels)
    return len(regions)


def _store_pixels(
    dataset: pydicom.Dataset, frames: list[np.ndarray], header: pydicom.Dataset
) -> tuple[str, list[str]]:
    """The cleaned frames as RLE Lossless pixel data: the syntax written, and notes.

    Decoded colour is RGB (pydicom converts YBR on decoding), so it is
    labelled RGB and the conversion noted. Pixels RLE refuses are written
    uncompressed (Explicit VR Little Endian), which is lossless too.
    """
    stacked = np.ascontiguousarray(np.stack(frames) if len(frames) > 1 else frames[0])
    colour = int(header.get("SamplesPerPixel", 1)) > 1
    original = str(header.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    photometric = "RGB" if colour else original
    notes = [f"colour decoded from {original} to RGB"] if colour and original != "RGB" else []
    if stacked.dtype.type not in _SETTABLE_DTYPES:
        _set_raw_pixels(dataset, stacked)
        notes.append(f"left uncompressed: {stacked.dtype} pixels are not RLE-encoded here")
        return ExplicitVRLittleEndian, notes
    bits_stored = min(int(header.get("BitsStored", 8) or 8), stacked.dtype.itemsize * 8)
    # set_pixel_data keeps BitsAllocated, BitsStored, HighBit, PixelRepresentation and
    # NumberOfFrames consistent with the array, and drops the encapsulation's offset tables.
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.set_pixel_data(stacked, photometric, max(bits_stored, 1), generate_instance_uid=False)
    try:
        dataset.compress(_CLEANED_SYNTAX, generate_instance_uid=False)
    except _ENCODER_REFUSALS as exc:
        # compress() encodes every frame before it touches the dataset: on a refusal
        # the uncompressed pixel data set above is still there, whole.
        logger.warning("cleaned pixel data left uncompressed: %s", exc)
        notes.append(f"left uncompressed: {_CLEANED_SYNTAX.name} refused it ({exc})"[:500])
        return ExplicitVRLittleEndian, notes
    return _CLEANED_SYNTAX, notes


def _set_raw_pixels(dataset: pydicom.Dataset, stacked: np.ndarray) -> None:
    """32-bit pixels, which set_pixel_data refuses, as native little-endian bytes.

    The header's pixel module already describes them (the decoder returned
    what it declares); only the element and the syntax change.
    """
    for keyword in ("PixelData", "ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if keyword in dataset:
            del dataset[keyword]
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.PixelData = stacked.astype(stacked.dtype.newbyteorder("<"), copy=False).tobytes()
    dataset["PixelData"].VR = "OW"
