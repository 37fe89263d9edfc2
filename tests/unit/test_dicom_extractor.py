"""What the DICOM extractor returns and raises, on the real files shipped in pydicom's wheel.

The files are taken straight from the installed package's ``test_files``
directory: ``pydicom.data.get_testdata_file`` would try to download a name it
does not find there, and unit tests never touch the network.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from PIL import Image

from tests import mediagen
from worker import errors
from worker.config import LimitSettings, MediaSettings
from worker.extractors.base import Extraction, SegmentKind
from worker.extractors.dicom import IDENTIFYING_KEYWORDS, DicomExtractor, redact
from worker.extractors.registry import extractor_for
from worker.imaging.rendering import window_to_8_bit

# Runs ffmpeg, Tesseract or Whisper: deselect with -m "not tools".
pytestmark = pytest.mark.tools

PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def pydicom_file(name: str) -> Path:
    path = PYDICOM_FILES / name
    assert path.is_file(), f"{name} is not in the installed pydicom wheel"
    return path


@pytest.fixture
def artifacts_dir(tmp_path: Path) -> Path:
    return tmp_path / "artifacts" / "1f2e3d"


@pytest.fixture
def limits() -> LimitSettings:
    return LimitSettings()


@pytest.fixture
def ct_extraction(artifacts_dir: Path, limits: LimitSettings) -> Extraction:
    return DicomExtractor().extract(pydicom_file("CT_small.dcm"), artifacts_dir, limits)


def everything_but_identifiers(extraction: Extraction) -> str:
    """All text that can reach a prompt: metadata and every segment's label and text."""
    parts = [json.dumps(extraction.metadata, default=str)]
    parts += [segment.label + "\n" + segment.text for segment in extraction.segments]
    return "\n".join(parts)


def test_the_dicom_extractor_is_chosen_for_application_dicom() -> None:
    assert isinstance(extractor_for("application/dicom"), DicomExtractor)


# --- metadata and identifiers ------------------------------------------------------------


def test_clinical_metadata_lands_in_metadata(ct_extraction: Extraction) -> None:
    metadata = ct_extraction.metadata

    assert metadata["modality"] == "CT"
    assert metadata["sop_class"] == "CT Image Storage"
    assert metadata["study_instance_uid"] == "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
    assert metadata["series_instance_uid"].startswith("1.3.6.1.4.1.5962.1.3.1.1")
    assert metadata["sop_instance_uid"].startswith("1.3.6.1.4.1.5962.1.1.1.1.1")
    assert metadata["study_date"] == "20040119"
    assert (metadata["rows"], metadata["columns"]) == (128, 128)
    assert metadata["number_of_frames"] == 1
    assert metadata["photometric_interpretation"] == "MONOCHROME2"
    assert metadata["frames_rendered"] == 1
    assert ct_extraction.extractor == "dicom/1"
    assert ct_extraction.media_type == "application/dicom"


def test_the_window_of_an_instance_is_recorded(artifacts_dir: Path, limits: LimitSettings) -> None:
    extraction = DicomExtractor().extract(pydicom_file("MR_small.dcm"), artifacts_dir, limits)

    assert extraction.metadata["window_center"] == 600.0
    assert extraction.metadata["window_width"] == 1600.0
    assert extraction.metadata["modality"] == "MR"


def test_identifiers_go_to_identifiers_and_nowhere_else(ct_extraction: Extraction) -> None:
    identifiers = ct_extraction.identifiers

    assert identifiers["PatientName"] == "CompressedSamples^CT1"
    assert identifiers["PatientID"] == "1CT1"
    assert identifiers["InstitutionName"] == "JFK IMAGING CENTER"
    assert identifiers["StationName"] == "CT01_OC0"
    assert [item["PatientID"] for item in identifiers["OtherPatientIDsSequence"]] == [
        "ABCD1234",
        "1234ABCD",
    ]
    exposed = everything_but_identifiers(ct_extraction)
    for value in ("CompressedSamples", "1CT1", "JFK IMAGING", "CT01_OC0", "ABCD1234"):
        assert value not in exposed
    assert set(identifiers) <= set(IDENTIFYING_KEYWORDS)
    json.dumps(identifiers)  # stored as JSON: plain data only


def test_identifiers_reach_segment_text_only_when_the_setting_allows(
    artifacts_dir: Path, limits: LimitSettings
) -> None:
    media = MediaSettings(dicom_identifiers_in_prompt=True, ocr_enabled=False)

    extraction = DicomExtractor().extract(
        pydicom_file("CT_small.dcm"), artifacts_dir, limits, media
    )

    assert "CompressedSamples^CT1" in extraction.segments[0].text
    assert "CompressedSamples" not in json.dumps(extraction.metadata, default=str)


def test_every_identifying_keyword_is_a_real_dicom_keyword() -> None:
    assert all(
        pydicom.datadict.tag_for_keyword(keyword) is not None for keyword in IDENTIFYING_KEYWORDS
    )
    assert len(set(IDENTIFYING_KEYWORDS)) == len(IDENTIFYING_KEYWORDS)


# --- rendered frames -----------------------------------------------------------------------


def test_the_pixels_are_rendered_to_a_png_segment_citing_the_instance(
    ct_extraction: Extraction, artifacts_dir: Path
) -> None:
    (segment,) = ct_extraction.segments

    assert segment.kind is SegmentKind.image
    assert segment.label == "instance 1 frame 1"
    assert segment.artifact_path == "frame-00001.png"
    saved = artifacts_dir / segment.artifact_path
    assert saved.read_bytes()[:8] == PNG_MAGIC
    with Image.open(saved) as image:
        assert image.size == (128, 128)
        pixels = np.asarray(image)
    assert pixels.min() < 30 and pixels.max() > 220  # the full grey range is used
    assert segment.text.startswith("DICOM CT image")


def test_a_multiframe_instance_is_sampled_evenly_up_to_the_setting(
    artifacts_dir: Path, limits: LimitSettings
) -> None:
    media = MediaSettings(dicom_max_frames=4, ocr_enabled=False)

    extraction = DicomExtractor().extract(pydicom_file("rtdose.dcm"), artifacts_dir, limits, media)

    assert extraction.metadata["number_of_frames"] == 15
    assert [segment.label for segment in extraction.segments] == [
        "frame 1",
        "frame 6",
        "frame 10",
        "frame 15",
    ]  # this dose grid has no instance number
    assert "15 frames" in extraction.segments[0].text


def test_colour_instances_are_rendered_in_colour(
    artifacts_dir: Path, limits: LimitSettings
) -> None:
    media = MediaSettings(ocr_enabled=False)

    extraction = DicomExtractor().extract(
        pydicom_file("SC_rgb_rle_2frame.dcm"), artifacts_dir, limits, media
    )

    assert len(extraction.segments) == 2
    with Image.open(artifacts_dir / extraction.segments[0].artifact_path) as image:
        assert image.mode == "RGB"
        assert image.getpixel((50, 5)) == (255, 0, 0)  # the first rows are pure red


def test_an_instance_without_pixel_data_gives_metadata_and_no_segments(
    artifacts_dir: Path, limits: LimitSettings
) -> None:
    extraction = DicomExtractor().extract(pydicom_file("rtplan.dcm"), artifacts_dir, limits)

    assert extraction.segments == []
    assert extraction.metadata["modality"] == "RTPLAN"
    assert extraction.metadata["has_pixel_data"] is False
    assert extraction.identifiers["PatientName"] == "Last^First^mid^pre"


def test_the_linear_window_maps_centre_to_mid_grey_and_clips_outside() -> None:
    values = np.array([[-1000.0, 40.0, 1000.0]])

    rendered = np.asarray(window_to_8_bit(values, center=40.0, width=400.0))

    assert rendered[0, 0] == 0
    assert 126 <= rendered[0, 1] <= 129
    assert rendered[0, 2] == 255


def test_burned_in_identifiers_are_redacted_from_ocr_text() -> None:
    identifiers = {"PatientName": "Okafor^Adaeze", "PatientID": "MRN-55821", "PatientSex": "F"}
    burned_in = "OKAFOR ADAEZE  MRN-55821  F  L-spine lateral"

    redacted = redact(burned_in, identifiers)

    assert "OKAFOR" not in redacted and "ADAEZE" not in redacted and "55821" not in redacted
    assert "L-spine lateral" in redacted


@pytest.mark.slow
def test_burned_in_text_is_ocrd_and_the_patient_name_redacted(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = tmp_path / "burned-in.dcm"
    dataset = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    picture = mediagen.text_image(["COMPRESSEDSAMPLES", "LEFT KNEE LATERAL"], (900, 260))
    grey = np.asarray(picture.convert("L"))
    dataset.Rows, dataset.Columns = grey.shape
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit, dataset.PixelRepresentation = 7, 0
    dataset.PixelData = grey.tobytes()
    for keyword in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
        if keyword in dataset:
            delattr(dataset, keyword)
    dataset.save_as(source)

    extraction = DicomExtractor().extract(source, artifacts_dir, limits)

    text = extraction.segments[0].text
    assert "LEFT KNEE LATERAL" in text
    assert "COMPRESSEDSAMPLES" not in text.upper()
    assert "[redacted]" in text


# --- files that cannot be read ----------------------------------------------------------------


def test_an_invalid_value_for_its_vr_is_a_corrupt_file(
    artifacts_dir: Path, limits: LimitSettings
) -> None:
    with pytest.raises(errors.CorruptFileError) as raised:
        DicomExtractor().extract(pydicom_file("badVR.dcm"), artifacts_dir, limits)

    assert raised.value.code == "corrupt_file"
    assert "NumberOfFrames" in raised.value.message
    assert "'1A'" in raised.value.message


def test_truncated_pixel_data_is_a_corrupt_file(artifacts_dir: Path, limits: LimitSettings) -> None:
    source = pydicom_file("MR_truncated.dcm")

    with pytest.raises(errors.CorruptFileError) as raised:
        DicomExtractor().extract(source, artifacts_dir, limits)

    assert "pixel data cannot be decoded" in raised.value.message
    assert str(source) not in raised.value.message


def test_a_file_that_is_not_dicom_is_a_corrupt_file(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = tmp_path / "2a9b"
    source.write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 40)

    with pytest.raises(errors.CorruptFileError) as raised:
        DicomExtractor().extract(source, artifacts_dir, limits)

    assert "not a readable DICOM file" in raised.value.message


def test_pixel_data_no_installed_decoder_reads_is_reviewed_from_its_header(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    # An endoscopy clip stored as MPEG-2 video: no pixel decoder reads it, by design.
    dataset = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.MPEG2MPML
    dataset.PixelData = pydicom.encaps.encapsulate([b"\x00\x00\x01\xb3" + bytes(200)])
    dataset["PixelData"].VR = "OB"
    source = tmp_path / "clip.dcm"
    dataset.save_as(source)

    extraction = DicomExtractor().extract(source, artifacts_dir, limits)

    (segment,) = extraction.segments
    assert segment.kind == SegmentKind.part and segment.artifact_path is None
    assert "DICOM CT image" in segment.text
    assert "MPEG2" in segment.text and "header alone" in segment.text
    assert "MPEG2" in extraction.metadata["pixels_unreadable"]
    assert extraction.metadata["frames_rendered"] == 0
    assert extraction.identifiers["PatientName"] == "CompressedSamples^CT1"


def test_frames_larger_than_the_image_limit_are_refused(artifacts_dir: Path) -> None:
    with pytest.raises(errors.LimitExceededError):
        DicomExtractor().extract(
            pydicom_file("CT_small.dcm"), artifacts_dir, LimitSettings(max_image_pixels=10_000)
        )
