"""``production``: Bates-stamped page images written per second, against a bare PyMuPDF loop.

Ten generated 20-page PDFs are submitted (no model run: a production images
the stored files) and produced with ``jobs.production`` — Bates numbers,
stamps, single-page PDFs in 5,000-file folders, text files, DAT and OPT,
the audit event — against a loop that only copies each page into its own
PDF, stamps the same number on it and saves it, the same way.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pymupdf

from bench.rows import Row, timed
from jobs import commands, production
from jobs.bates import BatesFormat
from jobs.settings import Settings
from jobs.submit import submit
from tests import pdfgen
from worker.task_specs import build_task

DOCUMENTS = 10
PAGES_PER_DOCUMENT = 20


def production_pages(scratch: Path) -> Row:
    inputs = scratch / "to-produce"
    inputs.mkdir()
    sources = [
        pdfgen.make_text_pdf(
            inputs / f"report-{n:02d}.pdf",
            [pdfgen.report_page_text(n * 100 + page, 120) for page in range(PAGES_PER_DOCUMENT)],
        )
        for n in range(DOCUMENTS)
    ]
    settings = Settings(data_dir=scratch / "production-data", database_url=None)
    engine, session_factory = commands.open_database(settings)
    made = submit(
        session_factory,
        settings,
        paths=[inputs],
        task=build_task("summarize", {}, 200),
        name="bench",
        executor="bench",
    )
    options = production.ProductionOptions(bates=BatesFormat("BENCH", 9))

    def through_sieve() -> None:
        with session_factory() as session:
            production.produce(session, settings, made.job_id, scratch / "produced", options)

    def bare() -> None:
        with tempfile.TemporaryDirectory(dir=scratch) as out:
            number = 1
            for source in sources:
                with pymupdf.open(source) as document:
                    for index in range(document.page_count):
                        single = pymupdf.open()
                        single.insert_pdf(document, from_page=index, to_page=index)
                        label = f"BENCH{number:09d}"
                        single[0].insert_text((480, 820), label, fontname="helv", fontsize=9)
                        single.save(Path(out) / f"{label}.pdf", garbage=3, deflate=True)
                        single.close()
                        number += 1

    pages = DOCUMENTS * PAGES_PER_DOCUMENT
    sieve_seconds = timed(through_sieve)
    engine.dispose()
    return Row(
        "production",
        pages / sieve_seconds,
        pages / timed(bare),
        "pages/s stamped and written",
        notes={"pages": pages, "documents": DOCUMENTS, "image": "pdf"},
    )
