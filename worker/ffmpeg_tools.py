"""ffmpeg and ffprobe, behind one small module.

This is the only module that imports ``ffmpeg`` (ffmpeg-python, unmaintained
since 2019): it builds ffmpeg's argument lists, and everything else calls the
functions below, so replacing it touches one file. The processes are run here,
not by ffmpeg-python, because its runner neither kills a tool that overruns
nor lets us pass an environment.

Every run is hardened the same way, because a media file is hostile input.
:func:`worker.tools.run_tool` gives it an argument list (never a shell), no
stdin, a minimal environment (no proxy variables, no Sieve secrets) and a
wall-clock timeout (``MediaSettings.tool_timeout_s``) that kills the tool and
raises :class:`~worker.errors.ToolTimeoutError`. On top of that:

- the input is passed as ``file:<absolute path>`` so no name can be read as
  another protocol or as an option;
- ``-protocol_whitelist file`` and a demuxer whitelist, so a playlist (HLS,
  concat, ...) inside a "video" can never open a URL or pull in other files;
- ``-nostdin``, so ffmpeg does not even try to read its closed stdin.

A non-zero exit becomes :class:`~worker.errors.CorruptFileError` when ffmpeg's
own words say the input is bad, :class:`~worker.errors.ToolError` otherwise,
with ffmpeg's last lines and the stored object's path replaced by "the file".
"""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

from worker import errors, tools
from worker.config import MediaSettings

logger = logging.getLogger(__name__)

# Demuxers a submitted file may be read with: real audio and video containers
# only. Playlist and indirection formats (hls, concat, image2 patterns, ...) are
# left out so a file can never make ffmpeg read something other than itself.
DEMUXER_WHITELIST = ",".join(
    [
        "mov",  # also mp4, m4a, 3gp (one demuxer with several names)
        "matroska",  # also webm
        "avi",
        "asf",
        "flv",
        "mpeg",
        "mpegts",
        "ogg",
        "wav",
        "w64",
        "mp3",
        "flac",
        "aac",
        "ac3",
        "eac3",
        "aiff",
        "caf",
        "amr",
        "au",
        "wv",
        "dv",
        "ivf",
    ]
)

# Sample rate and layout every speech model here expects.
SPEECH_SAMPLE_RATE = 16_000

# Phrases in ffmpeg's output that blame the input rather than ffmpeg or Sieve.
_INPUT_ERROR_MARKERS = (
    "Invalid data found when processing input",
    "moov atom not found",
    "partial file",
    "could not find codec parameters",
    "Error while decoding",
    "Invalid NAL unit",
    "does not contain any stream",
    "Stream map '0:a:0' matches no streams",
    "Cannot determine format of input stream",
    "Format not on whitelist",
    "End of file",
)

# How many of ffmpeg's last stderr lines an error message quotes.
_STDERR_LINES_IN_MESSAGE = 3

_SHOWINFO_FRAME = re.compile(r"\bn:\s*\d+\s+pts:\s*-?\d+\s+pts_time:(?P<pts_time>-?[\d.]+)")
_CONTEXT_PREFIX = re.compile(r"\[[^\]]* @ 0x[0-9a-f]+\]\s*")
_SILENCE_START = re.compile(r"silence_start:\s*(?P<at>-?[\d.]+)")
_SILENCE_END = re.compile(r"silence_end:\s*(?P<at>-?[\d.]+)")


@dataclass(frozen=True)
class MediaStream:
    """One stream of a media file, as ffprobe describes it."""

    index: int
    codec_type: str  # "video", "audio", "subtitle", "data", ...
    codec_name: str | None
    width: int | None = None
    height: int | None = None
    frames_per_second: float | None = None
    duration_seconds: float | None = None
    frame_count: int | None = None  # as declared by the container; may be absent
    sample_rate: int | None = None
    channels: int | None = None
    is_cover_art: bool = False  # an attached picture (album art), not a video


@dataclass(frozen=True)
class MediaProbe:
    """What ffprobe says about a file, before anything is decoded."""

    format_name: str
    duration_seconds: float | None
    streams: list[MediaStream]
    creation_time: str | None = None

    @property
    def video_stream(self) -> MediaStream | None:
        """The first real video stream (album art does not count)."""
        return next(
            (s for s in self.streams if s.codec_type == "video" and not s.is_cover_art), None
        )

    @property
    def audio_stream(self) -> MediaStream | None:
        """The first audio stream."""
        return next((s for s in self.streams if s.codec_type == "audio"), None)


@dataclass(frozen=True)
class SampledFrame:
    """A frame ffmpeg wrote as PNG, and when it is shown."""

    path: Path
    pts_seconds: float


@dataclass(frozen=True)
class FrameSampling:
    """How frames are picked from a video; see :func:`sample_frames`."""

    scene_threshold: float  # scene score (0-1) that marks a cut
    min_gap_s: float  # no two frames closer than this
    max_gap_s: float  # a frame at least this often, cut or not
    max_frames: int  # ffmpeg stops after this many
    max_width: int  # frames wider than this are scaled down


def probe(source: Path, media: MediaSettings) -> MediaProbe:
    """Streams, duration, codecs and creation time of ``source``.

    Raises :class:`~worker.errors.CorruptFileError` when ffprobe cannot read
    the file as any whitelisted media format.
    """
    args = [
        tools.find_tool(media.ffprobe_path, "ffprobe"),
        "-hide_banner",
        "-v",
        "error",
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        DEMUXER_WHITELIST,
        "-show_format",
        "-show_streams",
        "-of",
        "json",
        _file_url(source),
    ]
    completed = _run(args, media, tool="ffprobe")
    if completed.returncode != 0:
        raise errors.CorruptFileError(
            "not a readable audio or video file: " + _last_lines(completed.stderr, source)
        )
    try:
        described = json.loads(completed.stdout)
    except json.JSONDecodeError as exc:
        raise errors.ToolError(f"ffprobe printed something other than JSON: {exc}") from exc
    return _parse_probe(described)


def sample_frames(
    source: Path, target_dir: Path, sampling: FrameSampling, media: MediaSettings
) -> list[SampledFrame]:
    """Write frames of the first video stream as ``target_dir/sample-NNNNNN.png``.

    A frame is kept when the scene score passes ``sampling.scene_threshold``
    and at least ``min_gap_s`` passed since the last kept frame, or when
    ``max_gap_s`` passed without one; the first frame is always kept. Returns
    the frames in time order (possibly none, for a stream with no decodable
    frame). Raises :class:`~worker.errors.CorruptFileError` when ffmpeg fails
    on the input.
    """
    target_dir.mkdir(parents=True, exist_ok=True)
    selected = (
        _hardened_input(source)
        .video.filter("scale", f"min({sampling.max_width},iw)", -2)
        .filter("select", _frame_select_expression(sampling))
        .filter("showinfo")
    )
    # The image2 muxer expands "%" in the whole name: escape the directory's own.
    pattern = _file_url(target_dir).replace("%", "%%") + "/sample-%06d.png"
    output = selected.output(
        pattern,
        **{
            "f": "image2",
            "fps_mode": "passthrough",
            "frames:v": sampling.max_frames,
            "t": media.max_duration_s,  # bounds the work even when no duration is declared
        },
    )
    args = _compile(output, media, loglevel="info")
    completed = _run(args, media, tool="ffmpeg")
    _raise_for_failure(completed, source, what="cannot read the video frames")
    times = [float(match["pts_time"]) for match in _SHOWINFO_FRAME.finditer(completed.stderr)]
    written = sorted(target_dir.glob("sample-*.png"))
    if len(written) != len(times):
        raise errors.ToolError(
            f"ffmpeg wrote {len(written)} frames but reported {len(times)} timestamps"
        )
    return [SampledFrame(path, pts) for path, pts in zip(written, times, strict=True)]


def extract_speech_audio(source: Path, target: Path, media: MediaSettings) -> Path:
    """Decode the first audio stream of ``source`` to a 16 kHz mono 16-bit WAV.

    Returns ``target``. Raises :class:`~worker.errors.CorruptFileError` when
    the audio cannot be decoded (or there is no audio stream).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    output = _hardened_input(source).output(
        _file_url(target),
        **{
            "map": "0:a:0",
            "vn": None,
            "ac": 1,
            "ar": SPEECH_SAMPLE_RATE,
            "c:a": "pcm_s16le",
            "f": "wav",
            "t": media.max_duration_s,  # bounds the work even when no duration is declared
        },
    )
    completed = _run(_compile(output, media), media, tool="ffmpeg")
    _raise_for_failure(completed, source, what="cannot decode the audio")
    return target


def detect_silences(
    wav: Path, media: MediaSettings, *, duration_seconds: float
) -> list[tuple[float, float]]:
    """Stretches of ``wav`` quieter than ``media.silence_threshold_db`` for at
    least ``media.min_silence_s``, as ``(start, end)`` seconds in time order.

    A silence still open at the end of the file ends at ``duration_seconds``.
    """
    analysed = _hardened_input(wav).audio.filter(
        "silencedetect", noise=f"{media.silence_threshold_db}dB", d=media.min_silence_s
    )
    output = analysed.output("-", f="null")
    completed = _run(_compile(output, media, loglevel="info"), media, tool="ffmpeg")
    _raise_for_failure(completed, wav, what="cannot analyse the audio for silence")
    return _parse_silences(completed.stderr, duration_seconds)


def _parse_silences(stderr: str, duration_seconds: float) -> list[tuple[float, float]]:
    """Pair silencedetect's start and end lines; clamp to ``[0, duration_seconds]``."""
    silences: list[tuple[float, float]] = []
    open_start: float | None = None
    for line in stderr.splitlines():
        if (start := _SILENCE_START.search(line)) is not None:
            open_start = max(0.0, float(start["at"]))
        elif (end := _SILENCE_END.search(line)) is not None and open_start is not None:
            silences.append((open_start, min(float(end["at"]), duration_seconds)))
            open_start = None
    if open_start is not None and open_start < duration_seconds:
        silences.append((open_start, duration_seconds))
    return silences


def _frame_select_expression(sampling: FrameSampling) -> str:
    """ffmpeg ``select`` expression: first frame, cuts spaced by min_gap, a frame every max_gap.

    ``prev_selected_t`` is NaN until a frame is selected, and a comparison
    with NaN is 0, so the first term alone picks the first frame.
    """
    since_last = "t-prev_selected_t"
    return (
        f"isnan(prev_selected_t)"
        f"+gte({since_last},{sampling.max_gap_s:.3f})"
        f"+gt(scene,{sampling.scene_threshold:.4f})*gte({since_last},{sampling.min_gap_s:.3f})"
    )


def _hardened_input(source: Path) -> Any:
    """An ffmpeg-python input node for ``source`` that can only read that one file."""
    return ffmpeg.input(
        _file_url(source),
        protocol_whitelist="file",
        format_whitelist=DEMUXER_WHITELIST,
    )


def _compile(output: Any, media: MediaSettings, *, loglevel: str = "error") -> list[str]:
    """The argument list for ``output``; ``info`` keeps showinfo and silencedetect lines."""
    hardened = output.global_args("-nostdin", "-hide_banner", "-nostats", "-loglevel", loglevel)
    executable = tools.find_tool(media.ffmpeg_path, "ffmpeg")
    return list(ffmpeg.compile(hardened, cmd=executable, overwrite_output=True))


def _file_url(path: Path) -> str:
    """``file:`` plus the absolute path: never mistaken for another protocol or an option."""
    return f"file:{path.resolve()}"


def _run(args: list[str], media: MediaSettings, *, tool: str) -> subprocess.CompletedProcess[str]:
    """Run ``args`` the hardened way, within ``media.tool_timeout_s``; exit status unchecked."""
    return tools.run_tool(args, tool=tool, timeout_s=media.tool_timeout_s)


def _raise_for_failure(
    completed: subprocess.CompletedProcess[str], source: Path, *, what: str
) -> None:
    """Map a non-zero exit to CorruptFileError (input to blame) or ToolError."""
    if completed.returncode == 0:
        return
    detail = _last_lines(completed.stderr, source)
    if any(marker in completed.stderr for marker in _INPUT_ERROR_MARKERS):
        raise errors.CorruptFileError(f"{what}: {detail}")
    raise errors.ToolError(f"ffmpeg failed (exit {completed.returncode}) and {what}: {detail}")


def _last_lines(stderr: str, source: Path) -> str:
    """ffmpeg's last few lines, with the stored object's path replaced.

    The content store's path means nothing to the user (the item row carries
    the path they submitted), so it never appears in a message; nor do the
    "[mov,mp4,... @ 0x55d1...]" prefixes naming ffmpeg's internal contexts.
    """
    resolved = str(source.resolve())
    lines = [_CONTEXT_PREFIX.sub("", line).strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line]
    tail = " | ".join(lines[-_STDERR_LINES_IN_MESSAGE:]) or "no message"
    for spelling in (f"file:{resolved}", resolved, str(source)):
        tail = tail.replace(spelling, "the file")
    return tail


def _parse_probe(described: dict[str, Any]) -> MediaProbe:
    """A :class:`MediaProbe` from ffprobe's ``-show_format -show_streams`` JSON."""
    container = described.get("format", {})
    tags = {key.lower(): value for key, value in (container.get("tags") or {}).items()}
    streams = [_parse_stream(stream) for stream in described.get("streams", [])]
    return MediaProbe(
        format_name=str(container.get("format_name", "")),
        duration_seconds=_positive_float(container.get("duration")),
        streams=streams,
        creation_time=tags.get("creation_time"),
    )


def _parse_stream(stream: dict[str, Any]) -> MediaStream:
    """One ffprobe stream entry; missing or "N/A" values become None."""
    disposition = stream.get("disposition") or {}
    return MediaStream(
        index=int(stream.get("index", 0)),
        codec_type=str(stream.get("codec_type", "unknown")),
        codec_name=stream.get("codec_name"),
        width=_positive_int(stream.get("width")),
        height=_positive_int(stream.get("height")),
        frames_per_second=_frame_rate(stream.get("avg_frame_rate")),
        duration_seconds=_positive_float(stream.get("duration")),
        frame_count=_positive_int(stream.get("nb_frames")),
        sample_rate=_positive_int(stream.get("sample_rate")),
        channels=_positive_int(stream.get("channels")),
        is_cover_art=bool(disposition.get("attached_pic")),
    )


def _frame_rate(value: Any) -> float | None:
    """ffprobe's rational "30000/1001" as a float; None for "0/0" or absent."""
    if not isinstance(value, str) or "/" not in value:
        return None
    numerator, _, denominator = value.partition("/")
    try:
        rate = float(numerator) / float(denominator)
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate > 0 and math.isfinite(rate) else None


def _positive_float(value: Any) -> float | None:
    """A positive finite number, or None (ffprobe writes "N/A" for unknowns)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 and math.isfinite(number) else None


def _positive_int(value: Any) -> int | None:
    """A positive integer, or None."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
