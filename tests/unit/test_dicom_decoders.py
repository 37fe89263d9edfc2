"""Every transfer syntax an archive holds decodes, checked against the same image uncompressed.

The compressed files are the real ones shipped in pydicom's wheel (written
by DCMTK, GDCM and others). A lossless syntax must give back exactly the
pixels of its uncompressed twin; a lossy one must come close; the rest must
at least decode to the size the header promises. The plug-ins are the ones
``pyproject.toml`` installs (GDCM, pyjpegls, pylibjpeg with OpenJPEG and RLE),
chosen for their licences (see the README); pylibjpeg-libjpeg, GPL-3.0, is
deliberately not among them.
"""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pydicom.pixels
import pytest

from worker.config import LimitSettings, MediaSettings
from worker.extractors.dicom import DicomExtractor
from worker.imaging import decoding

FILES = Path(pydicom.data.__file__).parent / "test_files"

LOSSLESS_TWINS = [
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),  # JPEG-LS lossless
    ("MR_small_jp2klossless.dcm", "MR_small.dcm"),  # JPEG 2000 lossless
    ("MR_small_RLE.dcm", "MR_small.dcm"),  # RLE
    ("SC_rgb_jpeg_gdcm.dcm", "SC_rgb_rle.dcm"),  # JPEG Lossless, Process 14 SV1
    ("image_dfl.dcm", None),  # deflated explicit VR little endian
]
LOSSY_TWINS = [
    ("SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_rle.dcm", 8.0),  # JPEG Baseline (Process 1)
    ("SC_rgb_jls_lossy_sample.dcm", "SC_rgb_rle.dcm", 8.0),  # JPEG-LS near-lossless
    ("SC_rgb_gdcm_KY.dcm", "SC_rgb_rle.dcm", 8.0),  # JPEG 2000 (lossy)
]
DECODE_ONLY = [
    "JPGExtended.dcm",  # JPEG Extended (Process 2 and 4), 12-bit: through DCMTK
    "JPEG-lossy.dcm",
    "JPEGLSNearLossless_08.dcm",
    "JPEGLSNearLossless_16.dcm",
    "693_J2KI.dcm",
    "JPEG2000.dcm",
    "examples_ybr_color.dcm",  # 30 frames of YBR JPEG Baseline
]


def _pixels(name: str) -> np.ndarray:
    """Every frame of the file, decoded the way the extractors decode (DCMTK as fallback)."""
    path = FILES / name
    with warnings.catch_warnings(), decoding.FrameDecoder(MediaSettings()) as decoder:
        warnings.simplefilter("ignore")
        header = pydicom.dcmread(path, stop_before_pixels=True)
        frames = int(header.get("NumberOfFrames", 1) or 1)
        decoded = [decoder.frame(path, header, index) for index in range(frames)]
    return decoded[0] if frames == 1 else np.stack(decoded)


def _syntax(name: str) -> str:
    return pydicom.dcmread(FILES / name, stop_before_pixels=True).file_meta.TransferSyntaxUID.name


@pytest.mark.parametrize(("compressed", "twin"), LOSSLESS_TWINS)
def test_lossless_syntaxes_give_back_the_exact_pixels(compressed: str, twin: str | None) -> None:
    decoded = _pixels(compressed)
    if twin is None:
        assert decoded.size and decoded.std() > 0, _syntax(compressed)
        return
    assert np.array_equal(decoded, _pixels(twin)), _syntax(compressed)


@pytest.mark.parametrize(("compressed", "twin", "tolerance"), LOSSY_TWINS)
def test_lossy_syntaxes_decode_close_to_the_original(
    compressed: str, twin: str, tolerance: float
) -> None:
    decoded = _pixels(compressed).astype(np.float64)
    original = _pixels(twin).astype(np.float64)
    assert decoded.shape == original.shape
    assert np.abs(decoded - original).mean() < tolerance, _syntax(compressed)


@pytest.mark.parametrize("name", DECODE_ONLY)
def test_other_archive_syntaxes_decode_to_the_promised_size(name: str) -> None:
    header = pydicom.dcmread(FILES / name, stop_before_pixels=True)
    decoded = _pixels(name)
    frames = int(header.get("NumberOfFrames", 1) or 1)
    assert decoded.shape[-3 if header.SamplesPerPixel > 1 else -2 :][:2] == (
        header.Rows,
        header.Columns,
    ) or decoded.shape[1:3] == (header.Rows, header.Columns)
    assert (decoded.shape[0] == frames) if frames > 1 else True


@pytest.mark.parametrize("name", ["SC_rgb_jpeg_gdcm.dcm", "JPGExtended.dcm", "JPEG2000.dcm"])
def test_the_extractor_renders_what_it_once_called_unsupported(name: str, tmp_path: Path) -> None:
    extraction = DicomExtractor().extract(FILES / name, tmp_path, LimitSettings())
    assert extraction.metadata["frames_rendered"] >= 1
    assert "pixels_unreadable" not in extraction.metadata


def test_twelve_bit_jpeg_extended_goes_through_dcmtk_when_no_plug_in_reads_it() -> None:
    path = FILES / "JPGExtended.dcm"
    with pytest.raises((RuntimeError, NotImplementedError)), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pydicom.pixels.pixel_array(path)
    header = pydicom.dcmread(path, stop_before_pixels=True)
    with decoding.FrameDecoder(MediaSettings()) as decoder:
        frame = decoder.frame(path, header, 0)
        scratch = decoder._scratch
        assert scratch is not None and any(scratch.iterdir())
    assert frame.shape == (header.Rows, header.Columns) and 0 < frame.max() < 4096
    assert not scratch.exists(), "the uncompressed copy is removed with the decoder"


def _write_htj2k(path: Path, pixels: np.ndarray, bits_stored: int, scratch: Path) -> Path:
    """``pixels`` encoded losslessly as HTJ2K by OpenJPH's ``ojph_compress``, in a DICOM file.

    No HTJ2K sample ships with pydicom, so one is made here with an encoder that
    is not the decoder under test (OpenJPH writes, OpenJPEG reads).
    """
    max_value = 255 if pixels.dtype == np.uint8 else 65535
    netpbm = scratch / f"{path.stem}.pgm"
    header = f"P5\n{pixels.shape[1]} {pixels.shape[0]}\n{max_value}\n".encode()
    netpbm.write_bytes(header + pixels.astype(">u2" if max_value > 255 else "u1").tobytes())
    codestream = scratch / f"{path.stem}.j2c"
    subprocess.run(
        ["ojph_compress", "-i", str(netpbm), "-o", str(codestream), "-reversible", "true"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = pydicom.uid.HTJ2KLossless
    dataset = pydicom.Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID = pydicom.uid.generate_uid()
    dataset.SeriesInstanceUID = pydicom.uid.generate_uid()
    dataset.Modality = "OT"
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = 8 if max_value == 255 else 16
    dataset.BitsStored = bits_stored
    dataset.HighBit = bits_stored - 1
    dataset.PixelRepresentation = 0
    dataset.PixelData = pydicom.encaps.encapsulate([codestream.read_bytes()])
    dataset["PixelData"].VR = "OB"
    dataset.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize(("dtype", "bits_stored"), [(np.uint8, 8), (np.uint16, 12)])
def test_htj2k_lossless_gives_back_the_exact_pixels(
    dtype: type, bits_stored: int, tmp_path: Path
) -> None:
    generator = np.random.default_rng(7)
    rows, columns = 96, 80
    ramp = np.add.outer(np.arange(rows), np.arange(columns)) * ((2**bits_stored - 1) // 200)
    noise = generator.integers(0, 2 ** (bits_stored - 4), size=(rows, columns))
    original = np.clip(ramp + noise, 0, 2**bits_stored - 1).astype(dtype)
    path = _write_htj2k(tmp_path / "htj2k.dcm", original, bits_stored, tmp_path)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == pydicom.uid.HTJ2KLossless
    with decoding.FrameDecoder(MediaSettings()) as decoder:
        header = pydicom.dcmread(path, stop_before_pixels=True)
        decoded = decoder.frame(path, header, 0)
    np.testing.assert_array_equal(decoded, original)
    extraction = DicomExtractor().extract(path, tmp_path / "artifacts", LimitSettings())
    assert extraction.metadata["frames_rendered"] == 1
    assert "pixels_unreadable" not in extraction.metadata


@pytest.mark.parametrize("name", [compressed for compressed, _twin in LOSSLESS_TWINS] + DECODE_ONLY)
def test_reading_every_frame_in_one_pass_gives_each_frame_as_decoded_alone(name: str) -> None:
    """``frames`` (``iter_pixels``: the file read once) against ``frame`` (one index at a time)."""
    path = FILES / name
    header = pydicom.dcmread(path, stop_before_pixels=True)
    count = int(header.get("NumberOfFrames", 1) or 1)
    with warnings.catch_warnings(), decoding.FrameDecoder(MediaSettings()) as decoder:
        warnings.simplefilter("ignore")
        every = list(decoder.frames(path, header))
        alone = [decoder.frame(path, header, index) for index in range(count)]
    assert len(every) == count
    for together, single in zip(every, alone, strict=True):
        assert together.shape == single.shape and np.array_equal(together, single)
