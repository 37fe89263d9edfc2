"""Still images: each picture (or TIFF page) saved as PNG and read by OCR.

Pillow reads the file, restricted to the formats Sieve accepts: Pillow can
also open EPS (through Ghostscript), PSD and a dozen rarer formats, none of
which a submitted "image" needs and each of which is more attack surface.
Pillow errors are mapped to Sieve's error tree here, and only around Pillow's
own calls, so a bug in Sieve is never reported as a damaged file.

Decompression bombs are refused from the declared size alone: Pillow reads
only the header on open, so a 100,000 x 100,000 image costs nothing until its
pixels are loaded, and they never are when the size is over
``limits.max_image_pixels``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageOps

from jobs.settings import LimitSettings, MediaSettings
from worker import errors, media_types, ocr
from worker.extractors import registry
from worker.extractors.base import Extraction, Extractor, Segment, SegmentKind

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
    extensions = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".gif"})
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
            with decoding_errors_mapped("not a readable image"):
                image = Image.open(source, formats=_PILLOW_FORMATS)
            with image:
                pictures = _pictures_to_read(image, media)
                segments = [
                    _extract_picture(image, frame, label, index, artifacts_dir, limits, media)
                    for index, (frame, label) in enumerate(pictures)
                ]
                metadata = _image_metadata(image, pictures)
        return Extraction(
            extractor=self.qualified_name(),
            media_type=media_types.detect_media_type(source),
            segments=segments,
            metadata=metadata,
        )


def save_png(image: Image.Image, target: Path) -> bytes:
    """Save ``image`` as PNG at ``target`` (directories created); returns the PNG bytes.

    Modes PNG cannot hold, or that OCR and vision models read badly (16-bit,
    CMYK, transparency), are converted to 8-bit grey or RGB first.
    """
    buffer = io.BytesIO()
    displayable(image).save(buffer, format="PNG")
    encoded = buffer.getvalue()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(encoded)
    return encoded


def displayable(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit grey or RGB; transparency flattened onto white."""
    if image.mode in ("1", "L", "RGB"):
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return stretch_to_8_bit(np.asarray(image, dtype=np.float64))
    if image.mode in ("P", "PA", "LA", "RGBA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def stretch_to_8_bit(pixels: np.ndarray) -> Image.Image:
    """A grey image from any numeric array, its range stretched to 0-255."""
    low, high = float(np.min(pixels)), float(np.max(pixels))
    if high <= low:
        return Image.fromarray(np.zeros(pixels.shape, dtype=np.uint8), mode="L")
    scaled = (pixels - low) * (255.0 / (high - low))
    return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), mode="L")


def check_pixel_count(width: int, height: int, limits: LimitSettings, what: str) -> None:
    """Refuse a picture over ``limits.max_image_pixels`` before any pixel is decoded."""
    if width * height > limits.max_image_pixels:
        raise errors.LimitExceededError(
            f"{what} is {width} x {height} pixels, more than the limit of "
            f"{limits.max_image_pixels} pixels"
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
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise errors.LimitExceededError(f"the image is too large to open safely: {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise errors.CorruptFileError(
            f"{what} (damaged, or a format Sieve does not accept)"
        ) from exc
    except _PILLOW_DECODE_ERRORS as exc:
        raise errors.CorruptFileError(f"{what}: {exc}") from exc


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
    chosen = evenly_spaced(frame_count, media.max_animation_frames)
    return [(frame, f"frame {frame + 1}") for frame in chosen]


def evenly_spaced(count: int, wanted: int) -> list[int]:
    """At most ``wanted`` indexes of ``range(count)``, evenly spread, first and last included."""
    if count <= wanted:
        return list(range(count))
    if wanted <= 1:
        return [0]
    return sorted({round(step * (count - 1) / (wanted - 1)) for step in range(wanted)})


def _extract_picture(
    image: Image.Image,
    frame: int,
    label: str,
    index: int,
    artifacts_dir: Path,
    limits: LimitSettings,
    media: MediaSettings,
) -> Segment:
    """Decode frame ``frame`` of ``image``, save it as PNG and OCR it."""
    with decoding_errors_mapped(f"cannot read {label}"):
        image.seek(frame)
    check_pixel_count(image.width, image.height, limits, label)
    with decoding_errors_mapped(f"cannot decode {label}"):
        image.load()
        # Photos are stored as the sensor saw them; EXIF says how to turn them upright.
        upright = ImageOps.exif_transpose(image) if frame == 0 else image
        upright = displayable(upright)
    word, number = label.split()
    artifact_name = f"{word}-{int(number):05d}.png"
    png = save_png(upright, artifacts_dir / artifact_name)
    text, attributes = ocr.segment_text(png, media, dpi=_dpi(image))
    return Segment(
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


def _image_metadata(image: Image.Image, pictures: list[tuple[int, str]]) -> dict[str, Any]:
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
        metadata["frames_extracted"] = len(pictures)
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
