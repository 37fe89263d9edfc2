"""What the audio extractor returns and raises: real speech, real Whisper, no mocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import mediagen
from worker import errors
from worker.config import LimitSettings, MediaSettings
from worker.extractors.audio import AudioExtractor, span_label, speech_chunks
from worker.extractors.base import SegmentKind
from worker.extractors.registry import extractor_for

# Runs ffmpeg, Tesseract or Whisper: deselect with -m "not tools".
pytestmark = pytest.mark.tools


@pytest.fixture(scope="module")
def speech_mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four sentences, 0.8 s apart, as MP3 under a content-store name (no extension)."""
    directory = tmp_path_factory.mktemp("speech")
    made = mediagen.make_speech_audio(directory / "speech.mp3")
    stored = directory / "5e0c2a91"
    stored.write_bytes(made.read_bytes())
    return stored


@pytest.fixture
def artifacts_dir(tmp_path: Path) -> Path:
    return tmp_path / "artifacts" / "5e0c2a91"


@pytest.fixture
def limits() -> LimitSettings:
    return LimitSettings()


def distinctive_words_heard(text: str) -> list[str]:
    lowered = text.lower()
    return [word for word in mediagen.DISTINCTIVE_WORDS if word in lowered]


# --- registration ---------------------------------------------------------------


@pytest.mark.parametrize(
    "media_type", ["audio/mpeg", "audio/wav", "audio/ogg", "audio/flac", "audio/mp4"]
)
def test_the_audio_extractor_is_chosen_for_audio_types(media_type: str) -> None:
    assert isinstance(extractor_for(media_type), AudioExtractor)


# --- speech ----------------------------------------------------------------------


def test_the_transcript_contains_what_was_said(
    speech_mp3: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    extraction = AudioExtractor().extract(speech_mp3, artifacts_dir, limits)

    transcript = " ".join(segment.text for segment in extraction.segments)
    heard = distinctive_words_heard(transcript)
    assert len(heard) >= len(mediagen.DISTINCTIVE_WORDS) - 2, transcript
    assert all(segment.kind is SegmentKind.audio_chunk for segment in extraction.segments)
    assert extraction.extractor == "audio/1"
    assert extraction.media_type == "audio/mpeg"
    assert not artifacts_dir.exists()  # audio leaves no derived files


def test_metadata_gives_duration_codec_and_the_speech_model(
    speech_mp3: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    extraction = AudioExtractor().extract(speech_mp3, artifacts_dir, limits)

    assert 15.0 < extraction.metadata["duration_seconds"] < 25.0
    assert extraction.metadata["audio_codec"] == "mp3"
    assert "tiny.en" in extraction.metadata["speech_model"]
    assert extraction.metadata["audio_chunks"] == len(extraction.segments)
    assert "page_count" not in extraction.metadata


def test_chunks_are_cut_at_pauses_and_never_longer_than_the_setting(
    speech_mp3: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    media = MediaSettings(max_chunk_s=6.0)

    extraction = AudioExtractor().extract(speech_mp3, artifacts_dir, limits, media)

    segments = extraction.segments
    assert len(segments) >= 4  # one sentence per chunk at most
    assert [segment.index for segment in segments] == list(range(len(segments)))
    for segment in segments:
        assert segment.start_seconds is not None and segment.end_seconds is not None
        assert 0 < segment.end_seconds - segment.start_seconds <= 6.0
        assert segment.label == span_label(segment.start_seconds, segment.end_seconds)
        assert 0.0 < segment.attributes["confidence"] <= 1.0
    starts = [segment.start_seconds for segment in segments]
    assert starts == sorted(starts)
    # Cut at the pauses between sentences, a sentence's words stay together.
    last_sentence = next(segment for segment in segments if "leaning" in segment.text.lower())
    assert "library" in last_sentence.text.lower()


def test_a_label_cites_the_span_with_an_en_dash() -> None:
    assert span_label(5.2, 12.01) == "00:00:05–00:00:13"
    assert span_label(3725.0, 3731.0) == "01:02:05–01:02:11"


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".wav", ".ogg", ".flac", ".m4a"])
def test_any_format_ffmpeg_reads_is_transcribed(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings, suffix: str
) -> None:
    source = mediagen.make_speech_audio(tmp_path / f"speech{suffix}", mediagen.SPEECH_SENTENCES[2:])

    extraction = AudioExtractor().extract(source, artifacts_dir, limits)

    transcript = " ".join(segment.text for segment in extraction.segments)
    # flights, europe, tuesday, leaning, library: most of them.
    assert len(distinctive_words_heard(transcript)) >= 3, transcript


def test_silence_gives_no_segments_rather_than_an_error(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = mediagen.make_silence(tmp_path / "quiet.wav", seconds=4.0)

    extraction = AudioExtractor().extract(source, artifacts_dir, limits)

    assert extraction.segments == []
    assert extraction.metadata["duration_seconds"] == pytest.approx(4.0, abs=0.1)


# --- pure chunk planning -----------------------------------------------------------


def test_speech_between_silences_is_merged_up_to_the_longest_chunk() -> None:
    silences = [(4.0, 5.0), (9.0, 10.0), (14.0, 20.0)]

    chunks = speech_chunks(silences, duration=24.0, max_chunk_s=10.0)

    # 0-4 and 5-9 fit together; 10-14 would make 0-14, too long; 20-24 stands alone.
    assert [(round(start, 1), round(end, 1)) for start, end in chunks] == [
        (0.0, 9.2),
        (9.8, 14.2),
        (19.8, 24.0),
    ]


def test_speech_without_a_pause_is_cut_into_equal_parts() -> None:
    chunks = speech_chunks([], duration=70.0, max_chunk_s=30.0)

    assert [(round(start, 1), round(end, 1)) for start, end in chunks] == [
        (0.0, 23.3),
        (23.3, 46.7),
        (46.7, 70.0),
    ]


def test_all_silence_gives_no_chunks() -> None:
    assert speech_chunks([(0.0, 12.0)], duration=12.0, max_chunk_s=30.0) == []


# --- files that cannot be read ----------------------------------------------------------


def test_a_file_without_an_audio_stream_raises_missing_stream(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = mediagen.make_video_with_cuts(
        tmp_path / "mute.mp4", mediagen.CUT_SCENES[:1], sentences=None
    )

    with pytest.raises(errors.MissingStreamError) as raised:
        AudioExtractor().extract(source, artifacts_dir, limits)

    assert raised.value.code == "missing_stream"
    assert "no audio stream" in raised.value.message


def test_bytes_that_are_not_audio_are_a_corrupt_file_without_the_stored_path(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = tmp_path / "objects" / "9a" / "9a41c0"
    source.parent.mkdir(parents=True)
    source.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 8)

    with pytest.raises(errors.CorruptFileError) as raised:
        AudioExtractor().extract(source, artifacts_dir, limits)

    assert raised.value.code == "corrupt_file"
    assert str(source) not in raised.value.message
    assert "9a41c0" not in raised.value.message


def test_a_recording_longer_than_the_limit_is_refused_before_decoding(
    speech_mp3: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    with pytest.raises(errors.LimitExceededError) as raised:
        AudioExtractor().extract(
            speech_mp3, artifacts_dir, limits, MediaSettings(max_duration_s=10)
        )

    assert "limit of 00:00:10" in raised.value.message


def test_ffmpeg_overrunning_its_time_limit_is_a_retryable_tool_timeout(
    speech_mp3: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    with pytest.raises(errors.ToolTimeoutError) as raised:
        AudioExtractor().extract(
            speech_mp3, artifacts_dir, limits, MediaSettings(tool_timeout_s=0.001)
        )

    assert raised.value.retryable is True
    assert raised.value.code == "tool_timeout"


def test_a_missing_ffmpeg_is_a_configuration_error(
    speech_mp3: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    media = MediaSettings(ffprobe_path="/nonexistent/ffprobe")

    with pytest.raises(errors.ConfigurationError):
        AudioExtractor().extract(speech_mp3, artifacts_dir, limits, media)


def test_a_whisper_model_path_that_is_not_a_model_is_a_configuration_error_not_a_download(
    speech_mp3: Path, artifacts_dir: Path, limits: LimitSettings, tmp_path: Path
) -> None:
    media = MediaSettings(whisper_model_path=tmp_path / "no-model-here")

    with pytest.raises(errors.ConfigurationError) as raised:
        AudioExtractor().extract(speech_mp3, artifacts_dir, limits, media)

    assert "no Whisper model" in raised.value.message
