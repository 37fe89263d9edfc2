"""What the image extractor returns, writes and raises."""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests import mediagen
from worker import errors
from worker.config import LimitSettings, MediaSettings
from worker.extractors.image import ImageExtractor
from worker.extractors.registry import extractor_for
from worker.pictures import evenly_spaced

# Runs ffmpeg, Tesseract or Whisper: deselect with -m "not tools".
pytestmark = pytest.mark.tools

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def artifacts_dir(tmp_path: Path) -> Path:
    # Deliberately not created: the extractor makes it when it needs it.
    return tmp_path / "artifacts" / "d41d8c"


@pytest.fixture
def limits() -> LimitSettings:
    return LimitSettings()


def stored(path: Path) -> Path:
    """The file under a content-store name: no extension to go by."""
    target = path.with_name("7c1e0b55")
    target.write_bytes(path.read_bytes())
    return target


def words(text: str) -> set[str]:
    return set(text.lower().split())


@contextlib.contextmanager
def address_space_to_spare(spare_bytes: int) -> Iterator[None]:
    """Lower this process's address-space soft limit to its current size plus ``spare_bytes``."""
    status = Path("/proc/self/status").read_text()
    current = int(
        next(line for line in status.splitlines() if line.startswith("VmSize:")).split()[1]
    )
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (current * 1024 + spare_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# --- registration -----------------------------------------------------------


@pytest.mark.parametrize(
    "media_type", ["image/png", "image/jpeg", "image/tiff", "image/webp", "image/gif"]
)
def test_the_image_extractor_is_chosen_for_still_image_types(media_type: str) -> None:
    assert isinstance(extractor_for(media_type), ImageExtractor)


# --- pictures with text ---------------------------------------------------------


@pytest.mark.parametrize("name", ["invoice.png", "invoice.jpg", "invoice.webp", "invoice.tif"])
def test_ocr_reads_the_text_of_a_picture_whatever_its_format(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings, name: str
) -> None:
    source = stored(mediagen.make_text_image(tmp_path / name))

    extraction = ImageExtractor().extract(source, artifacts_dir, limits)

    (segment,) = extraction.segments
    assert segment.kind.value == "image"
    assert (segment.index, segment.label) == (0, "image 1")
    assert {"invoice", "4471", "lamps", "318", "euros"} <= words(segment.text)
    assert segment.attributes["ocr"]["engine"].startswith("tesseract ")
    assert segment.attributes["ocr"]["confidence"] > 0.8
    assert (segment.attributes["width"], segment.attributes["height"]) == (1200, 500)
    assert extraction.extractor == "image/1"


def test_each_picture_is_saved_as_png_under_the_artifacts_dir(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = stored(mediagen.make_text_image(tmp_path / "invoice.jpg"))

    extraction = ImageExtractor().extract(source, artifacts_dir, limits)

    (segment,) = extraction.segments
    assert segment.artifact_path == "image-00001.png"
    saved = artifacts_dir / segment.artifact_path
    assert saved.read_bytes()[:8] == PNG_MAGIC
    with Image.open(saved) as image:
        assert image.size == (1200, 500)


def test_the_metadata_gives_format_and_size_but_no_page_count_for_a_single_picture(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = stored(mediagen.make_text_image(tmp_path / "invoice.png"))

    extraction = ImageExtractor().extract(source, artifacts_dir, limits)

    assert extraction.media_type == "image/png"
    assert extraction.metadata["format"] == "PNG"
    assert (extraction.metadata["width"], extraction.metadata["height"]) == (1200, 500)
    assert "page_count" not in extraction.metadata


def test_every_page_of_a_multipage_tiff_is_a_segment_citing_its_page(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    pages = [["Harbour tariff"], ["Pilotage fees"], ["Mooring rules"]]
    source = stored(mediagen.make_multipage_tiff(tmp_path / "tariff.tif", pages))

    extraction = ImageExtractor().extract(source, artifacts_dir, limits)

    assert [segment.label for segment in extraction.segments] == ["page 1", "page 2", "page 3"]
    assert [segment.index for segment in extraction.segments] == [0, 1, 2]
    assert [segment.artifact_path for segment in extraction.segments] == [
        "page-00001.png",
        "page-00002.png",
        "page-00003.png",
    ]
    assert "tariff" in extraction.segments[0].text.lower()
    assert "pilotage" in extraction.segments[1].text.lower()
    assert "mooring" in extraction.segments[2].text.lower()
    assert extraction.metadata["page_count"] == 3


def test_a_tiff_with_more_pages_than_the_limit_is_refused(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = mediagen.make_multipage_tiff(tmp_path / "long.tif", [["one"], ["two"], ["three"]])

    with pytest.raises(errors.LimitExceededError) as raised:
        ImageExtractor().extract(source, artifacts_dir, limits, MediaSettings(max_image_pages=2))

    assert "3 pages" in raised.value.message
    assert not artifacts_dir.exists()


def test_an_animation_is_sampled_to_the_configured_number_of_frames(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    frames = [mediagen.text_image([f"Frame {number}"], (600, 120)) for number in range(12)]
    source = tmp_path / "spinner.gif"
    frames[0].save(source, save_all=True, append_images=frames[1:], duration=100)

    extraction = ImageExtractor().extract(
        source, artifacts_dir, limits, MediaSettings(max_animation_frames=4, ocr_enabled=False)
    )

    assert [segment.label for segment in extraction.segments] == [
        "frame 1",
        "frame 5",
        "frame 8",
        "frame 12",
    ]
    assert extraction.metadata["frame_count"] == 12
    assert extraction.metadata["frames_extracted"] == 4


def test_transparent_and_16_bit_pictures_are_saved_as_8_bit_png(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    transparent = tmp_path / "logo.png"
    Image.new("RGBA", (40, 30), (200, 0, 0, 0)).save(transparent)
    deep = tmp_path / "xray.tif"
    Image.new("I;16", (40, 30), 40000).save(deep)
    media = MediaSettings(ocr_enabled=False)

    for source in (transparent, deep):
        ImageExtractor().extract(source, artifacts_dir / source.stem, limits, media)
        with Image.open(artifacts_dir / source.stem / "image-00001.png") as saved:
            assert saved.mode in ("L", "RGB")


def test_with_ocr_off_segments_have_no_text_and_no_ocr_record(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = mediagen.make_text_image(tmp_path / "invoice.png")

    extraction = ImageExtractor().extract(
        source, artifacts_dir, limits, MediaSettings(ocr_enabled=False)
    )

    assert extraction.segments[0].text == ""
    assert "ocr" not in extraction.segments[0].attributes


def test_ocr_noise_below_the_confidence_floor_is_left_out_of_the_text(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = mediagen.make_text_image(tmp_path / "invoice.png")

    extraction = ImageExtractor().extract(
        source, artifacts_dir, limits, MediaSettings(ocr_min_confidence=0.999)
    )

    (segment,) = extraction.segments
    assert segment.text == ""
    assert segment.attributes["ocr"]["confidence"] < 0.999  # recorded all the same


# --- files that cannot be read ------------------------------------------------


@pytest.mark.parametrize("make_bomb", [mediagen.make_png_bomb, mediagen.make_tiff_bomb])
def test_a_picture_declaring_ten_billion_pixels_is_refused_fast_and_without_allocating(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings, make_bomb: Callable[[Path], Path]
) -> None:
    source = make_bomb(tmp_path / "bomb")
    assert source.stat().st_size < 200_000

    started = time.monotonic()
    # Decoding would need 10 GB; with only 1 GB of address space to spare it
    # would die of MemoryError, not end in a clean LimitExceededError.
    with address_space_to_spare(1024**3), pytest.raises(errors.LimitExceededError) as raised:
        ImageExtractor().extract(source, artifacts_dir, limits)

    assert raised.value.code == "limit_exceeded"
    assert time.monotonic() - started < 2.0
    assert not artifacts_dir.exists()


def test_a_picture_just_over_the_pixel_limit_is_refused(
    tmp_path: Path, artifacts_dir: Path
) -> None:
    # 1200 x 500 = 600,000 pixels: over the limit, but not twice over, where
    # Pillow itself would only warn.
    source = mediagen.make_text_image(tmp_path / "invoice.png")

    with pytest.raises(errors.LimitExceededError):
        ImageExtractor().extract(source, artifacts_dir, LimitSettings(max_image_pixels=500_000))


def test_a_picture_exactly_at_the_pixel_limit_is_read(tmp_path: Path, artifacts_dir: Path) -> None:
    source = mediagen.make_text_image(tmp_path / "invoice.png")

    extraction = ImageExtractor().extract(
        source,
        artifacts_dir,
        LimitSettings(max_image_pixels=600_000),
        MediaSettings(ocr_enabled=False),
    )

    assert len(extraction.segments) == 1


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_a_truncated_picture_is_a_corrupt_file(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings, image_format: str
) -> None:
    source = stored(mediagen.make_truncated_image(tmp_path / "cut", image_format))

    with pytest.raises(errors.CorruptFileError) as raised:
        ImageExtractor().extract(source, artifacts_dir, limits)

    assert raised.value.code == "corrupt_file"
    assert "truncated" in raised.value.message
    assert str(source) not in raised.value.message


def test_bytes_that_are_no_accepted_image_format_are_a_corrupt_file(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    # A valid BMP: Pillow could read it, but it is not a format Sieve accepts.
    source = tmp_path / "3b7f"
    Image.new("RGB", (20, 20)).save(source, format="BMP")

    with pytest.raises(errors.CorruptFileError) as raised:
        ImageExtractor().extract(source, artifacts_dir, limits)

    assert "not a readable image" in raised.value.message


def test_a_missing_file_is_not_reported_as_corrupt(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    with pytest.raises(FileNotFoundError):
        ImageExtractor().extract(tmp_path / "gone", artifacts_dir, limits)


@pytest.mark.parametrize(
    ("count", "wanted", "expected"),
    [
        (3, 10, [0, 1, 2]),
        (12, 4, [0, 4, 7, 11]),
        (100, 1, [0]),
        (2, 2, [0, 1]),
    ],
)
def test_evenly_spaced_picks_first_and_last_and_spreads_the_rest(
    count: int, wanted: int, expected: list[int]
) -> None:
    assert evenly_spaced(count, wanted) == expected
