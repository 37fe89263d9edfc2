"""Text in pictures, read by Tesseract.

Tesseract runs through :func:`worker.tools.run_tool` (an argument list, never
a shell, a minimal environment, a wall-clock timeout). The image goes in on
stdin: Tesseract treats some input names specially (a ``.txt`` file is read as
a list of images), and stdin leaves no name to misread. Output is Tesseract's TSV, which gives every word with its
confidence, so a caller learns how far to trust the text as well as the text.
"""

from __future__ import annotations

import csv
import functools
import io
import subprocess
from dataclasses import dataclass
from typing import Any

from worker import errors, tools
from worker.config import MediaSettings

# Tesseract's TSV: one row per page, block, paragraph, line and word; level 5 is a word.
_WORD_LEVEL = "5"

# Tesseract starts one OpenMP thread per core for each page; in a worker that
# already uses every core that only adds contention, so it gets one.
_TESSERACT_ENVIRONMENT = {"OMP_THREAD_LIMIT": "1"}


@dataclass(frozen=True)
class OcrWord:
    """One word Tesseract read and where: pixels from the image's top left."""

    text: str
    left: int
    top: int
    width: int
    height: int
    confidence: float  # 0-1


@dataclass(frozen=True)
class OcrResult:
    """The text Tesseract read and how sure it was."""

    text: str  # lines joined by newlines, paragraphs by a blank line
    confidence: float | None  # mean word confidence, 0-1; None when no word was found
    engine: str  # "tesseract 5.3.0": recorded with the text for provenance
    words: tuple[OcrWord, ...] = ()  # each word with its box (what pixel cleaning blanks)

    def as_attributes(self) -> dict[str, object]:
        """What a segment records in ``attributes["ocr"]``."""
        return {
            "engine": self.engine,
            "confidence": None if self.confidence is None else round(self.confidence, 3),
        }


def read_text(image: bytes, media: MediaSettings, *, dpi: int | None = None) -> OcrResult:
    """OCR an encoded image (PNG, JPEG, TIFF, ...) in ``media.ocr_languages``.

    ``dpi`` is the image's resolution when known (a rendered page); without it
    Tesseract guesses from the glyph sizes. Raises
    :class:`~worker.errors.ToolTimeoutError` after ``media.tool_timeout_s``,
    :class:`~worker.errors.ToolError` when Tesseract fails and
    :class:`~worker.errors.ConfigurationError` when it is not installed.
    """
    args = [_tesseract(media), "stdin", "stdout", "-l", media.ocr_languages]
    if media.tessdata_dir is not None:
        args += ["--tessdata-dir", str(media.tessdata_dir)]
    if dpi is not None:
        args += ["--dpi", str(dpi)]
    args.append("tsv")
    completed = _run(args, media.tool_timeout_s, stdin=image, check=True)
    return _parse_tsv(completed.stdout, tesseract_version(media))


def segment_text(
    image: bytes, media: MediaSettings, *, dpi: int | None = None
) -> tuple[str, dict[str, Any]]:
    """OCR for a segment: its ``text`` and the ``attributes`` entry recording how it was read.

    Returns ``("", {})`` when OCR is off. Text whose mean word confidence is
    under ``media.ocr_min_confidence`` is what Tesseract makes of a photo or a
    scan of nothing; it is dropped, and ``attributes["ocr"]`` still records
    the engine and the confidence, so the decision can be checked.
    """
    if not media.ocr_enabled:
        return "", {}
    result = read_text(image, media, dpi=dpi)
    trusted = result.confidence is not None and result.confidence >= media.ocr_min_confidence
    return (result.text if trusted else ""), {"ocr": result.as_attributes()}


def tesseract_version(media: MediaSettings) -> str:
    """``"tesseract 5.3.0"``: the first line of ``tesseract --version``, asked once per path."""
    return _version_of(_tesseract(media), media.tool_timeout_s)


@functools.lru_cache(maxsize=4)
def _version_of(executable: str, timeout_s: float) -> str:
    """The cached version line of the Tesseract at ``executable``."""
    completed = _run([executable, "--version"], timeout_s)
    # Tesseract 4 printed its version on stderr.
    lines = completed.stdout.splitlines() + completed.stderr.splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")
    if completed.returncode != 0 or not first.startswith("tesseract"):
        raise errors.ToolError(f"cannot tell the version of {executable}: {first or 'no output'}")
    return first


def _parse_tsv(tsv: str, engine: str) -> OcrResult:
    """Words grouped back into lines and paragraphs, and their mean confidence.

    Tesseract gives ``conf`` -1 to rows that are not words; those, and words
    that are only whitespace, are skipped.
    """
    paragraphs: dict[tuple[str, str, str], dict[str, list[str]]] = {}
    confidences: list[float] = []
    words: list[OcrWord] = []
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        word = (row.get("text") or "").strip()
        if row.get("level") != _WORD_LEVEL or not word:
            continue
        confidence = float(row.get("conf") or -1)
        if confidence < 0:
            continue
        paragraph_key = (row["page_num"], row["block_num"], row["par_num"])
        paragraphs.setdefault(paragraph_key, {}).setdefault(row["line_num"], []).append(word)
        confidences.append(confidence / 100)
        words.append(
            OcrWord(
                word,
                int(row["left"]),
                int(row["top"]),
                int(row["width"]),
                int(row["height"]),
                confidence / 100,
            )
        )
    text = "\n\n".join(
        "\n".join(" ".join(words) for words in lines.values()) for lines in paragraphs.values()
    )
    mean = sum(confidences) / len(confidences) if confidences else None
    return OcrResult(text=text, confidence=mean, engine=engine, words=tuple(words))


def _tesseract(media: MediaSettings) -> str:
    """The Tesseract executable; ConfigurationError when it is not installed."""
    return tools.find_tool(media.tesseract_path, "tesseract", package="tesseract-ocr")


def _run(
    args: list[str], timeout_s: float, *, stdin: bytes | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run Tesseract (one OpenMP thread); ToolTimeoutError when it overruns ``timeout_s``."""
    return tools.run_tool(
        args,
        tool="tesseract",
        timeout_s=timeout_s,
        stdin=stdin,
        extra_environment=_TESSERACT_ENVIRONMENT,
        check=check,
    )
