"""Still images: each picture (or TIFF page) saved as PNG and read by OCR.

Pillow reads the file, restricted to the formats Sieve accepts: Pillow can
also open EPS (through Ghostscript), PSD and a dozen rarer formats, none of
which a submitted "image" needs and each of which is more attack surface.
Pillow errors are mapped to Sieve's error tree here, and only around Pillow's
own calls, so a bug in Sieve is never reported as a damaged file. Converting
to 8-bit PNG is :mod:`worker.pictures`' job, shared with the DICOM extractor.

Decompression bombs are refused from the declared size alone: Pillow reads
only the header on open, so a 100,000 x 100,000 image costs nothing until its
pixels are loaded, and they never are when the size is over
``limits.max_image_pixels``.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, ImageOps

from worker import errors, media_types, ocr, pictures
from worker.config import LimitSettings, MediaSettings
from worker.extractors import registry
from worker.extractors.base import (
    ExtractedSegment,
    Extraction,
    Extractor,
    SegmentKind,
    errors_mapped_to,
)

logger = logging.getLogger(__name__)

MEDIA_TYPES = frozenset({"image/png", "image/jpeg", "image/tiff", "image/webp", "image/gif"})

# Pillow plugins allowed to open a submitted file. (Multi-picture JPEGs from
# cameras, MPO, come through the JPEG plugin.)
_PILLOW_FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "GIF")

# What Pillow raises for a file it cannot decode: truncated data (OSError),
# malformed headers (SyntaxError inside plugins, struct.error), bad tiles
# (ValueError), and premature ends (EOFError).
_PILLOW_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
)
# A decompression bomb: over twice the pixel limit (the error), or over it
# (the warning, which pillow_warnings_logged raises).
_PILLOW_BOMB_ERRORS: tuple[type[BaseException], ...] = (
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)

# EXIF fields worth keeping as metadata. GPS position is deliberately left
# out: it says where a person was, and nothing downstream needs it.
_EXIF_METADATA = {
    ExifTags.Base.Make: "camera_make",
    ExifTags.Base.Model: "camera_model",
    ExifTags.Base.DateTime: "modified",
    ExifTags.Base.Software: "software",
}
_EXIF_DATE_TAKEN = ExifTags.Base.DateTimeOriginal


@registry.register
class ImageExtractor(Extractor):
    """Reads PNG, JPEG, TIFF (multi-page too), WebP and GIF with Pillow; OCR with Tesseract."""

    name = "image"
    version = "1"
    media_types = MEDIA_TYPES
    score = 100

    def extract(
        self,
        source: Path,
        artifacts_dir: Path,
        limits: LimitSettings,
        media: MediaSettings = MediaSettings(),
    ) -> Extraction:
        """One ``image`` segment per picture, saved as ``artifacts_dir/<label>.png``.

        A single picture is "image 1"; the pages of a multi-page TIFF are
        "page 1", "page 2", ...; an animation gives up to
        ``media.max_animation_frames`` evenly spaced "frame N". ``text`` is
        what OCR read (empty when OCR is off or finds nothing) and
        ``attributes`` hold ``width``, ``height`` and ``ocr`` (engine and mean
        word confidence, 0-1).

        Raises :class:`~worker.errors.LimitExceededError` for a picture of
        more than ``limits.max_image_pixels`` pixels or a TIFF of more than
        ``media.max_image_pages`` pages, and
        :class:`~worker.errors.CorruptFileError` for a file Pillow cannot
        decode (truncated, malformed, or not an accepted format).
        """
        if not source.is_file():
            raise FileNotFoundError(source)
        # Pillow's own bomb check reads this module-wide value; an extraction
        # runs one file per process, so setting it per call is safe.
        Image.MAX_IMAGE_PIXELS = limits.max_image_pixels
        with pillow_warnings_logged():
            image = _open_image(source)
            with image:
                to_read = _pictures_to_read(image, media)
                segments = [
                    _extract_picture(image, frame, label, index, artifacts_dir, limits, media)
                    for index, (frame, label) in enumerate(to_read)
                ]
                metadata = _image_metadata(image, to_read)
        return Extraction(
            extractor=self.qualified_name(),
            media_type=media_types.detect_media_type(source),
            segments=segments,
            metadata=metadata,
        )


@contextlib.contextmanager
def pillow_warnings_logged() -> Iterator[None]:
    """Pillow's warnings (odd EXIF, odd TIFF tags) logged rather than printed or raised.

    The decompression-bomb warning (over the limit, under twice the limit) is
    raised instead, so :func:`decoding_errors_mapped` refuses every image over
    the limit the same way.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield
    for warning in caught:
        logger.warning("Pillow: %s", warning.message)


@contextlib.contextmanager
def decoding_errors_mapped(what: str) -> Iterator[None]:
    """Pillow's errors inside the block as Sieve's; wrap Pillow calls only.

    Raises :class:`~worker.errors.LimitExceededError` for a decompression
    bomb and :class:`~worker.errors.CorruptFileError` (message starting with
    ``what``) for anything Pillow cannot decode.
    """
    with (
        errors_mapped_to(
            errors.LimitExceededError, _PILLOW_BOMB_ERRORS, "the image is too large to open safely"
        ),
        errors_mapped_to(errors.CorruptFileError, _PILLOW_DECODE_ERRORS, what),
    ):
        yield


def _open_image(source: Path) -> Image.Image:
    """Open ``source`` with one of the accepted Pillow plugins; only its header is read."""
    what = "not a readable image"
    with decoding_errors_mapped(what):
        try:
            return Image.open(source, formats=_PILLOW_FORMATS)
        except Image.UnidentifiedImageError as exc:
            # Pillow's message only names the stored object's path; say what it means.
            raise errors.CorruptFileError(
                f"{what} (damaged, or a format Sieve does not accept)"
            ) from exc


def _pictures_to_read(image: Image.Image, media: MediaSettings) -> list[tuple[int, str]]:
    """``(frame number, label)`` of each picture to extract from ``image``."""
    with decoding_errors_mapped("cannot count the pictures in the file"):
        frame_count = int(getattr(image, "n_frames", 1))
    if frame_count <= 1:
        return [(0, "image 1")]
    if image.format == "TIFF":
        if frame_count > media.max_image_pages:
            raise errors.LimitExceededError(
                f"the TIFF has {frame_count} pages, more than the limit of {media.max_image_pages}"
            )
        return [(frame, f"page {frame + 1}") for frame in range(frame_count)]
    chosen = pictures.evenly_spaced(frame_count, media.max_animation_frames)
    return [(frame, f"frame {frame + 1}") for frame in chosen]


def _extract_picture(
    image: Image.Image,
    frame: int,
    label: str,
    index: int,
    artifacts_dir: Path,
    limits: LimitSettings,
    media: MediaSettings,
) -> ExtractedSegment:
    """Decode frame ``frame`` of ``image``, save it as PNG and OCR it."""
    with decoding_errors_mapped(f"cannot read {label}"):
        image.seek(frame)
    pictures.check_pixel_count(image.width, image.height, limits, label)
    with decoding_errors_mapped(f"cannot decode {label}"):
        image.load()
        # Photos are stored as the sensor saw them; EXIF says how to turn them upright.
        upright = ImageOps.exif_transpose(image) if frame == 0 else image
        upright = pictures.displayable(upright)
    word, number = label.split()
    artifact_name = f"{word}-{int(number):05d}.png"
    png = pictures.save_png(upright, artifacts_dir / artifact_name)
    text, attributes = ocr.segment_text(png, media, dpi=_dpi(image))
    return ExtractedSegment(
        kind=SegmentKind.image,
        index=index,
        label=label,
        text=text,
        artifact_path=artifact_name,
        attributes={"width": upright.width, "height": upright.height, **attributes},
    )


def _dpi(image: Image.Image) -> int | None:
    """The resolution the file declares, when it declares a plausible one."""
    declared = image.info.get("dpi")
    if not declared:
        return None
    try:
        dpi = round(float(declared[0]))
    except (TypeError, ValueError, IndexError):
        return None
    return dpi if 50 <= dpi <= 2400 else None


def _image_metadata(image: Image.Image, to_read: list[tuple[int, str]]) -> dict[str, Any]:
    """Format, size of the first picture, page or frame count, a few EXIF fields."""
    with decoding_errors_mapped("cannot read the image's metadata"):
        image.seek(0)
        frame_count = int(getattr(image, "n_frames", 1))
        exif = _exif_metadata(image)
    metadata: dict[str, Any] = {
        "format": image.format,
        "width": image.width,
        "height": image.height,
        "mode": image.mode,
    }
    if image.format == "TIFF":
        metadata["page_count"] = frame_count
    elif frame_count > 1:
        metadata["frame_count"] = frame_count
        metadata["frames_extracted"] = len(to_read)
    if (dpi := _dpi(image)) is not None:
        metadata["dpi"] = dpi
    return metadata | exif


def _exif_metadata(image: Image.Image) -> dict[str, str]:
    """Camera make and model, software and dates from EXIF, as plain strings."""
    exif = image.getexif()
    found: dict[str, str] = {}
    for tag, key in _EXIF_METADATA.items():
        value = exif.get(tag)
        if isinstance(value, str) and value.strip("\x00 "):
            found[key] = value.strip("\x00 ")
    taken = exif.get_ifd(ExifTags.IFD.Exif).get(_EXIF_DATE_TAKEN)
    if isinstance(taken, str) and taken.strip("\x00 "):
        found["taken"] = taken.strip("\x00 ")
    return found
