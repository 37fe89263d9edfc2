"""Pictures as every extractor hands them on: 8-bit PNGs, sized within the limits.

Whatever a picture came from (a photo, a TIFF page, a DICOM frame), what is
stored and shown to OCR and vision models is the same thing: an 8-bit grey or
RGB PNG. These helpers make it so, and refuse a picture over
``LimitSettings.max_image_pixels`` from its declared size, before any pixel is
decoded. They know nothing of file formats: each extractor decodes its own.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from worker import errors
from worker.config import LimitSettings

# Pillow modes holding more than 8 bits per grey pixel: stretched to 8 bits.
_DEEP_GREY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
# Pillow modes with a palette or transparency: flattened onto white as RGB.
_TRANSPARENT_MODES = frozenset({"P", "PA", "LA", "RGBA", "La", "RGBa"})


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
    if image.mode in _DEEP_GREY_MODES:
        return stretch_to_8_bit(np.asarray(image, dtype=np.float64))
    if image.mode in _TRANSPARENT_MODES:
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
    """Refuse a picture over ``limits.max_image_pixels`` before any pixel is decoded.

    ``what`` names the picture in the :class:`~worker.errors.LimitExceededError`
    ("page 3", "each frame of the video").
    """
    if width * height > limits.max_image_pixels:
        raise errors.LimitExceededError(
            f"{what} is {width} x {height} pixels, more than the limit of "
            f"{limits.max_image_pixels} pixels"
        )


def evenly_spaced(count: int, wanted: int) -> list[int]:
    """At most ``wanted`` indexes of ``range(count)``, evenly spread, first and last included.

    Which frames of an animation or a multi-frame scan to read when all of
    them would be too many.
    """
    if count <= wanted:
        return list(range(count))
    if wanted <= 1:
        return [0]
    return sorted({round(step * (count - 1) / (wanted - 1)) for step in range(wanted)})
