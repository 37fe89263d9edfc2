"""Media types are decided by content, never by the file's name."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import mediagen, pdfgen
from worker import errors
from worker.media_types import detect_media_type


def write(directory: Path, name: str, content: bytes) -> Path:
    path = directory / name
    path.write_bytes(content)
    return path


def test_a_generated_pdf_is_application_pdf(tmp_path: Path) -> None:
    source = pdfgen.make_text_pdf(tmp_path / "memo.pdf", pdfgen.MEMO_PAGES)

    assert detect_media_type(source) == "application/pdf"


def test_a_pdf_header_after_a_preamble_within_the_first_kib_is_still_a_pdf(tmp_path: Path) -> None:
    preamble = b"X-Mailer: scanner gateway\r\n" * 30  # 810 bytes of junk first
    source = write(tmp_path, "doc", preamble + b"%PDF-1.4\n1 0 obj\n")

    assert detect_media_type(source) == "application/pdf"


def test_a_pdf_header_beyond_the_first_kib_does_not_make_a_pdf(tmp_path: Path) -> None:
    source = write(tmp_path, "notes.txt", b"a" * 1100 + b"%PDF-1.4\n")

    assert detect_media_type(source) == "text/plain"


def test_the_name_does_not_matter_a_pdf_called_txt_is_a_pdf(tmp_path: Path) -> None:
    pdf = pdfgen.make_text_pdf(tmp_path / "real.pdf", ["Quarterly figures attached."])
    source = write(tmp_path, "innocent.txt", pdf.read_bytes())

    assert detect_media_type(source) == "application/pdf"


def test_the_name_does_not_matter_text_called_pdf_is_text(tmp_path: Path) -> None:
    source = write(tmp_path, "report.pdf", b"Dear team,\nthe report is late.\n")

    assert detect_media_type(source) == "text/plain"


def test_a_file_without_any_extension_is_detected(tmp_path: Path) -> None:
    pdf = pdfgen.make_text_pdf(tmp_path / "real.pdf", ["Minutes of the March meeting."])
    source = write(tmp_path, "3f9ac0de", pdf.read_bytes())

    assert detect_media_type(source) == "application/pdf"


def test_a_zero_byte_file_raises_empty_file_error(tmp_path: Path) -> None:
    source = write(tmp_path, "empty.pdf", b"")

    with pytest.raises(errors.EmptyFileError) as raised:
        detect_media_type(source)

    assert raised.value.code == "empty_file"
    assert "empty.pdf" in raised.value.message


def test_utf8_text_with_accents_is_plain_text(tmp_path: Path) -> None:
    source = write(tmp_path, "note", "Réunion à 9 h, café offert. Grüße, Zoë\n".encode())

    assert detect_media_type(source) == "text/plain"


def test_text_whose_first_64_kib_end_inside_a_multibyte_character_is_still_text(
    tmp_path: Path,
) -> None:
    # 65535 ASCII bytes, then a 2-byte "é" straddling the 64 KiB boundary.
    content = b"a" * (64 * 1024 - 1) + "é and more text\n".encode()
    source = write(tmp_path, "long.txt", content)

    assert detect_media_type(source) == "text/plain"


def test_text_containing_a_nul_byte_is_not_text(tmp_path: Path) -> None:
    source = write(tmp_path, "data.txt", b"name=value\x00\x00\x01\x02")

    assert detect_media_type(source) == "application/octet-stream"


def test_bytes_that_are_not_valid_utf8_are_not_text(tmp_path: Path) -> None:
    source = write(tmp_path, "latin1.txt", "Café crème, 12 €".encode("cp1252"))

    assert detect_media_type(source) == "application/octet-stream"


def test_unrecognised_binary_is_octet_stream(tmp_path: Path) -> None:
    source = write(tmp_path, "blob.bin", bytes([0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0]) + b"\x00" * 64)

    assert detect_media_type(source) == "application/octet-stream"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png", id="png"),
        pytest.param(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg", id="jpeg"),
        pytest.param(b"GIF87a\x01\x00\x01\x00", "image/gif", id="gif87a"),
        pytest.param(b"GIF89a\x01\x00\x01\x00", "image/gif", id="gif89a"),
        pytest.param(b"II*\x00\x08\x00\x00\x00", "image/tiff", id="tiff-little-endian"),
        pytest.param(b"MM\x00*\x00\x00\x00\x08", "image/tiff", id="tiff-big-endian"),
        pytest.param(b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp", id="webp"),
        pytest.param(b"PK\x03\x04\x14\x00\x00\x00", "application/zip", id="zip"),
        pytest.param(b"PK\x05\x06" + b"\x00" * 18, "application/zip", id="empty-zip"),
        pytest.param(b"\x00" * 128 + b"DICM\x02\x00\x00\x00", "application/dicom", id="dicom"),
        pytest.param(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video/mp4", id="mp4"),
        pytest.param(b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00", "video/quicktime", id="mov"),
        pytest.param(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00", "audio/mp4", id="m4a"),
        pytest.param(
            b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video/webm", id="webm"
        ),
        pytest.param(
            b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska",
            "video/x-matroska",
            id="matroska",
        ),
        pytest.param(b"RIFF\x24\x08\x00\x00WAVEfmt ", "audio/wav", id="wav"),
        pytest.param(b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg", id="mp3-id3"),
        pytest.param(b"\xff\xfb\x90\x64\x00\x00\x00\x00", "audio/mpeg", id="mp3-frame-sync"),
        pytest.param(b"OggS\x00\x02\x00\x00\x00\x00", "audio/ogg", id="ogg"),
        pytest.param(b"fLaC\x00\x00\x00\x22", "audio/flac", id="flac"),
        pytest.param(b"RIFF\x24\x08\x00\x00AVI LIST", "video/x-msvideo", id="avi"),
        pytest.param(b"FLV\x01\x05\x00\x00\x00\x09", "video/x-flv", id="flv"),
        pytest.param(
            bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"), "video/x-ms-asf", id="asf-wmv"
        ),
        pytest.param(b"\x00\x00\x01\xba\x44\x00\x04\x00", "video/mpeg", id="mpeg-ps"),
        pytest.param(b"FORM\x00\x00\x10\x00AIFFCOMM", "audio/x-aiff", id="aiff"),
        pytest.param(b"FORM\x00\x00\x10\x00AIFCFVER", "audio/x-aiff", id="aifc"),
    ],
)
def test_known_signatures_map_to_their_standard_media_type(
    tmp_path: Path, head: bytes, expected: str
) -> None:
    # Binary padding, so nothing here could pass as text by accident.
    source = write(tmp_path, "unnamed", head + b"\x00\xff" * 64)

    assert detect_media_type(source) == expected


def test_aac_adts_frames_are_not_taken_for_mp3(tmp_path: Path) -> None:
    source = write(tmp_path, "audio", b"\xff\xf1\x50\x80\x02\x1f\xfc" + b"\x00" * 32)

    assert detect_media_type(source) == "application/octet-stream"


def test_a_zip_holding_a_stored_pdf_is_a_zip_not_a_pdf(tmp_path: Path) -> None:
    pdf = pdfgen.make_text_pdf(tmp_path / "inner.pdf", ["Signed contract, final version."])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("inner.pdf", pdf.read_bytes())
    source = write(tmp_path, "bundle", buffer.getvalue())
    assert b"%PDF-" in source.read_bytes()[:1024]  # the trap this test is about

    assert detect_media_type(source) == "application/zip"


def test_an_mpeg_transport_stream_is_recognised_by_its_packet_sync_bytes(tmp_path: Path) -> None:
    packet = b"\x47\x40\x00\x10" + b"\x00\xff" * 92  # 188 bytes
    source = write(tmp_path, "broadcast", packet * 8)

    assert detect_media_type(source) == "video/mp2t"


def test_one_sync_byte_without_the_packet_spacing_is_not_a_transport_stream(
    tmp_path: Path,
) -> None:
    source = write(tmp_path, "blob", b"\x47" + b"\x00\xff" * 500)

    assert detect_media_type(source) == "application/octet-stream"


def test_text_that_starts_with_a_g_is_text_not_a_transport_stream(tmp_path: Path) -> None:
    line = "G" + "x" * 186 + "\n"  # a "G" every 188 bytes, like the TS sync byte
    source = write(tmp_path, "notes", (line * 8).encode())

    assert detect_media_type(source) == "text/plain"


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        pytest.param("clip.mp4", mediagen.make_mp4_without_streams, "video/mp4", id="mp4"),
        pytest.param("speech.mp3", mediagen.make_speech_audio, "audio/mpeg", id="mp3"),
        pytest.param("speech.ogg", mediagen.make_speech_audio, "audio/ogg", id="ogg"),
        pytest.param("speech.wav", mediagen.make_speech_audio, "audio/wav", id="wav"),
        pytest.param("speech.aiff", mediagen.make_speech_audio, "audio/x-aiff", id="aiff"),
        pytest.param("page.tif", mediagen.make_text_image, "image/tiff", id="tiff"),
        pytest.param("page.webp", mediagen.make_text_image, "image/webp", id="webp"),
    ],
)
def test_files_written_by_real_encoders_are_detected_without_their_names(
    tmp_path: Path, name: str, make: Callable[[Path], Path], expected: str
) -> None:
    made = make(tmp_path / name)
    source = write(tmp_path, "0f3a9c", made.read_bytes())  # as the content store names it

    assert detect_media_type(source) == expected


def test_an_avi_written_by_ffmpeg_is_video_x_msvideo(tmp_path: Path) -> None:
    clip = mediagen.make_video_with_cuts(
        tmp_path / "clip.avi", mediagen.CUT_SCENES[:1], sentences=None
    )

    assert detect_media_type(clip) == "video/x-msvideo"


def test_dicom_whose_preamble_holds_a_tiff_header_is_dicom(tmp_path: Path) -> None:
    # PS3.10 lets the 128-byte preamble hold anything, pydicom's own CT_small.dcm a TIFF header.
    path = tmp_path / "dual"
    path.write_bytes(b"II*\x00" + bytes(124) + b"DICM" + bytes(64))
    assert detect_media_type(path) == "application/dicom"
