"""``python -m bench [--json FILE]``: Sieve's throughput against same-run baselines.

Rows (a ratio above 1 means Sieve is faster than its baseline):

* ``pdf_extract``: pages/s through Sieve's PDF extractor (text layer, metadata,
  scans rendered) against a bare PyMuPDF loop reading the text of every page.
* ``media_extract``: seconds of media extracted per wall second through
  Sieve's video and audio extractors (frames at scene changes, speech
  transcribed) against a bare ``ffmpeg`` decode of the same file. This row
  used to be a "timed test" asserting only ``> 0``; it is measured here instead.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pymupdf

from tests import mediagen, pdfgen
from worker.config import LimitSettings, MediaSettings
from worker.extractors import extractor_for


@dataclass(frozen=True)
class Row:
    name: str
    sieve: float
    baseline: float
    unit: str

    @property
    def ratio(self) -> float:
        return self.sieve / self.baseline if self.baseline else float("nan")


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


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
        extractor_for("application/pdf").extract(
            source, scratch / "artifacts", LimitSettings(), MediaSettings()
        )

    return Row(
        "pdf_extract",
        page_count / _timed(through_sieve),
        page_count / _timed(bare),
        "pages/s",
    )


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
        extractor_for("video/mp4").extract(
            video, scratch / "video-artifacts", LimitSettings(), MediaSettings()
        )

    return Row(
        "media_extract",
        duration / _timed(through_sieve),
        duration / _timed(bare),
        "media s per wall s",
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=300, help="pages in the PDF row")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sieve-bench-") as scratch:
        rows = [pdf_extract(Path(scratch), options.pages), media_extract(Path(scratch))]
    print(f"{'name':16} {'sieve':>10} {'baseline':>10} {'ratio':>7}  unit")
    for row in rows:
        print(f"{row.name:16} {row.sieve:10.2f} {row.baseline:10.2f} {row.ratio:7.2f}  {row.unit}")
    if options.json:
        options.json.write_text(
            json.dumps([asdict(row) | {"ratio": row.ratio} for row in rows], indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
