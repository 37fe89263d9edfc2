"""What every extractor takes and returns.

Extractors are pure: a file path in, typed segments out. They know nothing of
the database, Celery or the model, so the embedded mode, the worker and (later)
a sandboxed child process can all call the same code.

Every extractor also maps its parsing library's exceptions to Sieve's error
tree the same way, with :func:`errors_mapped_to` around the library's calls
only, so a bug in Sieve is never reported as a damaged file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from worker import errors
from worker.config import LimitSettings, MediaSettings


class SegmentKind(str, enum.Enum):
    """What part of a source file a segment stands for."""

    page = "page"  # one page of a document; index 0 is page 1
    image = "image"  # a still image, or one page of a multi-page image
    frame = "frame"  # a video frame, with its timestamp
    audio_chunk = "audio_chunk"  # a stretch of audio and its transcript
    part = "part"  # a named part of a document: a message, a sheet, a slide


@dataclass(frozen=True)
class ExtractedSegment:
    """One addressable part of a source file, in source order, as an extractor read it.

    ``index`` is 0-based; ``label`` is what a result cites ("page 3",
    "00:03:12-00:03:40"). ``artifact_path`` is a derived file (a rendered page,
    a frame) relative to the artifacts directory, or None. The pipeline stores
    each as a :class:`db.models.StoredSegment` row.
    """

    kind: SegmentKind
    index: int
    label: str
    text: str = ""
    artifact_path: str | None = None
    start_seconds: float | None = None
    end_seconds: float | None = None
    needs_ocr: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)


class ChildRole(str, enum.Enum):
    """How a child file sat in its container."""

    message = "message"  # a message in a mailbox: a top-level document of its own family
    member = "member"  # a file in an archive or a folder of a mail store: top-level too
    attachment = "attachment"  # attached to, or embedded in, a document: stays in its family


@dataclass(frozen=True)
class ExtractedChild:
    """A file found inside the source (an attachment, a message of a mailbox).

    The extractor writes its bytes to ``artifact_path`` (relative to the
    artifacts directory); the pipeline moves them into the content store and
    makes the child an item of its own, with this item as its parent.
    ``ordinal`` is its 1-based place among its siblings; ``name`` is what its
    path shows after the parent's ("message 3: Re: Q3 forecast").
    """

    name: str
    artifact_path: str
    ordinal: int
    role: ChildRole
    # A message's normalised e-mail hash, when the container read it: what
    # de-duplicates the same message exported from two mailboxes.
    email_hash: str | None = None


@dataclass(frozen=True)
class Extraction:
    """Everything an extractor read from one file."""

    extractor: str  # "name/version" of the extractor that produced this
    media_type: str
    segments: list[ExtractedSegment]
    metadata: dict[str, Any] = field(default_factory=dict)
    # Patient- or person-identifying values (DICOM PS3.15 basic profile tags):
    # stored apart from ``metadata`` and kept out of prompts unless allowed.
    identifiers: dict[str, Any] = field(default_factory=dict)
    children: list[ExtractedChild] = field(default_factory=list)
    # A container (a mailbox, a mail store folder) holds documents but is not
    # one: the model is not asked about it, only about its children.
    container: bool = False
    # An e-mail's identity and thread fields (see worker.email_identity).
    email: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: how an extraction crosses the sandbox boundary."""
        data = dataclasses.asdict(self)
        for segment in data["segments"]:
            segment["kind"] = SegmentKind(segment["kind"]).value
        for child in data["children"]:
            child["role"] = ChildRole(child["role"]).value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Extraction:
        """The inverse of :meth:`to_dict`."""
        segments = [
            ExtractedSegment(**{**segment, "kind": SegmentKind(segment["kind"])})
            for segment in data["segments"]
        ]
        children = [
            ExtractedChild(**{**child, "role": ChildRole(child["role"])})
            for child in data.get("children", [])
        ]
        return cls(**{**data, "segments": segments, "children": children})


class Extractor(ABC):
    """Base class for one media family.

    Subclasses declare which media types they read and how well (``score``;
    the highest score for a detected type wins), then register themselves with
    :func:`worker.extractors.registry.register`.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    media_types: ClassVar[frozenset[str]]
    score: ClassVar[int] = 50

    @abstractmethod
    def extract(
        self,
        source: Path,
        artifacts_dir: Path,
        limits: LimitSettings,
        media: MediaSettings = MediaSettings(),
    ) -> Extraction:
        """Read ``source``; write any derived files under ``artifacts_dir``.

        ``media`` carries tool paths and sampling choices for audio, video,
        images and OCR; extractors that need none ignore it.

        Raises a :class:`worker.errors.InputError` subclass when the file is
        corrupt, encrypted, empty or over a limit.
        """

    @classmethod
    def qualified_name(cls) -> str:
        """``name/version``: recorded with every extraction for provenance."""
        return f"{cls.name}/{cls.version}"


@contextlib.contextmanager
def errors_mapped_to(
    error_class: type[errors.SieveError],
    library_errors: tuple[type[BaseException], ...],
    prefix: str,
    *,
    source: Path | None = None,
) -> Iterator[None]:
    """Raise ``error_class(f"{prefix}: {reason}")`` for any of ``library_errors`` in the block.

    Wrap a library's own calls only: an exception of these types from Sieve's
    code would be re-labelled too. ``reason`` is the library's message, with
    ``source``'s path replaced by "the file" when given: the content store's
    path means nothing to the user, whose path the item row already carries.
    Nest several to map different exceptions to different errors; the
    innermost sees an exception first.
    """
    try:
        yield
    except library_errors as exc:
        reason = str(exc)
        if source is not None:
            reason = reason.replace(str(source), "the file")
        raise error_class(f"{prefix}: {reason}") from exc
