"""DICOM pixels as pictures a model can look at.

Stored values become modality values (Hounsfield units for CT) through the
modality LUT, then 8-bit grey through a VOI window: the instance's own
window centre and width, or its VOI LUT, or the frame's full range. CT can
instead be shown through standard windows packed as the channels of one RGB
picture (lung in red, soft tissue in green, brain in blue by default), so one
image carries what a radiologist would page through three windows to see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pydicom
import pydicom.pixels
from PIL import Image

from worker import errors, pictures


@dataclass(frozen=True)
class Window:
    """A linear VOI window in modality units (HU for CT)."""

    name: str
    center: float
    width: float


# Widely used CT presets (centre, width in HU).
CT_WINDOWS: dict[str, Window] = {
    window.name: window
    for window in (
        Window("lung", -600.0, 1500.0),
        Window("soft_tissue", 40.0, 400.0),
        Window("brain", 40.0, 80.0),
        Window("bone", 400.0, 1800.0),
        Window("mediastinum", 50.0, 350.0),
        Window("liver", 60.0, 160.0),
    )
}


def window_to_8_bit(pixels: np.ndarray, center: float, width: float) -> Image.Image:
    """Grey levels from the DICOM linear window (PS3.3 C.11.2.1.2.1), as 8-bit grey."""
    return Image.fromarray(_windowed(pixels, center, width), mode="L")


def _windowed(pixels: np.ndarray, center: float, width: float) -> np.ndarray:
    width = max(width, 1.0)
    lower = center - 0.5 - (width - 1) / 2
    scaled = (pixels - lower) / (width - 1 if width > 1 else 1.0)
    return (np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8)


def windows_as_channels(values: np.ndarray, windows: Sequence[Window]) -> Image.Image:
    """Modality values through up to three windows: grey for one, RGB channels for two or three."""
    if not 1 <= len(windows) <= 3:
        raise ValueError(f"one to three windows pack into a picture, not {len(windows)}")
    if len(windows) == 1:
        return window_to_8_bit(values, windows[0].center, windows[0].width)
    channels = [_windowed(values, w.center, w.width) for w in windows]
    while len(channels) < 3:
        channels.append(np.zeros_like(channels[0]))
    return Image.fromarray(np.stack(channels, axis=-1), mode="RGB")


def modality_values(
    pixels: np.ndarray, dataset: pydicom.Dataset, frame: int | None = None
) -> np.ndarray:
    """Stored values through the modality LUT (rescale slope and intercept), as floats.

    Enhanced multi-frame objects keep the rescale in their functional groups
    (per frame, else shared); the top level is the fallback, then pydicom's
    own modality LUT handling.
    """
    transformation = _pixel_value_transformation(dataset, frame)
    if transformation is not None and "RescaleSlope" in transformation:
        slope = float(transformation.RescaleSlope)
        intercept = float(transformation.get("RescaleIntercept", 0) or 0)
        return pixels.astype(np.float64) * slope + intercept
    return pydicom.pixels.apply_modality_lut(pixels, dataset).astype(np.float64)


def _pixel_value_transformation(
    dataset: pydicom.Dataset, frame: int | None
) -> pydicom.Dataset | None:
    groups = []
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame is not None and frame < len(per_frame):
        groups.append(per_frame[frame])
    shared = dataset.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    for group in groups:
        sequence = group.get("PixelValueTransformationSequence")
        if sequence:
            return sequence[0]
    return None


def rendered(
    pixels: np.ndarray,
    dataset: pydicom.Dataset,
    ct_windows: Sequence[Window] = (),
    frame: int | None = None,
) -> Image.Image:
    """One decoded frame as an 8-bit picture.

    Colour stays RGB; grey goes through ``ct_windows`` when given (CT only)
    or the stored VOI window; MONOCHROME1 is inverted so bone is white.
    ``frame`` (0-based) picks an enhanced object's per-frame rescale. Raises
    :class:`~worker.errors.CorruptFileError` when the attributes that say how
    to render are missing or invalid (a palette without its LUT).
    """
    try:
        return _rendered(pixels, dataset, ct_windows, frame)
    except (ValueError, AttributeError, KeyError, IndexError) as exc:
        raise errors.CorruptFileError(
            f"the DICOM image cannot be rendered: its LUT or window attributes are invalid ({exc})"
        ) from exc


def _rendered(
    pixels: np.ndarray, dataset: pydicom.Dataset, ct_windows: Sequence[Window], frame: int | None
) -> Image.Image:
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if photometric == "PALETTE COLOR":
        pixels = pydicom.pixels.apply_color_lut(pixels, dataset)
    if pixels.ndim == 3:
        return colour_to_8_bit(pixels)
    values = modality_values(pixels, dataset, frame)
    if ct_windows:
        return windows_as_channels(values, ct_windows)
    picture = voi_rendered(values, dataset)
    if photometric == "MONOCHROME1":  # 0 is white in MONOCHROME1
        picture = Image.fromarray(255 - np.asarray(picture), mode="L")
    return picture


def voi_rendered(values: np.ndarray, dataset: pydicom.Dataset) -> Image.Image:
    """The stored window centre/width, else the VOI LUT, else the frame's own range."""
    center, width = (
        first_number(dataset.get("WindowCenter")),
        first_number(dataset.get("WindowWidth")),
    )
    if center is not None and width is not None and width > 0:
        return window_to_8_bit(values, center, width)
    if "VOILUTSequence" in dataset:
        return pictures.stretch_to_8_bit(pydicom.pixels.apply_voi_lut(values, dataset))
    return pictures.stretch_to_8_bit(values)


def colour_to_8_bit(pixels: np.ndarray) -> Image.Image:
    """RGB pixels of any depth as 8-bit RGB."""
    if pixels.dtype != np.uint8:
        high = float(pixels.max()) or 1.0
        pixels = np.clip(pixels.astype(np.float64) * (255.0 / high), 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(pixels[..., :3]), mode="RGB")


def first_number(value: object) -> float | None:
    """A number from a possibly multi-valued DS attribute (window values often come in pairs)."""
    if value is None or value == "":
        return None
    if isinstance(value, pydicom.multival.MultiValue):
        value = value[0] if len(value) else None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
