"""Audio: speech turned into timed transcript chunks.

Any format ffmpeg reads is decoded to 16 kHz mono WAV, split at silences into
chunks of at most ``MediaSettings.max_chunk_s`` (one Whisper window by
default), and each chunk is transcribed on its own. A chunk is what a result
cites ("00:01:05–00:01:32"), so chunks follow the speaker's pauses rather
than a fixed grid, and long silences produce no chunk at all.

The video extractor transcribes its sound track with
:func:`transcribe_audio_track`, so both cite speech the same way.
"""

from __future__ import annotations

import logging
import math
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worker import errors, ffmpeg_tools, media_types, speech
from worker.config import LimitSettings, MediaSettings
from worker.extractors import registry
from worker.extractors.base import ExtractedSegment, Extraction, Extractor, SegmentKind

logger = logging.getLogger(__name__)

MEDIA_TYPES = frozenset(
    {
        "audio/mpeg",
        "audio/wav",
        "audio/ogg",
        "audio/flac",
        "audio/mp4",
        "audio/aac",
        "audio/x-aiff",
        "audio/webm",
    }
)

# Speech regions are widened by this much on each side (within the file):
# silencedetect's boundaries can clip a soft first or last syllable.
_SPEECH_PADDING_S = 0.2
# Speech shorter than this is a click or a breath, not a word.
_MIN_SPEECH_S = 0.1


@dataclass(frozen=True)
class AudioTranscript:
    """The transcript of one audio stream, as ``audio_chunk`` segments."""

    segments: list[ExtractedSegment]
    duration_seconds: float  # of the decoded audio, which is what the chunks index into
    speech_model: str


@registry.register
class AudioExtractor(Extractor):
    """Transcribes speech with faster-whisper, one segment per chunk between silences."""

    name = "audio"
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
        """One ``audio_chunk`` segment per stretch of speech, in time order.

        Segments carry ``start_seconds``/``end_seconds``, the transcript as
        ``text`` (empty when nothing was recognised) and
        ``attributes["confidence"]`` (0-1, or None for an empty chunk). A file
        with only silence gives no segments. Nothing is written to
        ``artifacts_dir``.

        Raises :class:`~worker.errors.CorruptFileError` when ffmpeg cannot
        read the file, :class:`~worker.errors.MissingStreamError` when it has
        no audio stream and :class:`~worker.errors.LimitExceededError` when it
        is longer than ``media.max_duration_s``.
        """
        probe = ffmpeg_tools.probe(source, media)
        check_duration(probe, media)
        stream = probe.audio_stream
        if stream is None:
            raise errors.MissingStreamError("the file has no audio stream")
        transcript = transcribe_audio_track(source, media)
        metadata: dict[str, Any] = {
            "duration_seconds": round(probe.duration_seconds or transcript.duration_seconds, 3),
            "format": probe.format_name,
            "audio_codec": stream.codec_name,
            "sample_rate": stream.sample_rate,
            "channels": stream.channels,
            "speech_model": transcript.speech_model,
            "audio_chunks": len(transcript.segments),
        }
        if probe.creation_time:
            metadata["creation_time"] = probe.creation_time
        return Extraction(
            extractor=self.qualified_name(),
            media_type=media_types.detect_media_type(source),
            segments=transcript.segments,
            metadata=metadata,
        )


def check_duration(probe: ffmpeg_tools.MediaProbe, media: MediaSettings) -> None:
    """Refuse media longer than ``media.max_duration_s`` before decoding any of it."""
    duration = probe.duration_seconds
    if duration is not None and duration > media.max_duration_s:
        raise errors.LimitExceededError(
            f"the recording lasts {clock_label(duration)}, more than the limit of "
            f"{clock_label(media.max_duration_s)}"
        )


def transcribe_audio_track(source: Path, media: MediaSettings) -> AudioTranscript:
    """Decode, chunk at silences and transcribe the first audio stream of ``source``.

    The intermediate WAV lives in a private temporary directory, removed on return.
    """
    with tempfile.TemporaryDirectory(prefix="sieve-audio-") as scratch:
        wav = ffmpeg_tools.extract_speech_audio(source, Path(scratch) / "speech.wav", media)
        with wave.open(str(wav), "rb") as reader:
            duration = reader.getnframes() / reader.getframerate()
            silences = ffmpeg_tools.detect_silences(wav, media, duration_seconds=duration)
            spans = speech_chunks(silences, duration, media.max_chunk_s)
            logger.info("%d speech chunks in %.1f s of audio", len(spans), duration)
            segments = [
                _transcribed_segment(index, span, _read_span(reader, span), media)
                for index, span in enumerate(spans)
            ]
    return AudioTranscript(
        segments=segments, duration_seconds=duration, speech_model=speech.model_name(media)
    )


def speech_chunks(
    silences: list[tuple[float, float]], duration: float, max_chunk_s: float
) -> list[tuple[float, float]]:
    """Spans of ``[0, duration]`` to transcribe, each at most ``max_chunk_s`` long.

    The speech between ``silences`` is padded slightly, then consecutive
    stretches are merged while the merged span still fits in ``max_chunk_s``.
    A stretch longer than that (a speaker who never pauses) is cut into equal
    parts, the only place a chunk may split a word.
    """
    chunks: list[tuple[float, float]] = []
    for start, end in _speech_regions(silences, duration):
        for piece_start, piece_end in _split_evenly(start, end, max_chunk_s):
            if chunks and piece_end - chunks[-1][0] <= max_chunk_s:
                chunks[-1] = (chunks[-1][0], piece_end)
            else:
                chunks.append((piece_start, piece_end))
    return chunks


def clock_label(seconds: float) -> str:
    """``HH:MM:SS`` for a point in a recording (rounded down to the second)."""
    whole = max(0, int(seconds))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def span_label(start: float, end: float) -> str:
    """``"00:00:05–00:00:12"`` (an en dash): the start rounded down, the end up."""
    return f"{clock_label(start)}–{clock_label(math.ceil(end))}"


def _speech_regions(
    silences: list[tuple[float, float]], duration: float
) -> list[tuple[float, float]]:
    """The complement of ``silences`` in ``[0, duration]``, padded, without specks."""
    regions: list[tuple[float, float]] = []
    cursor = 0.0
    for silence_start, silence_end in sorted(silences):
        if silence_start - cursor >= _MIN_SPEECH_S:
            regions.append((cursor, silence_start))
        cursor = max(cursor, silence_end)
    if duration - cursor >= _MIN_SPEECH_S:
        regions.append((cursor, duration))
    return [
        (max(0.0, start - _SPEECH_PADDING_S), min(duration, end + _SPEECH_PADDING_S))
        for start, end in regions
    ]


def _split_evenly(start: float, end: float, max_length: float) -> list[tuple[float, float]]:
    """``[start, end]`` cut into the fewest equal parts no longer than ``max_length``."""
    parts = max(1, math.ceil((end - start) / max_length))
    step = (end - start) / parts
    return [(start + step * part, start + step * (part + 1)) for part in range(parts)]


def _read_span(reader: wave.Wave_read, span: tuple[float, float]) -> np.ndarray:
    """The samples of ``span`` as float32 in -1..1 (the WAV is 16-bit mono)."""
    rate = reader.getframerate()
    first = int(span[0] * rate)
    count = max(0, min(reader.getnframes(), math.ceil(span[1] * rate)) - first)
    reader.setpos(first)
    pcm = np.frombuffer(reader.readframes(count), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def _transcribed_segment(
    index: int, span: tuple[float, float], samples: np.ndarray, media: MediaSettings
) -> ExtractedSegment:
    """One ``audio_chunk`` segment for ``span``: its transcript and mean confidence."""
    utterances = speech.transcribe(samples, media)
    text = " ".join(utterance.text for utterance in utterances)
    return ExtractedSegment(
        kind=SegmentKind.audio_chunk,
        index=index,
        label=span_label(*span),
        text=text,
        start_seconds=round(span[0], 3),
        end_seconds=round(span[1], 3),
        attributes={"confidence": _mean_confidence(utterances)},
    )


def _mean_confidence(utterances: list[speech.Utterance]) -> float | None:
    """Confidence of the chunk: the utterances' confidences weighted by their length."""
    weights = [max(u.end_seconds - u.start_seconds, 0.01) for u in utterances]
    if not weights:
        return None
    total = sum(u.confidence * weight for u, weight in zip(utterances, weights, strict=True))
    return round(total / sum(weights), 3)
