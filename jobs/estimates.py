"""What a job or re-run will cost, before it runs: counts, and a duration from history.

The counts come from the inputs themselves, read cheaply: a PDF's page count
from its page tree, audio and video length from ``ffprobe``, the members of a
ZIP from its central directory (nothing is extracted). The duration comes
from what this installation measured: the stored results of past runs of the
same model, per media type (seconds per item and tokens per item, from each
result's timings). A media type this model has never processed here has no
rate, and the estimate says so rather than guess.
"""

from __future__ import annotations

import contextlib
import statistics
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Item, Result
from worker import errors, media_types
from worker.config import MediaSettings

# Past results per (model, media type) the rates are taken from: the latest ones.
HISTORY_RESULTS = 500
_ARCHIVES = frozenset({"application/zip"})
_TIMED = ("audio/", "video/")


@dataclass(frozen=True)
class InputFacts:
    """What one input item is, as far as the estimate needs."""

    media_type: str
    pages: int = 0
    media_seconds: float = 0.0
    from_archive: bool = False


@dataclass(frozen=True)
class Rate:
    """What one item of a media type cost this model here, on the median."""

    seconds: float
    model_calls: float
    prompt_tokens: float
    completion_tokens: float
    samples: int


@dataclass
class Estimate:
    """Counts, expected model work, and the duration where history allows."""

    items: int = 0
    archive_members: int = 0
    by_media_type: dict[str, int] = field(default_factory=dict)
    pages: int = 0
    images: int = 0
    audio_minutes: float = 0.0
    video_minutes: float = 0.0
    model_calls: float = 0.0
    tokens: float = 0.0
    seconds: float | None = None  # None: no history for any of these media types
    without_history: dict[str, int] = field(default_factory=dict)  # media type -> items

    def as_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "archive_members": self.archive_members,
            "by_media_type": self.by_media_type,
            "pages": self.pages,
            "images": self.images,
            "audio_minutes": round(self.audio_minutes, 2),
            "video_minutes": round(self.video_minutes, 2),
            "model_calls": round(self.model_calls, 1),
            "tokens": round(self.tokens),
            "seconds": round(self.seconds, 1) if self.seconds is not None else None,
            "without_history": self.without_history,
        }

    def describe(self) -> list[str]:
        """The estimate as lines for a person."""
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.by_media_type.items()))
        lines = [
            f"items: {self.items} ({kinds})"
            + (f", {self.archive_members} of them inside archives" if self.archive_members else ""),
            f"pages: {self.pages}, images: {self.images}, audio: {self.audio_minutes:.1f} min, "
            f"video: {self.video_minutes:.1f} min",
            f"expected model calls: {self.model_calls:.0f}, tokens: {self.tokens:.0f}",
        ]
        if self.seconds is None:
            lines.append("estimated duration: no history yet for this model on these media types")
        else:
            lines.append(f"estimated duration: {format_duration(self.seconds)} (one worker)")
            if self.without_history:
                missing = ", ".join(f"{n} {kind}" for kind, n in self.without_history.items())
                lines.append(f"  not counted, no history yet: {missing}")
        return lines


def format_duration(seconds: float) -> str:
    """``1 h 05 min``, ``4 min 10 s``, ``12 s``."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


# --- inputs ---------------------------------------------------------------------


def inspect_file(path: Path, media: MediaSettings) -> list[InputFacts]:
    """The items ``path`` will become: itself, or an archive's members (one level)."""
    try:
        media_type = media_types.detect_media_type(path)
    except errors.EmptyFileError:
        return [InputFacts(media_types.EMPTY)]
    if media_type in _ARCHIVES:
        members = _archive_members(path, media)
        if members is not None:
            return members
    return [_facts(path, media_type, media)]


def _facts(path: Path, media_type: str, media: MediaSettings) -> InputFacts:
    if media_type == media_types.PDF:
        return InputFacts(media_type, pages=_pdf_pages(path))
    if media_type.startswith(_TIMED):
        return InputFacts(media_type, media_seconds=_duration(path, media))
    return InputFacts(media_type)


def _pdf_pages(path: Path) -> int:
    from worker.extractors.mupdf import pymupdf

    with contextlib.suppress(Exception), pymupdf.open(path) as document:
        return int(document.page_count)
    return 0


def _duration(path: Path, media: MediaSettings) -> float:
    from worker import ffmpeg_tools

    with contextlib.suppress(errors.SieveError):
        return float(ffmpeg_tools.probe(path, media).duration_seconds or 0.0)
    return 0.0


def _archive_members(path: Path, media: MediaSettings) -> list[InputFacts] | None:
    """A ZIP's file members by type (guessed from the name: nothing is decompressed)."""
    import mimetypes

    try:
        with zipfile.ZipFile(path) as archive:
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    return [
        InputFacts(mimetypes.guess_type(name)[0] or media_types.UNKNOWN, from_archive=True)
        for name in names
    ]


def inspect_paths(files: Iterable[Path], media: MediaSettings) -> list[InputFacts]:
    """Every item the given files will become."""
    return [facts for path in files for facts in inspect_file(path, media)]


def stored_item_facts(session: Session, item_ids: Sequence[int]) -> list[InputFacts]:
    """Facts of items already in the database (a re-run: extraction has counted them)."""
    facts: list[InputFacts] = []
    for start in range(0, len(item_ids), 1000):
        chunk = list(item_ids[start : start + 1000])
        for item in session.scalars(select(Item).where(Item.id.in_(chunk))):
            metadata = item.doc_metadata or {}
            seconds = metadata.get("duration_seconds") or 0.0
            facts.append(
                InputFacts(
                    item.media_type,
                    pages=item.page_count or 0,
                    media_seconds=float(seconds) if isinstance(seconds, int | float) else 0.0,
                )
            )
    return facts


# --- history --------------------------------------------------------------------


def measured_rates(session: Session, model_name: str) -> dict[str, Rate]:
    """Median cost per item of each media type, from this model's latest results here."""
    samples: dict[str, list[Any]] = defaultdict(list)
    rows = session.execute(
        # Only the columns a rate needs: a submit reads this, and outputs are large.
        select(
            Item.media_type,
            Result.timings,
            Result.model_calls,
            Result.prompt_tokens,
            Result.completion_tokens,
        )
        .join(Item, Item.id == Result.item_id)
        .where(Result.model_name == model_name)
        .order_by(Result.id.desc())
        .limit(HISTORY_RESULTS * 20)
    )
    for row in rows:
        if len(samples[row.media_type]) < HISTORY_RESULTS:
            samples[row.media_type].append(row)
    return {kind: _rate(results) for kind, results in samples.items() if results}


def _rate(results: list[Any]) -> Rate:
    seconds = [float((r.timings or {}).get("total_seconds", 0.0)) for r in results]
    return Rate(
        seconds=statistics.median(seconds),
        model_calls=statistics.median(r.model_calls for r in results),
        prompt_tokens=statistics.median(r.prompt_tokens for r in results),
        completion_tokens=statistics.median(r.completion_tokens for r in results),
        samples=len(results),
    )


def estimate(items: Sequence[InputFacts], rates: dict[str, Rate]) -> Estimate:
    """Sum the items' counts, and their expected cost where a rate is known."""
    result = Estimate(items=len(items))
    kinds = Counter(item.media_type for item in items)
    result.by_media_type = dict(sorted(kinds.items()))
    result.archive_members = sum(item.from_archive for item in items)
    result.pages = sum(item.pages for item in items)
    result.images = sum(n for kind, n in kinds.items() if kind.startswith("image/"))
    result.audio_minutes = (
        sum(i.media_seconds for i in items if i.media_type.startswith("audio/")) / 60
    )
    result.video_minutes = (
        sum(i.media_seconds for i in items if i.media_type.startswith("video/")) / 60
    )
    seconds = 0.0
    known = False
    for kind, count in kinds.items():
        rate = rates.get(kind)
        if rate is None:
            result.without_history[kind] = count
            result.model_calls += count  # at least one call per item
            continue
        known = True
        seconds += rate.seconds * count
        result.model_calls += rate.model_calls * count
        result.tokens += (rate.prompt_tokens + rate.completion_tokens) * count
    result.seconds = seconds if known else None
    return result
