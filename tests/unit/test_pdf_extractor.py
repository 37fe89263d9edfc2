"""What the PDF extractor returns, writes and raises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pymupdf
import pytest

from tests import pdfgen
from worker import errors
from worker.config import LimitSettings, MediaSettings
from worker.extractors import pdf as pdf_module
from worker.extractors.base import SegmentKind
from worker.extractors.pdf import PdfExtractor, pdf_date_to_iso
from worker.extractors.registry import extractor_for

# Runs ffmpeg, Tesseract or Whisper: deselect with -m "not tools".
pytestmark = pytest.mark.tools

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def limits() -> LimitSettings:
    return LimitSettings()


@pytest.fixture
def artifacts_dir(tmp_path: Path) -> Path:
    # Deliberately not created: the extractor makes it when it needs it.
    return tmp_path / "artifacts" / "abc123"


@pytest.fixture
def opened_documents(monkeypatch: pytest.MonkeyPatch) -> list[pymupdf.Document]:
    """Every document the extractor opens, to check that it closed them."""
    documents: list[pymupdf.Document] = []
    real_open = pymupdf.open

    def recording_open(*args: Any, **kwargs: Any) -> pymupdf.Document:
        document = real_open(*args, **kwargs)
        documents.append(document)
        return document

    monkeypatch.setattr(pymupdf, "open", recording_open)
    return documents


def fail_text_extraction_on(monkeypatch: pytest.MonkeyPatch, page_numbers: set[int]) -> None:
    """Make ``get_text`` raise MuPDF's own error on the given 0-based pages."""
    real_get_text = pymupdf.Page.get_text

    def get_text(page: pymupdf.Page, *args: Any, **kwargs: Any) -> Any:
        if page.number in page_numbers:
            raise pymupdf.mupdf.FzErrorFormat("syntax error in content stream")
        return real_get_text(page, *args, **kwargs)

    monkeypatch.setattr(pymupdf.Page, "get_text", get_text)


# --- registration -----------------------------------------------------------


def test_the_pdf_extractor_declares_its_name_version_types_and_score() -> None:
    assert PdfExtractor.name == "pdf"
    assert PdfExtractor.version == "1"
    assert PdfExtractor.media_types == frozenset({"application/pdf"})
    assert PdfExtractor.score == 100


def test_the_pdf_extractor_is_registered_for_application_pdf() -> None:
    assert isinstance(extractor_for("application/pdf"), PdfExtractor)


# --- pages with a text layer ---------------------------------------------------


def test_each_page_becomes_one_page_segment_in_order(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = pdfgen.make_text_pdf(tmp_path / "memo.pdf", pdfgen.MEMO_PAGES)

    extraction = PdfExtractor().extract(source, artifacts_dir, limits)

    assert extraction.extractor == "pdf/1"
    assert extraction.media_type == "application/pdf"
    assert [segment.kind for segment in extraction.segments] == [SegmentKind.page] * 2
    assert [segment.index for segment in extraction.segments] == [0, 1]
    assert [segment.label for segment in extraction.segments] == ["page 1", "page 2"]
    assert "New loading dock schedule" in extraction.segments[0].text
    assert "refresher training" in extraction.segments[1].text


def test_pages_with_enough_text_are_not_rendered_or_flagged_for_ocr(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = pdfgen.make_text_pdf(tmp_path / "invoice.pdf", [pdfgen.INVOICE_PAGE])

    extraction = PdfExtractor().extract(source, artifacts_dir, limits)

    (segment,) = extraction.segments
    assert segment.needs_ocr is False
    assert segment.artifact_path is None
    assert segment.attributes == {}
    assert not artifacts_dir.exists()
    assert extraction.metadata["pages_needing_ocr"] == 0


def test_a_file_without_a_pdf_extension_is_read_by_content(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    pdf = pdfgen.make_text_pdf(tmp_path / "letter.pdf", [pdfgen.LETTER_PAGE])
    source = tmp_path / "9b2e41f0c7"  # how the content store names originals
    source.write_bytes(pdf.read_bytes())

    extraction = PdfExtractor().extract(source, artifacts_dir, limits)

    assert "Linden Road" in extraction.segments[0].text


def test_every_page_of_a_long_document_is_extracted_and_cites_its_own_number(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = pdfgen.make_long_pdf(tmp_path / "report.pdf", page_count=60)

    extraction = PdfExtractor().extract(source, artifacts_dir, limits)

    assert extraction.metadata["page_count"] == 60
    assert len(extraction.segments) == 60
    for number, segment in enumerate(extraction.segments, start=1):
        assert segment.label == f"page {number}"
        assert f"This is page {number} of the report" in " ".join(segment.text.split())
    assert len(extraction.segments[0].text.split()) >= 220
    assert extraction.segments[0].text != extraction.segments[8].text


# --- pages without a text layer ------------------------------------------------


def test_an_image_only_page_is_rendered_to_png_flagged_for_ocr_and_read_by_ocr(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = pdfgen.make_image_only_pdf(tmp_path / "scan.pdf")

    extraction = PdfExtractor().extract(source, artifacts_dir, limits)

    (segment,) = extraction.segments
    assert segment.needs_ocr is True  # still offered to a vision model
    assert segment.text.strip() == "SCANNED PAGE"
    assert segment.artifact_path == "page-00001.png"
    rendered = artifacts_dir / segment.artifact_path
    assert rendered.read_bytes()[:8] == PNG_MAGIC
    decoded = pymupdf.Pixmap(str(rendered))
    assert (decoded.width, decoded.height) == (
        segment.attributes["width"],
        segment.attributes["height"],
    )
    assert extraction.metadata["pages_needing_ocr"] == 1


def test_ocr_reads_the_scanned_receipt_and_records_engine_and_confidence(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = pdfgen.make_mixed_pdf(tmp_path / "mixed.pdf")

    extraction = PdfExtractor().extract(source, artifacts_dir, limits)

    scanned = extraction.segments[2]
    assert "RECEIPT OF GOODS" in scanned.text
    assert "INV-2024-0412" in scanned.text
    assert "Ashgrove Office Supplies" in " ".join(scanned.text.split())
    assert scanned.needs_ocr is True
    assert scanned.attributes["ocr"]["engine"].startswith("tesseract ")
    assert 0.8 <= scanned.attributes["ocr"]["confidence"] <= 1.0
    # Pages with a text layer are not OCR'd.
    assert "ocr" not in extraction.segments[0].attributes


def test_with_ocr_off_a_scanned_page_keeps_its_empty_text_layer(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = pdfgen.make_image_only_pdf(tmp_path / "scan.pdf")

    extraction = PdfExtractor().extract(
        source, artifacts_dir, limits, MediaSettings(ocr_enabled=False)
    )

    (segment,) = extraction.segments
    assert segment.text.strip() == ""
    assert segment.needs_ocr is True
    assert "ocr" not in segment.attributes


def test_a_missing_tesseract_is_a_configuration_error_not_a_bad_file(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = pdfgen.make_image_only_pdf(tmp_path / "scan.pdf")

    with pytest.raises(errors.ConfigurationError) as raised:
        PdfExtractor().extract(
            source, artifacts_dir, limits, MediaSettings(tesseract_path="/nonexistent/tesseract")
        )

    assert "tesseract" in raised.value.message


def test_pages_are_rendered_at_the_configured_resolution(
    tmp_path: Path, artifacts_dir: Path
) -> None:
    source = pdfgen.make_image_only_pdf(tmp_path / "scan.pdf")

    extraction = PdfExtractor().extract(source, artifacts_dir, LimitSettings(render_dpi=72))

    # At 72 dpi one pixel is one point: A4 is 595 x 842 points.
    attributes = extraction.segments[0].attributes
    assert (attributes["width"], attributes["height"]) == (595, 842)
    assert "dpi" not in attributes  # only recorded when it differs from the setting


def test_only_the_scanned_page_of_a_mixed_document_is_rendered(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = pdfgen.make_mixed_pdf(tmp_path / "mixed.pdf")

    extraction = PdfExtractor().extract(source, artifacts_dir, limits)

    assert [segment.needs_ocr for segment in extraction.segments] == [False, False, True]
    assert extraction.segments[2].artifact_path == "page-00003.png"
    assert sorted(path.name for path in artifacts_dir.iterdir()) == ["page-00003.png"]
    assert extraction.metadata["page_count"] == 3
    assert extraction.metadata["pages_needing_ocr"] == 1


def test_a_page_with_fewer_characters_than_the_threshold_counts_as_a_scan(
    tmp_path: Path, artifacts_dir: Path
) -> None:
    source = pdfgen.make_text_pdf(tmp_path / "sparse.pdf", ["Page 4", pdfgen.LETTER_PAGE])

    extraction = PdfExtractor().extract(
        source, artifacts_dir, LimitSettings(min_text_chars_per_page=16)
    )

    first, second = extraction.segments
    assert first.needs_ocr is True
    assert first.text.strip() == "Page 4"  # what little text there is is kept
    assert first.artifact_path == "page-00001.png"
    assert second.needs_ocr is False


def test_a_giant_page_is_rendered_below_the_configured_resolution(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pdf_module, "_MAX_RENDER_PIXELS", 1_000_000)
    source = pdfgen.make_image_only_pdf(tmp_path / "scan.pdf")  # 1240 x 1754 px at 150 dpi

    extraction = PdfExtractor().extract(source, artifacts_dir, limits)

    attributes = extraction.segments[0].attributes
    assert attributes["width"] * attributes["height"] <= 1_000_000
    assert attributes["dpi"] < limits.render_dpi


# --- metadata ----------------------------------------------------------------------


def test_document_info_is_returned_with_dates_in_iso_8601(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = pdfgen.make_text_pdf(
        tmp_path / "memo.pdf",
        pdfgen.MEMO_PAGES,
        title="New loading dock schedule",
        author="Ingrid Basso",
        subject="Operations",
        keywords="docks, safety",
        created="D:20240311081500Z",
        modified="D:20240312174500-05'00'",
    )

    extraction = PdfExtractor().extract(source, artifacts_dir, limits)

    assert extraction.metadata == {
        "title": "New loading dock schedule",
        "author": "Ingrid Basso",
        "subject": "Operations",
        "keywords": "docks, safety",
        "created": "2024-03-11T08:15:00+00:00",
        "modified": "2024-03-12T17:45:00-05:00",
        "page_count": 2,
        "pages_needing_ocr": 0,
    }


def test_empty_info_fields_are_left_out_of_the_metadata(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = pdfgen.make_text_pdf(tmp_path / "memo.pdf", pdfgen.MEMO_PAGES, created="", modified="")

    extraction = PdfExtractor().extract(source, artifacts_dir, limits)

    assert extraction.metadata == {"page_count": 2, "pages_needing_ocr": 0}


def test_a_date_that_is_not_a_pdf_date_is_kept_as_written(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = pdfgen.make_text_pdf(tmp_path / "memo.pdf", pdfgen.MEMO_PAGES, created="last Tuesday")

    extraction = PdfExtractor().extract(source, artifacts_dir, limits)

    assert extraction.metadata["created"] == "last Tuesday"
    assert extraction.metadata["modified"] == pdfgen.DEFAULT_PDF_DATE_ISO


@pytest.mark.parametrize(
    ("pdf_date", "iso"),
    [
        ("D:20240315093000+01'00'", "2024-03-15T09:30:00+01:00"),
        ("D:20240315093000+01'00", "2024-03-15T09:30:00+01:00"),
        ("D:20240315093000-05'30'", "2024-03-15T09:30:00-05:30"),
        ("D:20240315093000Z", "2024-03-15T09:30:00+00:00"),
        ("D:20240315093000Z00'00'", "2024-03-15T09:30:00+00:00"),
        ("D:20240315093000", "2024-03-15T09:30:00"),
        ("20240315093000", "2024-03-15T09:30:00"),
        ("D:202403", "2024-03-01T00:00:00"),
        ("D:2024", "2024-01-01T00:00:00"),
        ("D:20241345000000", "D:20241345000000"),  # month 13: kept as written
        ("D:20240315093000+99'00'", "D:20240315093000+99'00'"),  # no such zone
        ("Friday, March 15, 2024", "Friday, March 15, 2024"),
    ],
)
def test_pdf_dates_convert_to_iso_8601_where_parseable(pdf_date: str, iso: str) -> None:
    assert pdf_date_to_iso(pdf_date) == iso


# --- files that cannot be read ------------------------------------------------------


def test_an_encrypted_pdf_raises_encrypted_file_error(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = pdfgen.make_encrypted_pdf(tmp_path / "confidential.pdf")

    with pytest.raises(errors.EncryptedFileError) as raised:
        PdfExtractor().extract(source, artifacts_dir, limits)

    assert raised.value.code == "encrypted"
    assert "password" in raised.value.message


def test_the_encrypted_fixture_really_is_a_readable_pdf_behind_a_password(tmp_path: Path) -> None:
    source = pdfgen.make_encrypted_pdf(tmp_path / "confidential.pdf")

    with pymupdf.open(source) as document:
        assert document.needs_pass
        assert document.authenticate(pdfgen.ENCRYPTED_PDF_PASSWORD)
        assert "Heronsgate" in document[0].get_text()


def test_a_pdf_with_only_an_owner_password_is_read_normally(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    # Permission-restricted PDFs open without a password; they are not "encrypted" to a reader.
    plain = pdfgen.make_text_pdf(tmp_path / "plain.pdf", [pdfgen.INVOICE_PAGE])
    source = tmp_path / "restricted.pdf"
    with pymupdf.open(plain) as document:
        document.save(
            source, encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner-only", permissions=0
        )

    extraction = PdfExtractor().extract(source, artifacts_dir, limits)

    assert "INV-2024-0412" in extraction.segments[0].text


def test_a_corrupt_pdf_raises_corrupt_file_error_without_the_stored_path(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = pdfgen.make_corrupt_pdf(tmp_path / "damaged.pdf")

    with pytest.raises(errors.CorruptFileError) as raised:
        PdfExtractor().extract(source, artifacts_dir, limits)

    assert raised.value.code == "corrupt_file"
    # The content store's object path means nothing to a user; the item row
    # carries the path they submitted.
    assert str(source) not in raised.value.message
    assert "not a readable PDF" in raised.value.message


def test_a_pdf_with_no_pages_raises_corrupt_file_error(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = pdfgen.make_zero_page_pdf(tmp_path / "hollow.pdf")

    with pytest.raises(errors.CorruptFileError) as raised:
        PdfExtractor().extract(source, artifacts_dir, limits)

    assert raised.value.code == "corrupt_file"
    assert "no pages" in raised.value.message


def test_a_zero_byte_pdf_raises_corrupt_file_error(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = tmp_path / "empty.pdf"
    source.write_bytes(b"")

    with pytest.raises(errors.CorruptFileError) as raised:
        PdfExtractor().extract(source, artifacts_dir, limits)

    assert raised.value.code == "corrupt_file"


def test_a_missing_file_is_not_reported_as_corrupt(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    with pytest.raises(FileNotFoundError):
        PdfExtractor().extract(tmp_path / "gone.pdf", artifacts_dir, limits)


def test_more_pages_than_the_limit_raises_limit_exceeded_with_both_numbers(
    tmp_path: Path, artifacts_dir: Path
) -> None:
    source = pdfgen.make_long_pdf(tmp_path / "report.pdf", page_count=5, words_per_page=40)

    with pytest.raises(errors.LimitExceededError) as raised:
        PdfExtractor().extract(source, artifacts_dir, LimitSettings(max_pdf_pages=4))

    assert raised.value.code == "limit_exceeded"
    assert "5 pages" in raised.value.message
    assert "limit of 4" in raised.value.message


def test_exactly_the_page_limit_is_allowed(tmp_path: Path, artifacts_dir: Path) -> None:
    source = pdfgen.make_long_pdf(tmp_path / "report.pdf", page_count=4, words_per_page=40)

    extraction = PdfExtractor().extract(source, artifacts_dir, LimitSettings(max_pdf_pages=4))

    assert len(extraction.segments) == 4


# --- pages that fail ----------------------------------------------------------------


def test_a_page_that_fails_is_recorded_and_the_other_pages_are_kept(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = pdfgen.make_long_pdf(tmp_path / "report.pdf", page_count=3, words_per_page=60)
    fail_text_extraction_on(monkeypatch, {1})

    extraction = PdfExtractor().extract(source, artifacts_dir, limits)

    first, broken, third = extraction.segments
    assert "This is page 1" in " ".join(first.text.split())
    assert "This is page 3" in " ".join(third.text.split())
    assert broken.label == "page 2"
    assert broken.text == ""
    assert "syntax error in content stream" in broken.attributes["error"]
    assert "error" not in first.attributes
    assert extraction.metadata["page_count"] == 3


def test_a_scanned_page_that_cannot_be_rendered_is_recorded_and_the_rest_kept(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = pdfgen.make_mixed_pdf(tmp_path / "mixed.pdf")

    def get_pixmap(page: pymupdf.Page, *args: Any, **kwargs: Any) -> Any:
        raise pymupdf.mupdf.FzErrorFormat("corrupt image stream")

    monkeypatch.setattr(pymupdf.Page, "get_pixmap", get_pixmap)

    extraction = PdfExtractor().extract(source, artifacts_dir, limits)

    scanned = extraction.segments[2]
    assert scanned.needs_ocr is True
    assert scanned.artifact_path is None
    assert "corrupt image stream" in scanned.attributes["error"]
    assert "New loading dock schedule" in extraction.segments[0].text


def test_when_every_page_fails_the_file_is_corrupt(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = pdfgen.make_long_pdf(tmp_path / "report.pdf", page_count=2, words_per_page=40)
    fail_text_extraction_on(monkeypatch, {0, 1})

    with pytest.raises(errors.CorruptFileError) as raised:
        PdfExtractor().extract(source, artifacts_dir, limits)

    assert "none of the 2 pages" in raised.value.message


def test_an_unexpected_exception_is_not_relabelled_as_bad_input(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = pdfgen.make_text_pdf(tmp_path / "memo.pdf", pdfgen.MEMO_PAGES)

    def buggy_get_text(page: pymupdf.Page, *args: Any, **kwargs: Any) -> str:
        raise KeyError("a bug in Sieve, not in the file")

    monkeypatch.setattr(pymupdf.Page, "get_text", buggy_get_text)

    with pytest.raises(KeyError):
        PdfExtractor().extract(source, artifacts_dir, limits)


# --- the document is always closed ------------------------------------------------


def test_the_document_is_closed_after_a_successful_extraction(
    tmp_path: Path,
    artifacts_dir: Path,
    limits: LimitSettings,
    opened_documents: list[pymupdf.Document],
) -> None:
    source = pdfgen.make_mixed_pdf(tmp_path / "mixed.pdf")
    opened_documents.clear()  # only the extractor's own opens count

    PdfExtractor().extract(source, artifacts_dir, limits)

    assert len(opened_documents) == 1
    assert opened_documents[0].is_closed


@pytest.mark.parametrize(
    ("make_source", "max_pdf_pages", "expected_error"),
    [
        pytest.param(pdfgen.make_encrypted_pdf, 100, errors.EncryptedFileError, id="encrypted"),
        pytest.param(pdfgen.make_zero_page_pdf, 100, errors.CorruptFileError, id="no-pages"),
        pytest.param(pdfgen.make_mixed_pdf, 2, errors.LimitExceededError, id="too-many-pages"),
    ],
)
def test_the_document_is_closed_when_extraction_fails(
    tmp_path: Path,
    artifacts_dir: Path,
    opened_documents: list[pymupdf.Document],
    make_source: Any,
    max_pdf_pages: int,
    expected_error: type[Exception],
) -> None:
    source = make_source(tmp_path / "input.pdf")
    opened_documents.clear()  # only the extractor's own opens count

    with pytest.raises(expected_error):
        PdfExtractor().extract(source, artifacts_dir, LimitSettings(max_pdf_pages=max_pdf_pages))

    assert len(opened_documents) == 1
    assert opened_documents[0].is_closed


def test_the_document_is_closed_when_every_page_fails(
    tmp_path: Path,
    artifacts_dir: Path,
    limits: LimitSettings,
    opened_documents: list[pymupdf.Document],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = pdfgen.make_text_pdf(tmp_path / "memo.pdf", pdfgen.MEMO_PAGES)
    opened_documents.clear()
    fail_text_extraction_on(monkeypatch, {0, 1})

    with pytest.raises(errors.CorruptFileError):
        PdfExtractor().extract(source, artifacts_dir, limits)

    assert opened_documents[0].is_closed
