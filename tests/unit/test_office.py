"""Office files: native readers, embedded files as children, LibreOffice conversion, hostile packages.

The files are written here by the libraries real Office files come from
(python-docx, python-pptx, openpyxl), by LibreOffice itself (legacy formats),
and by msoffcrypto-tool (an encrypted DOCX). The conversion tests run the
real ``soffice`` the set-up script installs.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests import officegen
from worker import errors, media_types
from worker.config import LimitSettings, MediaSettings
from worker.extractors import registry
from worker.extractors.base import ChildRole
from worker.extractors.converted import ConvertedOfficeExtractor
from worker.extractors.office import (
    DocxExtractor,
    EncryptedOfficeExtractor,
    PptxExtractor,
    XlsxExtractor,
)

LIMITS = LimitSettings(sandbox=False)
needs_soffice = pytest.mark.skipif(
    officegen.soffice() is None, reason="LibreOffice is not installed (scripts/setup installs it)"
)


def test_docx_paragraphs_tables_properties_and_embedded_files(tmp_path: Path) -> None:
    source = officegen.write_docx(
        tmp_path / "memo.docx",
        ["Privileged memo", "Revenue is flat in Q3."],
        title="Q3 memo",
        embedded={"oleObject1.bin": b"embedded bytes"},
    )
    assert media_types.detect_media_type(source) == media_types.DOCX
    extraction = DocxExtractor().extract(source, tmp_path / "artifacts", LIMITS)
    text = "\n".join(segment.text for segment in extraction.segments)
    assert "Revenue is flat in Q3." in text and "Quarter | Revenue" in text
    assert extraction.segments[0].label == "paragraphs 1-4"
    assert extraction.metadata["title"] == "Q3 memo"
    (child,) = extraction.children
    assert child.role == ChildRole.attachment and child.name == "embedded 1: oleObject1.bin"
    assert (tmp_path / "artifacts" / child.artifact_path).read_bytes() == b"embedded bytes"


def test_pptx_slides_with_notes(tmp_path: Path) -> None:
    source = officegen.write_pptx(
        tmp_path / "deck.pptx", [("Board update", "Revenue flat"), ("Next", "Hiring pause")]
    )
    assert media_types.detect_media_type(source) == media_types.PPTX
    extraction = PptxExtractor().extract(source, tmp_path / "artifacts", LIMITS)
    assert [segment.label for segment in extraction.segments] == ["slide 1", "slide 2"]
    assert "Board update" in extraction.segments[0].text
    assert "Speaker notes: mention the board." in extraction.segments[0].text
    assert extraction.metadata["page_count"] == 2


def test_xlsx_sheets_as_rows(tmp_path: Path) -> None:
    source = officegen.write_xlsx(
        tmp_path / "book.xlsx",
        {"Forecast": [["Quarter", "Revenue"], ["Q3", 1200]], "Notes": [["flat"]]},
    )
    assert media_types.detect_media_type(source) == media_types.XLSX
    extraction = XlsxExtractor().extract(source, tmp_path / "artifacts", LIMITS)
    assert [segment.label for segment in extraction.segments] == ["sheet Forecast", "sheet Notes"]
    assert extraction.segments[0].text == "Quarter\tRevenue\nQ3\t1200"


def test_an_encrypted_docx_is_detected_and_failed_as_encrypted(tmp_path: Path) -> None:
    source = officegen.write_encrypted_docx(tmp_path / "locked.docx")
    assert media_types.detect_media_type(source) == media_types.ENCRYPTED_OFFICE
    extractor = registry.extractor_for(media_types.ENCRYPTED_OFFICE)
    assert isinstance(extractor, EncryptedOfficeExtractor)
    with pytest.raises(errors.EncryptedFileError) as raised:
        extractor.extract(source, tmp_path / "artifacts", LIMITS)
    assert raised.value.code == "encrypted"


def test_a_zip_bomb_docx_fails_as_unsafe_archive_before_parsing(tmp_path: Path) -> None:
    source = officegen.write_zip_bomb_docx(tmp_path / "bomb.docx")
    assert source.stat().st_size < 2 * 1024 * 1024
    assert media_types.detect_media_type(source) == media_types.DOCX
    with pytest.raises(errors.UnsafeArchiveError):
        DocxExtractor().extract(source, tmp_path / "artifacts", LIMITS)


def test_a_billion_laughs_part_is_refused_not_expanded(tmp_path: Path) -> None:
    source = officegen.write_billion_laughs_docx(tmp_path / "lol.docx")
    started = time.monotonic()
    try:
        extraction = DocxExtractor().extract(source, tmp_path / "artifacts", LIMITS)
    except errors.CorruptFileError:
        pass  # refused by the parser
    else:  # or read without expanding the entities
        assert "lol" * 1000 not in "".join(segment.text for segment in extraction.segments)
    assert time.monotonic() - started < 10


def test_a_macro_enabled_document_is_read_and_its_macros_never_run(tmp_path: Path) -> None:
    source = officegen.write_macro_docm(tmp_path / "invoice.docm")
    extraction = DocxExtractor().extract(source, tmp_path / "artifacts", LIMITS)
    assert "Enable macros" in extraction.segments[0].text
    # The VBA project is not a child document: nothing under word/embeddings/.
    assert extraction.children == []


@needs_soffice
def test_a_legacy_doc_written_by_libreoffice_is_converted_and_read_as_pdf(tmp_path: Path) -> None:
    docx = officegen.write_docx(tmp_path / "old.docx", ["Legacy format text survives."])
    doc = officegen.convert_with_libreoffice(docx, "doc", tmp_path / "legacy")
    assert media_types.detect_media_type(doc) == media_types.DOC
    artifacts = tmp_path / "artifacts"
    extraction = ConvertedOfficeExtractor().extract(doc, artifacts, LIMITS, MediaSettings())
    assert "Legacy format text survives." in extraction.segments[0].text
    assert extraction.metadata["converted_from"] == media_types.DOC
    converted = artifacts / "converted.pdf"
    assert converted.read_bytes().startswith(b"%PDF")
    # The same bytes are converted once: the PDF in the item's artifacts is reused.
    before = converted.stat().st_mtime_ns
    ConvertedOfficeExtractor().extract(doc, artifacts, LIMITS, MediaSettings())
    assert converted.stat().st_mtime_ns == before


@needs_soffice
def test_an_odt_is_detected_and_converted(tmp_path: Path) -> None:
    docx = officegen.write_docx(tmp_path / "open.docx", ["OpenDocument text."])
    odt = officegen.convert_with_libreoffice(docx, "odt", tmp_path / "odf")
    assert media_types.detect_media_type(odt) == media_types.ODT
    extraction = ConvertedOfficeExtractor().extract(odt, tmp_path / "artifacts", LIMITS)
    assert "OpenDocument text." in extraction.segments[0].text


@needs_soffice
def test_a_conversion_past_its_time_limit_is_killed_whole_and_fails_as_timeout(
    tmp_path: Path,
) -> None:
    docx = officegen.write_docx(tmp_path / "slow.docx", ["x"] * 50)
    doc = officegen.convert_with_libreoffice(docx, "doc", tmp_path / "legacy")
    limits = LimitSettings(sandbox=False, convert_base_s=0.5, convert_per_mib_s=0)
    started = time.monotonic()
    with pytest.raises(errors.ExtractionTimeoutError) as raised:
        ConvertedOfficeExtractor().extract(doc, tmp_path / "artifacts", limits)
    assert raised.value.code == "timeout"
    assert time.monotonic() - started < 15
    # No soffice left behind by the killed conversion.
    import subprocess

    left = subprocess.run(["pgrep", "-f", "sieve-lo-"], capture_output=True, text=True).stdout
    assert left.strip() == ""
