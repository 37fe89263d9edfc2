"""Plain text, cut into pages so results can cite where something was said.

A text file has no pages of its own; fixed-size pages cut at line boundaries
give every passage a stable, citable label ("page 3") and keep each segment
small enough for a model's context.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from worker import errors
from worker.config import LimitSettings, MediaSettings
from worker.extractors import registry
from worker.extractors.base import ExtractedSegment, Extraction, Extractor, SegmentKind

MEDIA_TYPE = "text/plain"

# Characters per page: about a printed page of prose.
PAGE_CHARS = 3000


@registry.register
class PlainTextExtractor(Extractor):
    """Reads UTF-8 text files."""

    name = "text"
    version = "1"
    media_types = frozenset({MEDIA_TYPE})
    score = 50

    def extract(
        self,
        source: Path,
        artifacts_dir: Path,
        limits: LimitSettings,
        media: MediaSettings = MediaSettings(),
    ) -> Extraction:
        """Pages of at most :data:`PAGE_CHARS` characters, cut at line ends.

        Bytes that are not valid UTF-8 become U+FFFD rather than failing the
        file; a UTF-8 byte order mark is dropped. A line longer than a page is
        cut inside the line, at a space where there is one. Nothing is written
        to ``artifacts_dir``. Raises :class:`~worker.errors.EmptyFileError` for
        a zero-byte file.
        """
        # newline="" keeps "\r\n" as written, so the pages join back to the file.
        with source.open(encoding="utf-8-sig", errors="replace", newline="") as stream:
            pages = list(split_into_pages(stream, PAGE_CHARS))
        if not pages:
            raise errors.EmptyFileError(f"{source.name} holds no text")
        segments = [
            ExtractedSegment(
                kind=SegmentKind.page, index=index, label=f"page {index + 1}", text=page
            )
            for index, page in enumerate(pages)
        ]
        return Extraction(
            extractor=self.qualified_name(),
            media_type=MEDIA_TYPE,
            segments=segments,
            metadata={"page_count": len(pages), "characters": sum(len(page) for page in pages)},
        )


def split_into_pages(lines: Iterable[str], page_chars: int) -> Iterator[str]:
    """Group ``lines`` (each with its line ending) into pages of at most ``page_chars``.

    Pages end at a line end where possible; joined, they give back the input
    exactly, less any NUL characters (Postgres text columns reject them).
    """
    page: list[str] = []
    page_length = 0
    for raw_line in lines:
        line = raw_line.replace("\x00", "")
        if page_length + len(line) > page_chars and page:
            yield "".join(page)
            page, page_length = [], 0
        while len(line) > page_chars:
            cut = _cut_point(line, page_chars)
            yield line[:cut]
            line = line[cut:]
        if line:
            page.append(line)
            page_length += len(line)
    if page:
        yield "".join(page)


def _cut_point(line: str, page_chars: int) -> int:
    """Where to cut an over-long line: after its last space within a page, else at the page end."""
    space = line.rfind(" ", 0, page_chars)
    return space + 1 if space > 0 else page_chars
