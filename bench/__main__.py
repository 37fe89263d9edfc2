"""``python -m bench [--quick | --full] [--json FILE]``: Sieve against same-run baselines.

Each row measures Sieve and its baseline in the same run, on the same inputs;
a ratio above 1 means Sieve is better. ``bench/RESULTS.md`` holds a real run's
table, the machine, and what each row means. Never a timed test: CI runs
``--quick`` as a smoke check without asserting any figure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import pymupdf

from bench import (
    bookkeeping_rows,
    discovery_rows,
    imaging_rows,
    memory_rows,
    model_rows,
    parallel_rows,
    production_rows,
    system_rows,
)
from bench.rows import Row, least_time, rate_row
from tests import mediagen, pdfgen
from worker import ffmpeg_tools
from worker.config import LimitSettings, MediaSettings
from worker.extractors import extractor_for
from worker.extractors import video as video_extractor
from worker.extractors.base import Extraction


def _extract(
    media_type: str, source: Path, artifacts: Path, media: MediaSettings | None = None
) -> Extraction:
    """Sieve's extractor for ``media_type``, called directly (no sandbox), with default limits."""
    return extractor_for(media_type).extract(
        source, artifacts, LimitSettings(), media or MediaSettings()
    )


def pdf_extract(scratch: Path, page_count: int) -> Row:
    source = pdfgen.make_text_pdf(
        scratch / "bench.pdf",
        [f"Page {n}. " + pdfgen.MEMO_PAGES[n % 2] for n in range(page_count)],
    )

    def bare() -> None:
        with pymupdf.open(source) as document:
            for page in document:
                page.get_text()

    def through_sieve() -> None:
        _extract("application/pdf", source, scratch / "artifacts")

    return rate_row("pdf_extract", page_count, through_sieve, bare, "pages/s")


# Each side of the video row is timed this often and its fastest run kept.
VIDEO_TRIES = 3


def bare_frame_command(
    ffmpeg: str, video: Path, frames_dir: Path, sampling: ffmpeg_tools.FrameSampling
) -> list[str]:
    """What a person would run for Sieve's sampling: the same scale and select, PNGs out.

    The select expression is Sieve's own (one owner for the sampling rule), so
    both sides decode the same frames and write the same ones; the bare side
    has no probe, no hardening, no near-duplicate check and no renames.
    """
    select = ffmpeg_tools._frame_select_expression(sampling)
    return [
        *(ffmpeg, "-nostdin", "-y", "-v", "error", "-i", str(video)),
        *("-vf", f"scale='min({sampling.max_width},iw)':-2,select='{select}'"),
        *("-fps_mode", "passthrough", "-frames:v", str(sampling.max_frames)),
        *("-f", "image2", str(frames_dir / "frame-%06d.png")),
    ]


def video(scratch: Path, seconds: float) -> Row:
    """Wall seconds per minute of a static-camera clip: Sieve's extractor vs bare ffmpeg.

    Both sample frames the same way (MediaSettings' defaults). The clip has no
    sound track, so Sieve's figure is frames only, like the baseline's.
    """
    clip = mediagen.make_static_video(scratch / "static-camera.mp4", seconds)
    media = MediaSettings()
    sampling = video_extractor.frame_sampling(seconds, media)
    bare_frames = scratch / "bare-frames"
    bare_frames.mkdir()
    command = bare_frame_command(media.ffmpeg_path, clip, bare_frames, sampling)
    extractions: list[Extraction] = []

    def bare() -> None:
        subprocess.run(command, check=True)

    def through_sieve() -> None:
        extractions.append(_extract("video/mp4", clip, scratch / "video-artifacts", media))

    minutes = seconds / 60
    sieve_seconds = least_time(through_sieve, VIDEO_TRIES)
    bare_seconds = least_time(bare, VIDEO_TRIES)
    metadata = extractions[-1].metadata
    return Row(
        "video",
        sieve_seconds / minutes,
        bare_seconds / minutes,
        "wall s per video minute",
        higher_is_better=False,
        notes={
            "video_seconds": seconds,
            "best_of": VIDEO_TRIES,
            "frames_sampled": metadata["frames_sampled"],
            "frames_kept": metadata["frames_kept"],
            "bare_frames": len(list(bare_frames.glob("*.png"))),
        },
    )


# Sized so the whole smoke run stays a few minutes of CI's 45 (it proves each row runs;
# the figures in RESULTS.md come from --full or from a run on its own).
QUICK = {
    "pages": 500,
    "rounds": 1,
    "files": 1000,
    "thread_seconds": 8.0,
    "speech_seconds": 20,
    "video_seconds": 30.0,
    "bookkeeping_items": 100,
    "memory_items": 100,
    "mailbox_messages": 1000,
    "office_pages": 20,
    "dicom_instances": 300,
}
FULL = {
    "pages": 2000,
    "rounds": 4,
    "files": 10000,
    "thread_seconds": 40.0,
    "speech_seconds": 120,
    "video_seconds": 300.0,
    "bookkeeping_items": 1000,
    "memory_items": 500,
    "mailbox_messages": 20000,
    "office_pages": 100,
    "dicom_instances": 2000,
}


def measure(sizes: dict[str, float], scratch: Path) -> list[Row]:
    """Every row, each with its baseline measured right before or after it."""
    settings = model_rows.model_settings()
    rows = [pdf_extract(scratch, int(sizes["pages"])), video(scratch, sizes["video_seconds"])]
    rows.append(speech(scratch, sizes["speech_seconds"]))
    rows.append(system_rows.submit_files(scratch, int(sizes["files"])))
    rows.append(production_rows.production_pages(scratch))
    rows.extend(
        discovery_rows.discovery(
            scratch, int(sizes["mailbox_messages"]), int(sizes["office_pages"])
        )
    )
    rows.extend(imaging_rows.imaging(scratch, int(sizes["dicom_instances"])))
    rows.extend(bookkeeping_rows.bookkeeping(scratch, int(sizes["bookkeeping_items"])))
    rows.extend(model_rows.constrained_output(settings, int(sizes["rounds"])))
    rows.append(model_rows.shared_prefix(settings, int(sizes["rounds"])))
    rows.append(system_rows.model_end_to_end(scratch, int(sizes["rounds"])))
    rows.append(system_rows.useless_input(scratch))
    rows.append(system_rows.lanes(scratch, int(sizes["rounds"]) * 2))
    rows.append(memory_rows.worker_memory(scratch, int(sizes["memory_items"])))
    rows.append(model_rows.threads(settings, sizes["thread_seconds"]))
    rows.append(parallel_rows.parallel_sequences(settings))
    return rows


def print_table(rows: list[Row]) -> None:
    print(f"{'name':24} {'sieve':>10} {'baseline':>10} {'ratio':>7}  unit / notes")
    for row in rows:
        notes = " ".join(f"{key}={value}" for key, value in row.notes.items())
        print(
            f"{row.name:24} {row.sieve:10.2f} {row.baseline:10.2f} {row.ratio:7.2f}  "
            f"{row.unit} {notes}".rstrip()
        )


def speech(scratch: Path, seconds: float) -> Row:
    """Audio seconds per wall second through Sieve's audio extractor vs bare faster-whisper."""
    from faster_whisper import WhisperModel
    from faster_whisper.audio import decode_audio

    from worker import speech as speech_module

    audio = mediagen.make_speech_audio(scratch / "speech.mp3", mediagen.varied_sentences(seconds))
    media = MediaSettings()
    speech_module.speech_model(media)  # both sides start with a loaded model
    bare_model = WhisperModel(
        str(speech_module.resolved_model_path(media)),
        device="cpu",
        compute_type=media.whisper_compute_type,
        cpu_threads=media.whisper_threads,
        local_files_only=True,
    )
    duration = len(decode_audio(str(audio))) / 16000

    def bare() -> None:
        segments, _info = bare_model.transcribe(
            str(audio), language=media.whisper_language, beam_size=media.whisper_beam_size
        )
        list(segments)

    def through_sieve() -> None:
        _extract("audio/mpeg", audio, scratch / "speech-artifacts", media)

    notes = {"audio_seconds": round(duration, 1)}
    return rate_row("speech", duration, through_sieve, bare, "audio s per wall s", notes)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small inputs (default; minutes)")
    size.add_argument("--full", action="store_true", help="the issue's sizes (longer)")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    options = parser.parse_args()
    sizes = FULL if options.full else QUICK
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sieve-bench-") as scratch:
        rows = measure(sizes, Path(scratch))
    print_table(rows)
    print(
        f"({time.perf_counter() - started:.0f} s; {model_rows.describe(model_rows.model_settings())})"
    )
    if options.json:
        options.json.write_text(json.dumps([row.as_json() for row in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
