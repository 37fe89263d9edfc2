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

from bench import model_rows, parallel_rows, system_rows
from bench.rows import Row, rate_row
from tests import mediagen, pdfgen
from worker.config import LimitSettings, MediaSettings
from worker.extractors import extractor_for


def _extract(
    media_type: str, source: Path, artifacts: Path, media: MediaSettings | None = None
) -> None:
    """Sieve's extractor for ``media_type``, called directly (no sandbox), with default limits."""
    extractor_for(media_type).extract(source, artifacts, LimitSettings(), media or MediaSettings())


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


def media_extract(scratch: Path) -> Row:
    video = mediagen.make_video_with_cuts(scratch / "lecture.mp4")
    duration = float(
        subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "csv=p=0",
                str(video),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )

    def bare() -> None:
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-i", str(video), "-f", "null", "-"],
            check=True,
        )

    def through_sieve() -> None:
        _extract("video/mp4", video, scratch / "video-artifacts")

    return rate_row("media_extract", duration, through_sieve, bare, "media s per wall s")


QUICK = {"pages": 500, "rounds": 1, "files": 2000, "thread_seconds": 15.0, "speech_seconds": 30}
FULL = {"pages": 2000, "rounds": 4, "files": 10000, "thread_seconds": 40.0, "speech_seconds": 120}


def measure(sizes: dict[str, float], scratch: Path) -> list[Row]:
    """Every row, each with its baseline measured right before or after it."""
    settings = model_rows.model_settings()
    rows = [pdf_extract(scratch, int(sizes["pages"])), media_extract(scratch)]
    rows.append(speech(scratch, sizes["speech_seconds"]))
    rows.append(system_rows.submit_files(scratch, int(sizes["files"])))
    rows.extend(model_rows.constrained_output(settings, int(sizes["rounds"])))
    rows.append(model_rows.shared_prefix(settings, int(sizes["rounds"])))
    rows.append(system_rows.model_end_to_end(scratch, int(sizes["rounds"])))
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
