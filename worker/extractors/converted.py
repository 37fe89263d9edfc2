"""Legacy Office and OpenDocument files, converted to PDF by LibreOffice, then read as PDF.

DOC, XLS, PPT and the OpenDocument formats have no permissive Python reader
that a reviewer could trust; LibreOffice renders them the way Office users
see them. The PDF is kept in the item's artifacts (so a production can image
the same pages the model read) and extracted by the PDF extractor, so pages,
OCR of scanned pages and citations work as for any PDF. A legacy file saved
with a password is refused as ``encrypted`` before any conversion.
"""

from __future__ import annotations

from pathlib import Path

from worker import errors, libreoffice, media_types
from worker.config import LimitSettings, MediaSettings
from worker.extractors.base import Extraction, Extractor
from worker.extractors.pdf import PdfExtractor
from worker.extractors.registry import register

# The name LibreOffice is given for each type (it picks import filters partly by it).
_EXTENSIONS: dict[str, str] = {
    media_types.DOC: ".doc",
    media_types.XLS: ".xls",
    media_types.PPT: ".ppt",
    media_types.ODT: ".odt",
    media_types.ODS: ".ods",
    media_types.ODP: ".odp",
}
_COMPOUND_TYPES = frozenset({media_types.DOC, media_types.XLS, media_types.PPT})


@register
class ConvertedOfficeExtractor(Extractor):
    """Converted by LibreOffice headless to PDF; pages extracted from that PDF."""

    name = "libreoffice-pdf"
    version = "1"
    media_types = frozenset(_EXTENSIONS)

    def extract(
        self,
        source: Path,
        artifacts_dir: Path,
        limits: LimitSettings,
        media: MediaSettings = MediaSettings(),
    ) -> Extraction:
        media_type = _declared_type(source)
        if media_type in _COMPOUND_TYPES and _is_encrypted(source):
            raise errors.EncryptedFileError("the Office file is password-protected")
        pdf = libreoffice.convert_to_pdf(
            source, artifacts_dir, limits, media, extension=_EXTENSIONS[media_type]
        )
        extraction = PdfExtractor().extract(pdf, artifacts_dir, limits, media)
        metadata = extraction.metadata | {"converted_pdf": pdf.name, "converted_from": media_type}
        return Extraction(self.qualified_name(), media_type, extraction.segments, metadata)


def _declared_type(source: Path) -> str:
    detected = media_types.detect_media_type(source)
    if detected not in _EXTENSIONS:
        raise errors.UnsupportedTypeError(f"not a file LibreOffice converts here: {detected}")
    return detected


def _is_encrypted(source: Path) -> bool:
    """Whether a compound-file Office document is password-protected (msoffcrypto-tool)."""
    import msoffcrypto

    try:
        with source.open("rb") as stream:
            return bool(msoffcrypto.OfficeFile(stream).is_encrypted())
    except Exception:  # a damaged file: let LibreOffice be the judge
        return False
