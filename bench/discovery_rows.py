"""Discovery rows: e-mails/s out of an MBOX, and Office pages/s converted by LibreOffice.

``mbox_extract``: Sieve's MBOX extractor (every message written out, subject
and normalised e-mail hash read, checkpointed) against a bare standard-library
loop over the same mailbox (read each message, parse it, take its body). A
commercial cloud platform's quoted rate, about 2,000 e-mails an hour, is in
the notes for scale.

``office_convert``: a legacy Word file through Sieve's converted-Office
extractor (fresh LibreOffice profile, process group, PDF pages extracted)
against bare ``soffice --headless --convert-to pdf`` on the same file.
"""

from __future__ import annotations

import email.policy
import mailbox
import tempfile
from email.parser import BytesParser
from pathlib import Path

from bench.rows import Row, rate_row
from tests import mailgen, officegen
from worker.config import LimitSettings, MediaSettings
from worker.extractors.converted import ConvertedOfficeExtractor
from worker.extractors.email import MboxExtractor

CLOUD_EMAILS_PER_HOUR = 2000


def _mailbox(path: Path, messages: int) -> Path:
    thread = mailgen.forecast_thread(attachments=[("notes.txt", b"flat revenue\n", "text/plain")])
    pattern = thread.messages()
    batch = []
    for number in range(messages):
        message = pattern[number % len(pattern)]
        copy = mailgen.build(
            mailgen.Draft(
                str(message["From"]),
                [str(message["To"])],
                f"{message['Subject']} #{number}",
                message.get_body(preferencelist=("plain",)).get_content(),  # type: ignore[union-attr]
                mailgen.START,
                f"bench-{number}@example.test",
                attachments=[("notes.txt", b"flat revenue %d\n" % number, "text/plain")],
            )
        )
        batch.append(copy)
    return mailgen.write_mbox(path, batch)


def mbox_extract(scratch: Path, messages: int) -> Row:
    source = _mailbox(scratch / "bench.mbox", messages)

    def bare() -> None:
        box = mailbox.mbox(source, create=False)
        try:
            for key in box.iterkeys():
                parsed = BytesParser(policy=email.policy.default).parsebytes(box.get_bytes(key))
                parsed.get_body(preferencelist=("plain", "html"))
        finally:
            box.close()

    def through_sieve() -> None:
        with tempfile.TemporaryDirectory(dir=scratch) as artifacts:
            MboxExtractor().extract(source, Path(artifacts), LimitSettings(), MediaSettings())

    notes = {
        "messages": messages,
        "cloud_quote_per_s": round(CLOUD_EMAILS_PER_HOUR / 3600, 2),
        "mib": round(source.stat().st_size / 2**20, 1),
    }
    return rate_row("mbox_extract", messages, through_sieve, bare, "e-mails/s", notes)


def office_convert(scratch: Path, pages: int) -> Row:
    paragraphs = [f"Page {n}. " + "The committee reviewed the draft. " * 60 for n in range(pages)]
    docx = officegen.write_docx(scratch / "bench-office.docx", paragraphs)
    doc = officegen.convert_with_libreoffice(docx, "doc", scratch / "legacy")
    counted: list[int] = []

    def bare() -> None:
        with tempfile.TemporaryDirectory(dir=scratch) as out:
            officegen.convert_with_libreoffice(doc, "pdf", Path(out))

    def through_sieve() -> None:
        with tempfile.TemporaryDirectory(dir=scratch) as artifacts:
            extraction = ConvertedOfficeExtractor().extract(
                doc, Path(artifacts), LimitSettings(), MediaSettings()
            )
            counted.append(len(extraction.segments))

    row = rate_row("office_convert", pages, through_sieve, bare, "pages/s")
    # The rate is per page LibreOffice laid out, counted from Sieve's own extraction.
    actual = counted[-1] if counted else pages
    return Row(
        row.name,
        row.sieve * actual / pages,
        row.baseline * actual / pages,
        row.unit,
        notes={"pages": actual, "format": "doc"},
    )


def discovery(scratch: Path, messages: int, pages: int) -> list[Row]:
    return [mbox_extract(scratch, messages), office_convert(scratch, pages)]
