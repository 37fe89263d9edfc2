"""PDF pages: the text layer of each page, and a rendering of pages that lack one.

A page whose text layer is (nearly) empty is most likely a scan: it is rendered
to a PNG, read by OCR (Tesseract), and flagged ``needs_ocr`` so a vision model
can look at the picture too. PyMuPDF and MuPDF errors are mapped to Sieve's
error tree here and nowhere else; anything else that goes wrong is a bug and
propagates as is.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

from worker import errors, ocr
from worker.config import LimitSettings, MediaSettings
from worker.extractors import registry
from worker.extractors.base import (
    ExtractedSegment,
    Extraction,
    Extractor,
    SegmentKind,
    errors_mapped_to,
)
from worker.extractors.mupdf import pymupdf

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/pdf"

# What PyMuPDF raises for a file it cannot read: its own FileDataError and
# EmptyFileError derive from RuntimeError, and errors from inside MuPDF (a
# broken content stream, say) surface as MuPDF's FzErrorBase subclasses.
_MUPDF_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, pymupdf.mupdf.FzErrorBase)

# Per page, PyMuPDF also raises ValueError("page not in document") for pages a
# page tree declares (/Count) but does not hold.
_PAGE_ERRORS: tuple[type[BaseException], ...] = (*_MUPDF_ERRORS, ValueError)

# A page can declare any size: a 200-inch poster at 150 dpi would be a 1 GB
# pixmap. Above this many pixels the page is rendered at a lower resolution.
_MAX_RENDER_PIXELS = 40_000_000

# D:YYYYMMDDHHmmSSOHH'mm' (PDF 1.7, 7.9.4); everything after the year is optional.
_PDF_DATE = re.compile(
    r"""^(?:D:)?
    (?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?
    (?P<hour>\d{2})?(?P<minute>\d{2})?(?P<second>\d{2})?
    (?:(?P<sign>[Zz+\-])(?:(?P<tz_hour>\d{2})'?(?:(?P<tz_minute>\d{2})'?)?)?)?$""",
    re.VERBOSE,
)

# PyMuPDF's metadata keys, under the names Sieve stores.
_TEXT_METADATA = {
    "title": "title",
    "author": "author",
    "subject": "subject",
    "keywords": "keywords",
    "creator": "creator",
    "producer": "producer",
}
_DATE_METADATA = {
    "creationDate": "created",
    "modDate": "modified",
}


@registry.register
class PdfExtractor(Extractor):
    """Reads PDFs with PyMuPDF, one segment per page."""

    name = "pdf"
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
        """One ``page`` segment per page, in page order.

        Pages with fewer than ``limits.min_text_chars_per_page`` characters of
        text are rendered at ``limits.render_dpi`` to
        ``artifacts_dir/page-NNNNN.png`` (the directory is created when needed)
        and flagged ``needs_ocr``; unless ``media.ocr_enabled`` is off, their
        ``text`` is what OCR read and ``attributes["ocr"]`` records the engine
        and the mean word confidence (0-1). A page that cannot be read carries the
        reason in ``attributes["error"]``; the other pages are still returned.

        Raises :class:`~worker.errors.CorruptFileError` when the file cannot be
        opened, has no pages or no page can be read,
        :class:`~worker.errors.EncryptedFileError` when it needs a password and
        :class:`~worker.errors.LimitExceededError` when it has more than
        ``limits.max_pdf_pages`` pages.
        """
        document = _open_pdf(source)
        try:
            page_count = _checked_page_count(document, source, limits)
            segments = [
                _extract_page(document, index, artifacts_dir, limits, media)
                for index in range(page_count)
            ]
            if all("error" in segment.attributes for segment in segments):
                raise errors.CorruptFileError(
                    f"none of the {page_count} pages of the PDF could be read "
                    f"(page 1: {segments[0].attributes['error']})"
                )
            metadata = _document_metadata(document)
        finally:
            document.close()
        metadata["page_count"] = page_count
        metadata["pages_needing_ocr"] = sum(segment.needs_ocr for segment in segments)
        return Extraction(
            extractor=self.qualified_name(),
            media_type=MEDIA_TYPE,
            segments=segments,
            metadata=metadata,
        )


def _open_pdf(source: Path) -> pymupdf.Document:
    """Open ``source`` as a PDF whatever its name (the content store has no extensions)."""
    if not source.is_file():
        # A missing original is not a damaged file: let the caller's own error say so.
        raise FileNotFoundError(source)
    # MuPDF's message names the stored object's path: ``source`` has it replaced.
    with errors_mapped_to(
        errors.CorruptFileError, _MUPDF_ERRORS, "not a readable PDF", source=source
    ):
        return pymupdf.open(source, filetype="pdf")


def _checked_page_count(document: pymupdf.Document, source: Path, limits: LimitSettings) -> int:
    """The page count, once the document is known to be readable and within limits."""
    if document.needs_pass:
        raise errors.EncryptedFileError("the PDF is encrypted and needs a password to open")
    with errors_mapped_to(
        errors.CorruptFileError, _MUPDF_ERRORS, "cannot count the pages of the PDF"
    ):
        page_count = int(document.page_count)
    if page_count == 0:
        raise errors.CorruptFileError("the PDF has no pages (damaged or empty)")
    if page_count > limits.max_pdf_pages:
        raise errors.LimitExceededError(
            f"the PDF has {page_count} pages, more than the limit of {limits.max_pdf_pages}"
        )
    return page_count


def _raise_if_out_of_memory(exc: BaseException) -> None:
    """MuPDF reports a failed allocation as an ordinary error: it is not a damaged page."""
    message = str(exc).lower()
    if "out of memory" in message or "malloc" in message:
        raise errors.ExtractionOutOfMemoryError(
            "MuPDF ran out of memory reading this file (the extraction memory limit)"
        ) from exc


def _extract_page(
    document: pymupdf.Document,
    index: int,
    artifacts_dir: Path,
    limits: LimitSettings,
    media: MediaSettings,
) -> ExtractedSegment:
    """The segment for page ``index``; a MuPDF error is recorded on it, not raised.

    A page without enough text is rendered and read by OCR; what OCR reads
    replaces the page's scrap of text layer (it sees that text too), and the
    page stays flagged ``needs_ocr`` so a vision model can still be asked.
    """
    label = f"page {index + 1}"
    try:
        page = document.load_page(index)
        # Postgres text columns reject NUL, and a text layer can contain them.
        text = page.get_text("text").replace("\x00", "")
    except _PAGE_ERRORS as exc:
        _raise_if_out_of_memory(exc)
        logger.warning("cannot read the text of %s: %s", label, exc)
        return ExtractedSegment(
            kind=SegmentKind.page,
            index=index,
            label=label,
            attributes={"error": f"cannot read the text of {label}: {exc}"},
        )
    if len(text.strip()) >= limits.min_text_chars_per_page:
        return ExtractedSegment(kind=SegmentKind.page, index=index, label=label, text=text)

    artifact_name = f"page-{index + 1:05d}.png"
    try:
        attributes = _render_page(page, artifacts_dir / artifact_name, limits.render_dpi)
    except _MUPDF_ERRORS as exc:
        _raise_if_out_of_memory(exc)
        logger.warning("cannot render %s: %s", label, exc)
        return ExtractedSegment(
            kind=SegmentKind.page,
            index=index,
            label=label,
            text=text,
            needs_ocr=True,
            attributes={"error": f"cannot render {label}: {exc}"},
        )
    ocr_text, ocr_attributes = ocr.segment_text(
        (artifacts_dir / artifact_name).read_bytes(),
        media,
        dpi=attributes.get("dpi", limits.render_dpi),
    )
    return ExtractedSegment(
        kind=SegmentKind.page,
        index=index,
        label=label,
        text=ocr_text if ocr_text.strip() else text,
        artifact_path=artifact_name,
        needs_ocr=True,
        attributes=attributes | ocr_attributes,
    )


def _render_page(page: pymupdf.Page, target: Path, dpi: int) -> dict[str, Any]:
    """Render ``page`` to the PNG ``target``; returns its pixel size.

    Giant pages are rendered below ``dpi`` so the image stays under
    ``_MAX_RENDER_PIXELS``; the resolution used is then recorded as ``dpi``.
    """
    inches = page.rect.width / 72, page.rect.height / 72
    pixels_at_dpi = inches[0] * dpi * inches[1] * dpi
    used_dpi = dpi
    if pixels_at_dpi > _MAX_RENDER_PIXELS:
        used_dpi = max(1, int(dpi * (_MAX_RENDER_PIXELS / pixels_at_dpi) ** 0.5))
    pixmap = page.get_pixmap(dpi=used_dpi, alpha=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    pixmap.save(str(target), output="png")
    attributes: dict[str, Any] = {"width": pixmap.width, "height": pixmap.height}
    if used_dpi != dpi:
        attributes["dpi"] = used_dpi
    return attributes


def _document_metadata(document: pymupdf.Document) -> dict[str, Any]:
    """The document's info fields that have a value, dates as ISO 8601."""
    raw = document.metadata or {}
    metadata: dict[str, Any] = {}
    for pdf_key, key in _TEXT_METADATA.items():
        value = (raw.get(pdf_key) or "").strip()
        if value:
            metadata[key] = value
    for pdf_key, key in _DATE_METADATA.items():
        value = (raw.get(pdf_key) or "").strip()
        if value:
            metadata[key] = pdf_date_to_iso(value)
    return metadata


def pdf_date_to_iso(value: str) -> str:
    """A PDF date (``D:20240315093000+01'00'``) as ISO 8601 (``2024-03-15T09:30:00+01:00``).

    Missing month, day or time parts default to the start of the period; a
    date without a time zone stays naive. A value that is not a valid PDF date
    (producers write all sorts) is returned unchanged rather than dropped.
    """
    match = _PDF_DATE.match(value.strip())
    if match is None:
        return value
    parts = match.groupdict()
    try:
        tzinfo = _pdf_time_zone(parts["sign"], parts["tz_hour"], parts["tz_minute"])
        moment = dt.datetime(
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            tzinfo=tzinfo,
        )
    except ValueError:
        return value
    return moment.isoformat()


def _pdf_time_zone(sign: str | None, hours: str | None, minutes: str | None) -> dt.tzinfo | None:
    """The zone of a PDF date; None when it names none. Raises ValueError when out of range."""
    if sign is None:
        return None
    if sign in "Zz":
        return dt.UTC
    offset = dt.timedelta(hours=int(hours or 0), minutes=int(minutes or 0))
    return dt.timezone(-offset if sign == "-" else offset)
