"""What the video extractor returns and raises, on clips made with ffmpeg and espeak-ng."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import mediagen
from worker import errors
from worker.config import LimitSettings, MediaSettings
from worker.extractors.base import ExtractedSegment, Extraction, SegmentKind
from worker.extractors.registry import extractor_for
from worker.extractors.video import VideoExtractor, fingerprint

# Runs ffmpeg, Tesseract or Whisper: deselect with -m "not tools".
pytestmark = pytest.mark.tools

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CUT_TIMES = [0.0, 2.0, 4.0, 6.0]  # where mediagen.CUT_SCENES start


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="module")
def cut_clip(clips: Path) -> Path:
    """8 s: four slides with hard cuts at 2, 4 and 6 s, and four spoken sentences."""
    return mediagen.make_video_with_cuts(clips / "cuts.mp4")


@pytest.fixture(scope="module")
def mute_clip(clips: Path) -> Path:
    """The same four slides and cuts, without a sound track (nothing to transcribe)."""
    return mediagen.make_video_with_cuts(clips / "mute.mp4", sentences=None)


@pytest.fixture(scope="module")
def static_clip(clips: Path) -> Path:
    """60 s of one noisy picture: a fixed camera, nothing happening (small, so quick to make)."""
    return mediagen.make_static_video(
        clips / "static.mp4", seconds=60.0, size=(320, 180), frame_rate=10
    )


@pytest.fixture(scope="module")
def cut_extraction(cut_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Extraction:
    artifacts = tmp_path_factory.mktemp("cut-artifacts")
    return VideoExtractor().extract(cut_clip, artifacts, LimitSettings())


@pytest.fixture
def artifacts_dir(tmp_path: Path) -> Path:
    return tmp_path / "artifacts" / "e3b0c4"


@pytest.fixture
def limits() -> LimitSettings:
    return LimitSettings()


def frames_of(extraction: Extraction) -> list[ExtractedSegment]:
    return [segment for segment in extraction.segments if segment.kind is SegmentKind.frame]


def chunks_of(extraction: Extraction) -> list[ExtractedSegment]:
    return [segment for segment in extraction.segments if segment.kind is SegmentKind.audio_chunk]


# --- registration -------------------------------------------------------------------


@pytest.mark.parametrize(
    "media_type",
    ["video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/x-msvideo"],
)
def test_the_video_extractor_is_chosen_for_video_types(media_type: str) -> None:
    assert isinstance(extractor_for(media_type), VideoExtractor)


# --- frames ----------------------------------------------------------------------------


def test_a_frame_is_kept_at_the_start_and_at_every_cut(cut_extraction: Extraction) -> None:
    frames = frames_of(cut_extraction)

    assert [frame.start_seconds for frame in frames] == pytest.approx(CUT_TIMES, abs=0.05)
    assert [frame.label.split(" frame ")[0] for frame in frames] == [
        "00:00:00",
        "00:00:02",
        "00:00:04",
        "00:00:06",
    ]
    assert all(
        frame.label.endswith(f" frame {frame.attributes['frame_number']}") for frame in frames
    )
    assert [frame.index for frame in frames] == [0, 1, 2, 3]
    assert cut_extraction.metadata["frames_kept"] == 4
    assert cut_extraction.extractor == "video/1"
    assert cut_extraction.media_type == "video/mp4"


def test_kept_frames_are_png_artifacts_with_their_time_and_hash(
    mute_clip: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    extraction = VideoExtractor().extract(mute_clip, artifacts_dir, limits)

    frames = frames_of(extraction)
    assert sorted(path.name for path in artifacts_dir.iterdir()) == [
        f"frame-{number:05d}.png" for number in range(1, len(frames) + 1)
    ]  # and the scratch directory of sampled frames is gone
    for frame in frames:
        saved = artifacts_dir / frame.artifact_path
        assert saved.read_bytes()[:8] == PNG_MAGIC
        assert frame.attributes["pts_seconds"] == frame.start_seconds
        assert frame.attributes["frame_number"] == round(frame.start_seconds * mediagen.FRAME_RATE)
        assert len(frame.attributes["phash"]) == 16
        with Image.open(saved) as image:
            assert image.size == (frame.attributes["width"], frame.attributes["height"])
            assert image.size == mediagen.FRAME_SIZE


def test_no_two_frames_are_closer_than_the_ceiling_on_frames_per_minute_allows(
    mute_clip: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    media = MediaSettings(max_frames_per_minute=20)  # at least 3 s apart; cuts come every 2 s

    extraction = VideoExtractor().extract(mute_clip, artifacts_dir, limits, media)

    times = [frame.start_seconds for frame in frames_of(extraction)]
    assert times == pytest.approx([0.0, 4.0], abs=0.05)
    assert all(later - earlier >= 3.0 for earlier, later in itertools.pairwise(times))
    assert len(times) <= 1 + math.floor(8.0 * 20 / 60)


def test_a_static_camera_gives_a_handful_of_frames(
    static_clip: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    extraction = VideoExtractor().extract(static_clip, artifacts_dir, limits)

    assert 1 <= len(frames_of(extraction)) <= 3
    assert extraction.metadata["duration_seconds"] == pytest.approx(60.0, abs=0.1)


def test_the_floor_samples_a_static_camera_and_duplicates_are_dropped(
    static_clip: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    media = MediaSettings(min_frames_per_minute=6)  # a frame at least every 10 s

    extraction = VideoExtractor().extract(static_clip, artifacts_dir, limits, media)

    metadata = extraction.metadata
    assert metadata["frames_sampled"] == 6  # 0, 10, 20, 30, 40, 50 s
    assert metadata["frames_kept"] == len(frames_of(extraction)) == 1
    assert metadata["frames_dropped_as_duplicates"] == 5
    assert [path.name for path in artifacts_dir.iterdir()] == ["frame-00001.png"]


def test_the_hard_cap_spreads_its_frames_over_the_whole_video(
    static_clip: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    media = MediaSettings(
        min_frames_per_minute=60, max_frames_per_video=3, duplicate_frame_max_distance=-1
    )  # a negative distance keeps every frame, so what sampling picked is visible

    extraction = VideoExtractor().extract(static_clip, artifacts_dir, limits, media)

    times = [frame.start_seconds for frame in frames_of(extraction)]
    assert len(times) == 3
    assert times[-1] >= 30.0  # not the first three seconds


def test_the_sound_track_is_transcribed_into_timed_chunks(cut_extraction: Extraction) -> None:
    chunks = chunks_of(cut_extraction)

    transcript = " ".join(chunk.text for chunk in chunks).lower()
    heard = [
        word for word in ("cargo", "street", "harbor", "harbour", "noon") if word in transcript
    ]
    assert len(heard) >= 2, transcript
    assert all(chunk.end_seconds <= 8.5 for chunk in chunks)
    assert "–" in chunks[0].label
    metadata = cut_extraction.metadata
    assert metadata["has_audio"] is True and metadata["audio_chunks"] == len(chunks)
    assert "tiny.en" in metadata["speech_model"]


def test_frames_and_chunks_come_in_time_order(cut_extraction: Extraction) -> None:
    starts = [segment.start_seconds for segment in cut_extraction.segments]

    assert starts == sorted(starts)


def test_the_metadata_describes_the_streams(cut_extraction: Extraction) -> None:
    metadata = cut_extraction.metadata

    assert metadata["duration_seconds"] == pytest.approx(8.0, abs=0.1)
    assert metadata["video_codec"] == "h264"
    assert metadata["audio_codec"] == "aac"
    assert (metadata["width"], metadata["height"]) == mediagen.FRAME_SIZE
    assert metadata["fps"] == mediagen.FRAME_RATE
    assert metadata["has_video"] is True
    assert metadata["frames_sampled"] >= metadata["frames_kept"]
    assert "page_count" not in metadata


def test_a_video_without_sound_has_frames_and_no_chunks(
    mute_clip: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    extraction = VideoExtractor().extract(mute_clip, artifacts_dir, limits)

    assert len(frames_of(extraction)) == 4
    assert chunks_of(extraction) == []
    assert extraction.metadata["has_audio"] is False


def test_an_mp4_holding_only_sound_is_transcribed_without_frames(
    clips: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = mediagen.make_audio_only_mp4(clips / "voice-memo.mp4", mediagen.SPEECH_SENTENCES[3:])

    extraction = VideoExtractor().extract(source, artifacts_dir, limits)

    assert frames_of(extraction) == []
    assert "library" in " ".join(chunk.text for chunk in chunks_of(extraction)).lower()
    assert extraction.metadata["has_video"] is False


# --- near-duplicate detection ------------------------------------------------------------


def test_a_noisy_copy_of_a_picture_resembles_it_and_another_slide_does_not() -> None:
    slide = mediagen.text_image(["Quarterly figures", "Revenue up 4 %"], (640, 360))
    pixels = np.asarray(slide, dtype=np.int16)
    noise = np.random.default_rng(7).integers(-8, 9, pixels.shape)
    noisy = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))
    other = mediagen.text_image(["Staff changes", "", "", "New hires: 3"], (640, 360))

    assert fingerprint(noisy).resembles(fingerprint(slide), max_distance=6)
    assert not fingerprint(other).resembles(fingerprint(slide), max_distance=6)


def test_slates_of_different_colours_are_not_duplicates() -> None:
    red, blue = Image.new("RGB", (64, 36), (200, 20, 20)), Image.new("RGB", (64, 36), (20, 20, 200))

    assert fingerprint(red).dhash == fingerprint(blue).dhash  # structure alone cannot tell
    assert not fingerprint(red).resembles(fingerprint(blue), max_distance=6)


# --- files that cannot be read -------------------------------------------------------------


def test_a_truncated_mp4_is_a_corrupt_file_without_the_stored_path(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = mediagen.make_truncated_mp4(tmp_path / "b7c1d2")

    with pytest.raises(errors.CorruptFileError) as raised:
        VideoExtractor().extract(source, artifacts_dir, limits)

    assert raised.value.code == "corrupt_file"
    assert "moov atom not found" in raised.value.message
    assert str(source) not in raised.value.message
    assert "b7c1d2" not in raised.value.message


def test_a_video_whose_frames_are_missing_is_a_corrupt_file(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = mediagen.make_video_without_frames(tmp_path / "c4d5e6")

    with pytest.raises(errors.CorruptFileError) as raised:
        VideoExtractor().extract(source, artifacts_dir, limits)

    assert "cannot read the video frames" in raised.value.message
    assert "c4d5e6" not in raised.value.message


def test_a_container_with_no_stream_at_all_raises_missing_stream(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = mediagen.make_mp4_without_streams(tmp_path / "hollow.mp4")

    with pytest.raises(errors.MissingStreamError) as raised:
        VideoExtractor().extract(source, artifacts_dir, limits)

    assert raised.value.code == "missing_stream"


def test_a_playlist_cannot_make_ffmpeg_read_another_file(
    cut_clip: Path, tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    # A perfectly readable video, reached through an HLS playlist: refused all the same.
    source = tmp_path / "playlist"
    source.write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:8.0,\n{cut_clip}\n#EXT-X-ENDLIST\n"
    )

    with pytest.raises(errors.CorruptFileError) as raised:
        VideoExtractor().extract(source, artifacts_dir, limits)

    assert "not on whitelist" in raised.value.message
    assert not artifacts_dir.exists()


def test_frames_larger_than_the_image_limit_are_refused_before_decoding(
    mute_clip: Path, artifacts_dir: Path
) -> None:
    with pytest.raises(errors.LimitExceededError) as raised:
        VideoExtractor().extract(mute_clip, artifacts_dir, LimitSettings(max_image_pixels=100_000))

    assert "640 x 360" in raised.value.message


def test_a_video_longer_than_the_limit_is_refused(
    static_clip: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    with pytest.raises(errors.LimitExceededError):
        VideoExtractor().extract(
            static_clip, artifacts_dir, limits, MediaSettings(max_duration_s=30)
        )
