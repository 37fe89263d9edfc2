"""Plain text is read as UTF-8 and cut into citable pages at line ends."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from worker import errors
from worker.config import LimitSettings
from worker.extractors.base import SegmentKind
from worker.extractors.registry import extractor_for
from worker.extractors.text import PAGE_CHARS, PlainTextExtractor, split_into_pages

EMAIL = (
    "From: Ingrid Basso <ingrid.basso@example.org>\n"
    "To: Warehouse supervisors\n"
    "Subject: Dock schedule reminder\n"
    "\n"
    "A reminder that the new loading dock schedule starts on Monday.\n"
    "Inbound deliveries use docks 1 to 3 between 06:00 and 14:00.\n"
)


def numbered_lines(count: int) -> str:
    """Lines of varied length, each ending in a newline."""
    return "".join(
        f"Line {number}: the shipment from the Rotterdam depot was checked {number % 7} times.\n"
        for number in range(1, count + 1)
    )


def test_the_text_extractor_declares_its_name_type_and_score() -> None:
    assert PlainTextExtractor.name == "text"
    assert PlainTextExtractor.media_types == frozenset({"text/plain"})
    assert PlainTextExtractor.score == 50


def test_the_text_extractor_is_registered_for_text_plain() -> None:
    assert isinstance(extractor_for("text/plain"), PlainTextExtractor)


def test_a_short_file_is_one_page_holding_the_whole_text(tmp_path: Path) -> None:
    source = tmp_path / "mail.txt"
    source.write_text(EMAIL, encoding="utf-8")

    extraction = PlainTextExtractor().extract(source, tmp_path / "artifacts", LimitSettings())

    (segment,) = extraction.segments
    assert segment.kind == SegmentKind.page
    assert (segment.index, segment.label) == (0, "page 1")
    assert segment.text == EMAIL
    assert segment.needs_ocr is False
    assert segment.artifact_path is None
    assert extraction.extractor == "text/1"
    assert extraction.media_type == "text/plain"
    assert extraction.metadata == {"page_count": 1, "characters": len(EMAIL)}


def test_nothing_is_written_to_the_artifacts_directory(tmp_path: Path) -> None:
    source = tmp_path / "mail.txt"
    source.write_text(EMAIL, encoding="utf-8")

    PlainTextExtractor().extract(source, tmp_path / "artifacts", LimitSettings())

    assert not (tmp_path / "artifacts").exists()


def test_long_text_is_cut_into_pages_of_at_most_3000_characters_at_line_ends(
    tmp_path: Path,
) -> None:
    content = numbered_lines(400)
    source = tmp_path / "log.txt"
    source.write_text(content, encoding="utf-8")

    extraction = PlainTextExtractor().extract(source, tmp_path / "artifacts", LimitSettings())

    pages = [segment.text for segment in extraction.segments]
    assert PAGE_CHARS == 3000
    assert len(pages) > 1
    assert all(len(page) <= 3000 for page in pages)
    assert all(page.endswith("\n") for page in pages)
    assert "".join(pages) == content
    assert [segment.label for segment in extraction.segments] == [
        f"page {number}" for number in range(1, len(pages) + 1)
    ]
    assert [segment.index for segment in extraction.segments] == list(range(len(pages)))
    assert extraction.metadata == {"page_count": len(pages), "characters": len(content)}


def test_pages_are_filled_as_far_as_whole_lines_allow() -> None:
    content = numbered_lines(400)
    pages = list(split_into_pages(content.splitlines(keepends=True), 3000))

    for page, following in itertools.pairwise(pages):
        next_line = following.splitlines(keepends=True)[0]
        assert len(page) + len(next_line) > 3000


def test_a_line_longer_than_a_page_is_cut_at_spaces(tmp_path: Path) -> None:
    sentence = "The committee approved the revised budget for street lighting. "
    content = sentence * 120 + "\n"  # one 7,700-character line
    source = tmp_path / "one-line.txt"
    source.write_text(content, encoding="utf-8")

    extraction = PlainTextExtractor().extract(source, tmp_path / "artifacts", LimitSettings())

    pages = [segment.text for segment in extraction.segments]
    assert len(pages) == 3
    assert all(len(page) <= 3000 for page in pages)
    assert all(page.endswith(" ") for page in pages[:-1])
    assert "".join(pages) == content


def test_a_line_without_spaces_longer_than_a_page_is_cut_at_the_page_size() -> None:
    pages = list(split_into_pages(["x" * 7000], 3000))

    assert [len(page) for page in pages] == [3000, 3000, 1000]


def test_windows_line_endings_are_kept(tmp_path: Path) -> None:
    content = EMAIL.replace("\n", "\r\n")
    source = tmp_path / "mail.txt"
    source.write_bytes(content.encode("utf-8"))

    extraction = PlainTextExtractor().extract(source, tmp_path / "artifacts", LimitSettings())

    assert extraction.segments[0].text == content


def test_invalid_utf8_bytes_become_replacement_characters(tmp_path: Path) -> None:
    source = tmp_path / "mixed.txt"
    source.write_bytes(b"Invoice total: 12 \x80 due\nPaid in full.\n")

    extraction = PlainTextExtractor().extract(source, tmp_path / "artifacts", LimitSettings())

    assert extraction.segments[0].text == "Invoice total: 12 \ufffd due\nPaid in full.\n"


def test_a_utf8_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    source = tmp_path / "bom.txt"
    source.write_bytes(b"\xef\xbb\xbfMeeting moved to Thursday.\n")

    extraction = PlainTextExtractor().extract(source, tmp_path / "artifacts", LimitSettings())

    assert extraction.segments[0].text == "Meeting moved to Thursday.\n"


def test_nul_characters_are_dropped(tmp_path: Path) -> None:
    source = tmp_path / "nul.txt"
    source.write_bytes(b"Signed\x00 and dated.\n")

    extraction = PlainTextExtractor().extract(source, tmp_path / "artifacts", LimitSettings())

    assert extraction.segments[0].text == "Signed and dated.\n"


def test_a_zero_byte_file_raises_empty_file_error(tmp_path: Path) -> None:
    source = tmp_path / "empty.txt"
    source.write_bytes(b"")

    with pytest.raises(errors.EmptyFileError) as raised:
        PlainTextExtractor().extract(source, tmp_path / "artifacts", LimitSettings())

    assert raised.value.code == "empty_file"
