"""Video: a few telling frames, and the transcript of the sound track.

A model cannot look at every frame (25 a second), and most frames repeat the
one before. So frames are sampled where the picture changes (ffmpeg's scene
score), no more often than ``max_frames_per_minute`` and no less often than
``min_frames_per_minute`` (a static camera still gets a frame now and then),
and never more than ``max_frames_per_video``: for a long video the spacing
widens so the frames still cover all of it. Sampled frames that look like one
already kept (a difference hash within a few bits, and the same overall colour)
are dropped, so a talking head or a static camera gives a handful of frames.

The sound track, if any, is transcribed exactly as the audio extractor does it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from worker import errors, ffmpeg_tools, media_types, pictures
from worker.config import LimitSettings, MediaSettings
from worker.extractors import audio, registry
from worker.extractors.base import ExtractedSegment, Extraction, Extractor, SegmentKind

logger = logging.getLogger(__name__)

MEDIA_TYPES = frozenset(
    {
        "video/mp4",
        "video/quicktime",
        "video/webm",
        "video/x-matroska",
        "video/x-msvideo",
        "video/x-flv",
        "video/x-ms-asf",
        "video/mpeg",
        "video/mp2t",
    }
)

# Difference hash: a 9x8 grey thumbnail, one bit per horizontal neighbour pair.
_HASH_WIDTH, _HASH_HEIGHT = 9, 8
# Two frames whose mean colours differ by more than this (0-255, per channel)
# are different even when their hashes match: a difference hash ignores
# brightness and colour, so a red and a blue slate would hash alike.
_MAX_MEAN_COLOUR_DIFFERENCE = 24


@dataclass(frozen=True)
class FrameFingerprint:
    """What near-duplicate detection compares: structure (dHash) and overall colour."""

    dhash: int  # 64 bits
    mean_colour: tuple[int, int, int]

    def resembles(self, other: FrameFingerprint, max_distance: int) -> bool:
        """True when the hashes differ in at most ``max_distance`` bits and the colours agree."""
        hash_distance = (self.dhash ^ other.dhash).bit_count()
        colour_distance = max(
            abs(a - b) for a, b in zip(self.mean_colour, other.mean_colour, strict=True)
        )
        return hash_distance <= max_distance and colour_distance <= _MAX_MEAN_COLOUR_DIFFERENCE


@dataclass
class _KeptFrames:
    """The frames kept so far, and how many were looked at."""

    segments: list[ExtractedSegment] = field(default_factory=list)
    fingerprints: list[FrameFingerprint] = field(default_factory=list)
    sampled: int = 0

    @property
    def dropped(self) -> int:
        """Sampled frames dropped as near-duplicates of a kept one."""
        return self.sampled - len(self.segments)


@registry.register
class VideoExtractor(Extractor):
    """Samples distinct frames with ffmpeg and transcribes the sound track."""

    name = "video"
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
        """``frame`` segments (PNG artifacts ``frame-NNNNN.png``) and ``audio_chunk`` segments.

        Segments come in time order; each kind is indexed from 0. A frame's
        label is its time ("00:03:12"); its attributes hold ``pts_seconds``,
        ``phash`` (the difference hash, hex) and its size. A container with
        sound but no picture gives only the transcript.

        Raises :class:`~worker.errors.CorruptFileError` when ffmpeg cannot
        read the file, :class:`~worker.errors.MissingStreamError` when it has
        neither picture nor sound, and :class:`~worker.errors.LimitExceededError`
        when it is longer than ``media.max_duration_s`` or its frames larger
        than ``limits.max_image_pixels``.
        """
        probe = ffmpeg_tools.probe(source, media)
        audio.check_duration(probe, media)
        video_stream = probe.video_stream
        if video_stream is None and probe.audio_stream is None:
            raise errors.MissingStreamError("the file holds neither a video nor an audio stream")
        kept = _KeptFrames()
        if video_stream is not None:
            _check_frame_size(video_stream, limits)
            kept = _sample_distinct_frames(source, artifacts_dir, probe, video_stream, media)
        transcript = (
            audio.transcribe_audio_track(source, media) if probe.audio_stream is not None else None
        )
        segments = kept.segments + (transcript.segments if transcript else [])
        segments.sort(key=lambda segment: (segment.start_seconds or 0.0, segment.kind.value))
        return Extraction(
            extractor=self.qualified_name(),
            media_type=media_types.detect_media_type(source),
            segments=segments,
            metadata=_video_metadata(probe, kept, transcript),
        )


def fingerprint(image: Image.Image) -> FrameFingerprint:
    """The difference hash and mean colour of ``image``.

    dHash: shrink to 9x8 grey, then one bit per pair of horizontal neighbours
    (is the left one brighter?). It survives scaling, compression and mild
    noise, which is what makes two frames of a static shot "the same".
    """
    grey = image.convert("L").resize((_HASH_WIDTH, _HASH_HEIGHT), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.int16)
    bits = (pixels[:, :-1] > pixels[:, 1:]).flatten()
    dhash = int("".join("1" if bit else "0" for bit in bits), 2)
    red, green, blue = image.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    return FrameFingerprint(dhash=dhash, mean_colour=(red, green, blue))


def frame_sampling(
    duration_seconds: float | None, media: MediaSettings
) -> ffmpeg_tools.FrameSampling:
    """How densely to sample a video of ``duration_seconds`` (None: unknown).

    The ceiling on frames per minute is lowered for long videos so that
    ``max_frames_per_video`` frames still span the whole duration.
    """
    per_minute_ceiling = media.max_frames_per_minute
    if duration_seconds:
        per_minute_ceiling = min(
            per_minute_ceiling, media.max_frames_per_video / (duration_seconds / 60)
        )
    min_gap = 60.0 / per_minute_ceiling
    max_gap = max(min_gap, 60.0 / media.min_frames_per_minute)
    return ffmpeg_tools.FrameSampling(
        scene_threshold=media.scene_change_threshold,
        min_gap_s=min_gap,
        max_gap_s=max_gap,
        max_frames=media.max_frames_per_video,
        max_width=media.frame_max_width,
    )


def _check_frame_size(stream: ffmpeg_tools.MediaStream, limits: LimitSettings) -> None:
    """Refuse frames larger than an image may be, before a decoder allocates one."""
    if stream.width and stream.height:
        pictures.check_pixel_count(stream.width, stream.height, limits, "each frame of the video")


def _sample_distinct_frames(
    source: Path,
    artifacts_dir: Path,
    probe: ffmpeg_tools.MediaProbe,
    stream: ffmpeg_tools.MediaStream,
    media: MediaSettings,
) -> _KeptFrames:
    """Sample frames into a scratch directory, keep the distinct ones as artifacts."""
    sampling = frame_sampling(probe.duration_seconds or stream.duration_seconds, media)
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    # Inside artifacts_dir, so keeping a frame is a rename on the same file system.
    scratch = Path(tempfile.mkdtemp(prefix=".sampling-", dir=artifacts_dir))
    try:
        sampled = ffmpeg_tools.sample_frames(source, scratch, sampling, media)
        kept = _KeptFrames(sampled=len(sampled))
        for frame in sampled:
            _keep_if_distinct(frame, kept, artifacts_dir, stream, media)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logger.info("kept %d of %d sampled frames", len(kept.segments), kept.sampled)
    return kept


def _keep_if_distinct(
    frame: ffmpeg_tools.SampledFrame,
    kept: _KeptFrames,
    artifacts_dir: Path,
    stream: ffmpeg_tools.MediaStream,
    media: MediaSettings,
) -> None:
    """Move ``frame`` into the artifacts as the next ``frame`` segment unless it repeats one."""
    with Image.open(frame.path) as image:
        image.load()
        candidate = fingerprint(image)
        size = image.size
    if any(
        candidate.resembles(other, media.duplicate_frame_max_distance)
        for other in kept.fingerprints
    ):
        return
    index = len(kept.segments)
    artifact_name = f"frame-{index + 1:05d}.png"
    os.replace(frame.path, artifacts_dir / artifact_name)
    attributes: dict[str, Any] = {
        "pts_seconds": round(frame.pts_seconds, 3),
        "phash": f"{candidate.dhash:016x}",
        "width": size[0],
        "height": size[1],
    }
    label = audio.clock_label(frame.pts_seconds)
    if stream.frames_per_second:
        # Estimated from the average rate: exact for constant-frame-rate video.
        attributes["frame_number"] = round(frame.pts_seconds * stream.frames_per_second)
        # What a result cites: the time and the frame, e.g. "00:03:12 frame 4800".
        label = f"{label} frame {attributes['frame_number']}"
    kept.fingerprints.append(candidate)
    kept.segments.append(
        ExtractedSegment(
            kind=SegmentKind.frame,
            index=index,
            label=label,
            artifact_path=artifact_name,
            start_seconds=round(frame.pts_seconds, 3),
            attributes=attributes,
        )
    )


def _video_metadata(
    probe: ffmpeg_tools.MediaProbe,
    kept: _KeptFrames,
    transcript: audio.AudioTranscript | None,
) -> dict[str, Any]:
    """Duration, codecs, picture size and rate, and what sampling kept."""
    video_stream, audio_stream = probe.video_stream, probe.audio_stream
    duration = probe.duration_seconds or (video_stream.duration_seconds if video_stream else None)
    metadata: dict[str, Any] = {
        "duration_seconds": round(duration, 3) if duration else None,
        "format": probe.format_name,
        "has_video": video_stream is not None,
        "has_audio": audio_stream is not None,
        "frames_sampled": kept.sampled,
        "frames_kept": len(kept.segments),
        "frames_dropped_as_duplicates": kept.dropped,
    }
    if video_stream is not None:
        metadata |= {
            "video_codec": video_stream.codec_name,
            "width": video_stream.width,
            "height": video_stream.height,
            "fps": round(video_stream.frames_per_second, 3)
            if video_stream.frames_per_second
            else None,
            "frame_count": video_stream.frame_count,
        }
    if audio_stream is not None and transcript is not None:
        metadata |= {
            "audio_codec": audio_stream.codec_name,
            "speech_model": transcript.speech_model,
            "audio_chunks": len(transcript.segments),
        }
    if probe.creation_time:
        metadata["creation_time"] = probe.creation_time
    return metadata
