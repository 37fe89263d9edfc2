"""Images, audio and video for tests, generated with Pillow, espeak-ng and ffmpeg.

Like :mod:`tests.pdfgen`, nothing is downloaded: a fresh clone with the system
tools (ffmpeg, espeak-ng) makes every input. Clips are short (a few seconds)
so the tests stay quick; the one-minute clips exist for the frame-rate bounds
and for timing.

Speech is read from varied sentences with distinctive words: Whisper drops
audio whose text repeats, and a test checks for words it could not guess.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

# Sentences for speech tracks: each has a few words a model could not guess
# (checked by tests through DISTINCTIVE_WORDS).
SPEECH_SENTENCES = [
    "The harbour master inspected seven cargo ships before noon.",
    "Meanwhile the bakery on Elm Street sold every loaf of bread.",
    "Volcanic ash delayed several flights across northern Europe on Tuesday.",
    "A yellow bicycle was found leaning against the public library.",
]
# Lower-case words from SPEECH_SENTENCES that Whisper tiny.en reliably hears
# in espeak-ng's voice ("bakery", "volcanic" and "bicycle" it often does not).
DISTINCTIVE_WORDS = ["cargo", "street", "flights", "europe", "tuesday", "leaning", "library"]

# Text for images that OCR should read back, in a large clear font.
INVOICE_IMAGE_LINES = ["INVOICE 4471", "Quantity 12 lamps", "Total due 318 euros"]

FRAME_SIZE = (640, 360)
FRAME_RATE = 25

_FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
]


@dataclass(frozen=True)
class Scene:
    """One shot of a generated video: a slide shown for ``seconds``."""

    title: str
    seconds: float
    background: tuple[int, int, int]


# Four shots with cuts at 2, 4 and 6 seconds: each slide differs in layout and colour.
CUT_SCENES = [
    Scene("Harbour report", 2.0, (20, 60, 140)),
    Scene("Bakery sales", 2.0, (200, 120, 30)),
    Scene("Flight delays", 2.0, (30, 140, 60)),
    Scene("Library notes", 2.0, (150, 30, 90)),
]


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A large clear TrueType font: DejaVu when installed, else Pillow's built-in one."""
    for candidate in _FONT_CANDIDATES + _fontconfig_match():
        if Path(candidate).is_file():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size)


def text_image(
    lines: Sequence[str],
    size: tuple[int, int] = (1200, 500),
    *,
    background: tuple[int, int, int] = (255, 255, 255),
    ink: tuple[int, int, int] = (0, 0, 0),
    font_size: int = 64,
) -> Image.Image:
    """An RGB picture of ``lines``, one under another (black on white unless told)."""
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    typeface = font(font_size)
    top = font_size // 2
    for line in lines:
        draw.text((font_size // 2, top), line, font=typeface, fill=ink)
        top += int(font_size * 1.5)
    return image


def make_text_image(path: Path, lines: Sequence[str] = INVOICE_IMAGE_LINES, **save: object) -> Path:
    """Save :func:`text_image` of ``lines``; the format follows the suffix (PNG, JPEG, ...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text_image(lines).save(path, **save)
    return path


def make_multipage_tiff(path: Path, pages: Sequence[Sequence[str]]) -> Path:
    """A grey-scale TIFF with one page per entry of ``pages`` (each a list of lines)."""
    images = [text_image(lines).convert("L") for lines in pages]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(
        path, format="TIFF", save_all=True, append_images=images[1:], compression="tiff_deflate"
    )
    return path


def make_truncated_image(path: Path, image_format: str = "PNG") -> Path:
    """A text image cut off after 60 % of its bytes: the header is fine, the pixels are not."""
    scratch = path.with_name(path.name + ".whole")
    make_text_image(scratch, format=image_format)
    whole = scratch.read_bytes()
    scratch.unlink()
    path.write_bytes(whole[: len(whole) * 6 // 10])
    return path


def make_png_bomb(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A tiny valid-looking PNG that declares ``width`` x ``height`` grey pixels.

    Written chunk by chunk (a real one would take gigabytes of memory to make):
    the header promises the size, the data holds a few compressed rows.
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    pixels = zlib.compress(b"\x00" * (width + 1) * 4)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )
    return path


def make_tiff_bomb(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A little-endian TIFF whose one IFD declares ``width`` x ``height`` 8-bit grey pixels."""
    data_offset = 8 + 2 + 9 * 12 + 4
    entries = [
        (256, 4, 1, width),  # ImageWidth, LONG
        (257, 4, 1, height),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample, SHORT
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # PhotometricInterpretation: black is zero
        (273, 4, 1, data_offset),  # StripOffsets
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 4, 1, height),  # RowsPerStrip: one strip
        (279, 4, 1, 64),  # StripByteCounts: far less than declared
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, field_type, count, value in entries:
        packed_value = struct.pack("<HH", value, 0) if field_type == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, field_type, count) + packed_value
    ifd += struct.pack("<I", 0)  # no next IFD
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00" * 64)
    return path


def varied_sentences(seconds: float) -> list[str]:
    """Enough different sentences to fill roughly ``seconds`` of speech (about 4 s each)."""
    subjects = ["The ferry", "A farmer", "The orchestra", "Our neighbour", "The museum", "A pilot"]
    actions = ["repaired", "painted", "visited", "described", "photographed", "measured"]
    objects = [
        "an old lighthouse",
        "the copper bridge",
        "a wooden canoe",
        "the stone tower",
        "a red tractor",
    ]
    sentences = []
    number = 0
    while len(sentences) * 4.0 < seconds:
        sentences.append(
            f"{subjects[number % len(subjects)]} {actions[(number * 5) % len(actions)]} "
            f"{objects[(number * 7) % len(objects)]} on day {number + 3}."
        )
        number += 1
    return sentences


def make_speech_wav(
    path: Path, sentences: Sequence[str] = SPEECH_SENTENCES, *, pause_s: float = 0.8
) -> Path:
    """espeak-ng reading ``sentences`` with ``pause_s`` of silence between them (22.05 kHz WAV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        parts = []
        for number, sentence in enumerate(sentences):
            part = Path(scratch) / f"sentence-{number}.wav"
            subprocess.run(
                [_tool("espeak-ng"), "-v", "en-us", "-s", "150", "-w", str(part), "--stdin"],
                input=sentence.encode(),
                check=True,
                capture_output=True,
            )
            parts.append(part)
        _concatenate_with_pauses(parts, path, pause_s)
    return path


def make_speech_audio(
    path: Path, sentences: Sequence[str] = SPEECH_SENTENCES, *, codec_args: Sequence[str] = ()
) -> Path:
    """Speech encoded by ffmpeg into the format of ``path``'s suffix (.mp3, .ogg, .wav, .m4a)."""
    with tempfile.TemporaryDirectory() as scratch:
        wav = make_speech_wav(Path(scratch) / "speech.wav", sentences)
        _ffmpeg(["-i", str(wav), *codec_args, str(path)])
    return path


def make_silence(path: Path, seconds: float = 5.0) -> Path:
    """Digital silence in the format of ``path``'s suffix: a recording with no speech."""
    _ffmpeg(["-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono", "-t", f"{seconds}", str(path)])
    return path


def make_video_with_cuts(
    path: Path,
    scenes: Sequence[Scene] = CUT_SCENES,
    *,
    sentences: Sequence[str] | None = SPEECH_SENTENCES,
) -> Path:
    """An H.264 MP4 of ``scenes``: hard cuts between slides, and speech read from ``sentences``.

    ``sentences=None`` gives no sound track at all; otherwise the sound track
    is cut or padded with silence to the video's length.
    """
    total = sum(scene.seconds for scene in scenes)
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        args: list[str] = []
        for number, scene in enumerate(scenes):
            slide = scratch / f"slide-{number}.png"
            _slide(scene, number).save(slide)
            args += [
                "-loop",
                "1",
                "-framerate",
                str(FRAME_RATE),
                "-t",
                f"{scene.seconds}",
                "-i",
                str(slide),
            ]
        concat = "".join(f"[{number}:v]" for number in range(len(scenes)))
        graph = f"{concat}concat=n={len(scenes)}:v=1:a=0,format=yuv420p[v]"
        maps = ["-map", "[v]"]
        if sentences is not None:
            speech = make_speech_wav(scratch / "speech.wav", sentences)
            args += ["-i", str(speech)]
            graph += f";[{len(scenes)}:a]apad,atrim=0:{total}[a]"
            maps += ["-map", "[a]", "-c:a", "aac", "-b:a", "64k"]
        _ffmpeg([*args, "-filter_complex", graph, *maps, *_H264, "-t", f"{total}", str(path)])
    return path


def make_static_video(
    path: Path,
    seconds: float = 60.0,
    *,
    size: tuple[int, int] = FRAME_SIZE,
    frame_rate: int = FRAME_RATE,
    with_speech: bool = False,
) -> Path:
    """A fixed camera: one picture for ``seconds``, with light sensor noise on every frame.

    With ``with_speech``, a track of varied sentences runs for the whole clip
    (what a timing run needs: speech to transcribe all the way through).
    """
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        still = scratch / "still.png"
        _slide(Scene("Reception desk camera", seconds, (90, 90, 80)), 0).resize(size).save(still)
        args = ["-loop", "1", "-framerate", str(frame_rate), "-t", f"{seconds}", "-i", str(still)]
        graph = "[0:v]noise=alls=6:allf=t,format=yuv420p[v]"
        maps = ["-map", "[v]"]
        if with_speech:
            speech = make_speech_wav(scratch / "speech.wav", varied_sentences(seconds))
            args += ["-i", str(speech)]
            graph += f";[1:a]apad,atrim=0:{seconds}[a]"
            maps += ["-map", "[a]", "-c:a", "aac", "-b:a", "64k"]
        encoding = [*_H264[:-1], str(frame_rate)]  # the clip's own rate, not the default
        _ffmpeg([*args, "-filter_complex", graph, *maps, *encoding, "-t", f"{seconds}", str(path)])
    return path


def make_audio_only_mp4(path: Path, sentences: Sequence[str] = SPEECH_SENTENCES) -> Path:
    """An MP4 (brand isom, so detected as video/mp4) that holds only speech."""
    return make_speech_audio(
        path, sentences, codec_args=["-c:a", "aac", "-b:a", "64k", "-brand", "isom", "-f", "mp4"]
    )


def make_truncated_mp4(path: Path) -> Path:
    """The first 30 % of an MP4 whose index (moov) is written last: unreadable."""
    whole = make_video_with_cuts(path.with_name(path.name + ".whole.mp4"), sentences=None)
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: len(data) * 3 // 10])
    return path


def make_video_without_frames(path: Path) -> Path:
    """An MP4 whose index promises a video stream but whose frame data is cut away."""
    whole = make_video_with_cuts(path.with_name(path.name + ".whole.mp4"), sentences=None)
    faststart = path.with_name(path.name + ".faststart.mp4")
    _ffmpeg(["-i", str(whole), "-c", "copy", "-movflags", "+faststart", str(faststart)])
    data = faststart.read_bytes()
    whole.unlink()
    faststart.unlink()
    media_data = data.index(b"mdat")
    path.write_bytes(data[: media_data + 4 + 16])
    return path


def make_mp4_without_streams(path: Path) -> Path:
    """A well-formed MP4 container with no stream at all."""
    _ffmpeg(["-f", "lavfi", "-i", "testsrc=size=64x64:rate=1", "-frames:v", "0", str(path)])
    return path


def _slide(scene: Scene, number: int) -> Image.Image:
    """A slide for ``scene``: its title, and a shape placed differently per slide."""
    image = Image.new("RGB", FRAME_SIZE, scene.background)
    draw = ImageDraw.Draw(image)
    width, height = FRAME_SIZE
    # Shapes in different places give each slide a different structure, which
    # is what a difference hash compares.
    left = (number * 150) % (width - 200)
    draw.rectangle((left, height // 2, left + 180, height - 30), fill=(240, 240, 240))
    draw.ellipse((width - 160 - number * 60, 20, width - 40 - number * 60, 140), fill=(10, 10, 10))
    draw.text((30, 40), scene.title, font=font(44), fill=(255, 255, 255))
    return image


def _concatenate_with_pauses(parts: Sequence[Path], target: Path, pause_s: float) -> None:
    """Join WAV files with ``pause_s`` of digital silence between them."""
    inputs: list[str] = []
    for part in parts:
        inputs += ["-i", str(part)]
    padded = "".join(
        f"[{number}:a]apad=pad_dur={pause_s}[p{number}];" for number in range(len(parts))
    )
    joined = "".join(f"[p{number}]" for number in range(len(parts)))
    _ffmpeg(
        [
            *inputs,
            "-filter_complex",
            f"{padded}{joined}concat=n={len(parts)}:v=0:a=1[a]",
            "-map",
            "[a]",
            str(target),
        ]
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# Small, fast, widely readable H.264.
_H264 = [
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-crf",
    "28",
    "-pix_fmt",
    "yuv420p",
    "-r",
    str(FRAME_RATE),
]


def _ffmpeg(args: Sequence[str]) -> None:
    """Run ffmpeg quietly, overwriting outputs; raise with its message on failure."""
    completed = subprocess.run(
        [_tool("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {completed.stderr.strip()}")


def _tool(name: str) -> str:
    """The path of a system tool the generators need."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed (scripts/setup installs it)")
    return path


def _fontconfig_match() -> list[str]:
    """What fontconfig offers for a bold sans-serif, when fc-match is installed."""
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return []
    completed = subprocess.run(
        [fc_match, "-f", "%{file}", "sans-serif:bold"], capture_output=True, text=True, check=False
    )
    return (
        [completed.stdout.strip()] if completed.returncode == 0 and completed.stdout.strip() else []
    )
