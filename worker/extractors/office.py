"""Office files read natively: DOCX, PPTX, XLSX, RTF and HTML; encrypted ones refused.

Each reads text in the order a reviewer meets it and labels it so a result
can cite it: paragraphs of a document, a slide, a sheet. Files embedded in a
DOCX or PPTX (``word/embeddings/…``) become children of the document's family.
Office Open XML files are ZIP packages, so each is checked like an archive
before a parser touches it: a zip-bomb part fails the item as
``unsafe_archive`` instead of exhausting memory.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from worker import errors
from worker import media_types as detected
from worker.config import LimitSettings, MediaSettings
from worker.extractors import html_text
from worker.extractors.base import (
    ChildRole,
    ExtractedChild,
    ExtractedSegment,
    Extraction,
    Extractor,
    SegmentKind,
    errors_mapped_to,
)
from worker.extractors.registry import register

# Characters of paragraphs gathered into one cited part of a document.
_PART_CHARS = 4000
_MAX_SHEET_CELLS = 200_000  # cells read per sheet; the rest is counted, not read
_LABEL_CHARS = 64
_EMBEDDED_PREFIXES = ("word/embeddings/", "ppt/embeddings/", "xl/embeddings/")
# Parser failures that mean a damaged file, not a bug in Sieve.
_PARSE_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    KeyError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    EOFError,
)


def _lxml_errors() -> tuple[type[BaseException], ...]:
    from lxml import etree

    return (etree.XMLSyntaxError, etree.LxmlError)


def check_package(source: Path, limits: LimitSettings) -> list[zipfile.ZipInfo]:
    """The package's members, once its declared sizes pass the archive limits."""
    with errors_mapped_to(
        errors.CorruptFileError, (zipfile.BadZipFile, OSError), "not a readable package"
    ):
        with zipfile.ZipFile(source) as package:
            infos = package.infolist()
    if len(infos) > limits.max_archive_members:
        raise errors.UnsafeArchiveError(
            f"the package has {len(infos)} parts; the limit is {limits.max_archive_members}"
        )
    expanded = sum(info.file_size for info in infos)
    if expanded > limits.max_archive_expanded_bytes:
        raise errors.UnsafeArchiveError(
            f"the package expands to {expanded} bytes; the limit is "
            f"{limits.max_archive_expanded_bytes}"
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1024 * 1024 and ratio > limits.max_archive_ratio:
            raise errors.UnsafeArchiveError(
                f"part {info.filename} expands {ratio:.0f}x (a zip bomb); the limit is "
                f"{limits.max_archive_ratio}x"
            )
    return infos


def _embedded_children(
    source: Path, infos: Iterable[zipfile.ZipInfo], artifacts_dir: Path
) -> list[ExtractedChild]:
    """Files embedded in an Office package, written out as children of its family."""
    embedded = [
        info for info in infos if info.filename.startswith(_EMBEDDED_PREFIXES) and not info.is_dir()
    ]
    if not embedded:
        return []
    children_dir = artifacts_dir / "children"
    children_dir.mkdir(parents=True, exist_ok=True)
    children = []
    with zipfile.ZipFile(source) as package:
        for ordinal, info in enumerate(embedded, start=1):
            target = children_dir / f"{ordinal:05d}"
            with package.open(info) as member, target.open("wb") as out:
                while chunk := member.read(1024 * 1024):
                    out.write(chunk)
            name = info.filename.rsplit("/", 1)[-1]
            children.append(
                ExtractedChild(
                    f"embedded {ordinal}: {name}",
                    f"children/{target.name}",
                    ordinal,
                    ChildRole.attachment,
                )
            )
    return children


def _parts_from_paragraphs(paragraphs: list[str]) -> list[ExtractedSegment]:
    """Paragraphs gathered into parts of about ``_PART_CHARS``, labelled by paragraph numbers."""
    segments: list[ExtractedSegment] = []
    first, chunk, size = 1, [], 0
    for number, paragraph in enumerate(paragraphs, start=1):
        chunk.append(paragraph)
        size += len(paragraph)
        if size >= _PART_CHARS or number == len(paragraphs):
            label = f"paragraphs {first}-{number}" if number > first else f"paragraph {first}"
            segments.append(
                ExtractedSegment(SegmentKind.part, len(segments), label, "\n".join(chunk))
            )
            first, chunk, size = number + 1, [], 0
    return segments


class _OfficeExtractor(Extractor):
    """The shared shape: check the package, parse with the library, map its errors."""

    media_type: str

    def extract(
        self,
        source: Path,
        artifacts_dir: Path,
        limits: LimitSettings,
        media: MediaSettings = MediaSettings(),
    ) -> Extraction:
        infos = check_package(source, limits)
        library_errors = _PARSE_ERRORS + _lxml_errors()
        with errors_mapped_to(
            errors.CorruptFileError, library_errors, f"cannot read the {self.name}", source=source
        ):
            segments, metadata = self.read(source)
        children = _embedded_children(source, infos, artifacts_dir)
        return Extraction(
            self.qualified_name(), self.media_type, segments, metadata, children=children
        )

    def read(self, source: Path) -> tuple[list[ExtractedSegment], dict[str, Any]]:
        raise NotImplementedError


@register
class DocxExtractor(_OfficeExtractor):
    """Word documents: paragraphs and tables in body order, with core properties."""

    name = "docx"
    version = "1"
    media_types = frozenset({detected.DOCX})
    media_type = detected.DOCX

    def read(self, source: Path) -> tuple[list[ExtractedSegment], dict[str, Any]]:
        import docx

        document = docx.Document(str(source))
        paragraphs = [p.text for p in document.paragraphs if p.text.strip()]
        for table in document.tables:
            paragraphs.extend(_table_rows(table))
        properties = document.core_properties
        metadata = _core_metadata(properties)
        return _parts_from_paragraphs(paragraphs), metadata


@register
class PptxExtractor(_OfficeExtractor):
    """Presentations: one segment per slide, its text frames, tables and speaker notes."""

    name = "pptx"
    version = "1"
    media_types = frozenset({detected.PPTX})
    media_type = detected.PPTX

    def read(self, source: Path) -> tuple[list[ExtractedSegment], dict[str, Any]]:
        import pptx

        presentation = pptx.Presentation(str(source))
        segments = []
        for index, slide in enumerate(presentation.slides):
            lines = [text for shape in slide.shapes for text in _shape_texts(shape)]
            if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
                notes = slide.notes_slide.notes_text_frame.text.strip()
                if notes:
                    lines.append(f"Notes: {notes}")
            segments.append(
                ExtractedSegment(SegmentKind.page, index, f"slide {index + 1}", "\n".join(lines))
            )
        metadata = _core_metadata(presentation.core_properties) | {"page_count": len(segments)}
        return segments, metadata


def _table_rows(table: Any) -> list[str]:
    """A Word or PowerPoint table's non-empty rows, cells joined by `` | ``."""
    rows = []
    for row in table.rows:
        cells = [cell.text.strip() for cell in row.cells]
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


def _shape_texts(shape: Any) -> list[str]:
    texts = []
    if getattr(shape, "has_text_frame", False) and shape.text_frame.text.strip():
        texts.append(shape.text_frame.text.strip())
    if getattr(shape, "has_table", False):
        texts.extend(_table_rows(shape.table))
    for child in getattr(shape, "shapes", ()):  # a group
        texts.extend(_shape_texts(child))
    return texts


@register
class XlsxExtractor(_OfficeExtractor):
    """Workbooks: one segment per sheet, rows as tab-separated values (cached results of formulas)."""

    name = "xlsx"
    version = "1"
    media_types = frozenset({detected.XLSX})
    media_type = detected.XLSX

    def read(self, source: Path) -> tuple[list[ExtractedSegment], dict[str, Any]]:
        import openpyxl

        workbook = openpyxl.load_workbook(str(source), read_only=True, data_only=True)
        try:
            segments = []
            truncated: dict[str, int] = {}
            for index, sheet in enumerate(workbook.worksheets):
                text, skipped = _sheet_text(sheet.iter_rows(values_only=True))
                if skipped:
                    truncated[sheet.title] = skipped
                label = f"sheet {sheet.title}"[:_LABEL_CHARS]
                segments.append(ExtractedSegment(SegmentKind.part, index, label, text))
            metadata: dict[str, Any] = {"sheets": [sheet.title for sheet in workbook.worksheets]}
            if truncated:
                metadata["cells_not_read"] = truncated
            return segments, metadata
        finally:
            workbook.close()


def _sheet_text(rows: Iterable[tuple[Any, ...]]) -> tuple[str, int]:
    """A sheet's non-empty rows as tab-separated text, and how many cells were left unread."""
    lines, cells, skipped = [], 0, 0
    for row in rows:
        if cells >= _MAX_SHEET_CELLS:
            skipped += len(row)
            continue
        values = ["" if value is None else str(value) for value in row]
        cells += len(values)
        if any(values):
            lines.append("\t".join(values).rstrip("\t"))
    return "\n".join(lines), skipped


def _core_metadata(properties: Any) -> dict[str, Any]:
    """Title, author and dates from a package's core properties (docProps/core.xml)."""
    metadata: dict[str, Any] = {}
    for key, attribute in (("title", "title"), ("author", "author"), ("subject", "subject")):
        value = getattr(properties, attribute, None)
        if value:
            metadata[key] = str(value)
    for key, attribute in (("created", "created"), ("modified", "modified")):
        value = getattr(properties, attribute, None)
        if value is not None:
            metadata[key] = value.isoformat()
    return metadata


class _WholeTextExtractor(Extractor):
    """A format read as one text: RTF and HTML."""

    convert: Callable[[str], str]
    label = "document"

    def extract(
        self,
        source: Path,
        artifacts_dir: Path,
        limits: LimitSettings,
        media: MediaSettings = MediaSettings(),
    ) -> Extraction:
        raw = source.read_bytes().decode("utf-8", "replace")
        with errors_mapped_to(
            errors.CorruptFileError,
            (ValueError, IndexError, RecursionError),
            f"cannot read the {self.name}",
        ):
            text = type(self).convert(raw)
        segment = ExtractedSegment(SegmentKind.part, 0, self.label, text)
        media_type = next(iter(self.media_types))
        return Extraction(self.qualified_name(), media_type, [segment], {})


def _rtf_to_text(raw: str) -> str:
    from striprtf.striprtf import rtf_to_text

    return rtf_to_text(raw, errors="replace").strip()


@register
class RtfExtractor(_WholeTextExtractor):
    """Rich Text Format, as its text (striprtf, BSD)."""

    name = "rtf"
    version = "1"
    media_types = frozenset({detected.RTF})
    convert = staticmethod(_rtf_to_text)


@register
class HtmlExtractor(_WholeTextExtractor):
    """An HTML page, as its rendered text (inscriptis); nothing it links to is fetched."""

    name = "html"
    version = "1"
    media_types = frozenset({detected.HTML})
    convert = staticmethod(html_text.html_to_text)


@register
class EncryptedOfficeExtractor(Extractor):
    """An Office file saved with a password: failed as ``encrypted``, never guessed at."""

    name = "encrypted-office"
    version = "1"
    media_types = frozenset({detected.ENCRYPTED_OFFICE})

    def extract(
        self,
        source: Path,
        artifacts_dir: Path,
        limits: LimitSettings,
        media: MediaSettings = MediaSettings(),
    ) -> Extraction:
        raise errors.EncryptedFileError(
            "the Office file is password-protected (an encrypted package); "
            "decrypt it and submit it again"
        )
