"""PDFs for tests and the bundled samples, generated with PyMuPDF.

Tests make their own inputs so a fresh clone has everything and nothing is
downloaded. Every page reads like a real document (a memo, an invoice, a
letter) so that a model run over these files has something to summarise.
Output is byte-for-byte deterministic (fixed dates, no random file ID), so
regenerating the samples leaves git with nothing to commit.
"""

from __future__ import annotations

import random
from pathlib import Path

import pymupdf

# A4 in points, with 2.5 cm margins.
PAGE_RECT = pymupdf.paper_rect("a4")
TEXT_RECT = pymupdf.Rect(72, 72, PAGE_RECT.width - 72, PAGE_RECT.height - 72)

# A fixed date keeps the files reproducible; tests check its ISO form.
DEFAULT_PDF_DATE = "D:20240315093000+01'00'"
DEFAULT_PDF_DATE_ISO = "2024-03-15T09:30:00+01:00"

ENCRYPTED_PDF_PASSWORD = "harbour-light-42"

# Resolution of the "scan" inside image-only pages: low enough to keep files
# small, high enough that OCR could read it.
SCAN_DPI = 110

MEMO_PAGES = [
    "MEMORANDUM\n\n"
    "To: All warehouse supervisors\n"
    "From: Ingrid Basso, Operations Manager\n"
    "Date: 11 March 2024\n"
    "Subject: New loading dock schedule\n\n"
    "From Monday 18 March, inbound deliveries will be received at docks 1 to 3 "
    "between 06:00 and 14:00 only. Outbound loads move to docks 4 to 6 and may be "
    "staged from 12:00. The change follows the safety review of February, which "
    "found that mixed traffic at the docks caused most of last quarter's near misses.\n\n"
    "Please brief your teams before Friday and confirm in writing that you have done so.",
    "MEMORANDUM (continued)\n\n"
    "Carriers have been informed by the transport office. Any carrier arriving outside "
    "its slot should be asked to wait in the marshalling yard rather than at the gate.\n\n"
    "Forklift operators will receive refresher training on the new one-way route on "
    "14 and 15 March. Attendance is mandatory; shift swaps must be agreed with your "
    "supervisor in advance.\n\n"
    "Questions to me directly, extension 2214.",
]

INVOICE_PAGE = (
    "INVOICE\n\n"
    "Invoice number: INV-2024-0412\n"
    "Invoice date: 2 April 2024\n"
    "Due date: 2 May 2024\n\n"
    "Bill to: Corvina Dental Practice, 14 Quay Street, Portmere PT3 8LB\n"
    "From: Ashgrove Office Supplies Ltd, Unit 7 Millfield Estate, Portmere PT1 2QA\n\n"
    "Qty  Description                          Unit price   Amount\n"
    " 12  A4 copier paper, box of 5 reams      EUR 24.50    EUR 294.00\n"
    "  4  Toner cartridge, black, TN-2420      EUR 61.00    EUR 244.00\n"
    "  2  Ergonomic desk chair, model Arlo     EUR 189.00   EUR 378.00\n\n"
    "Subtotal: EUR 916.00\n"
    "VAT at 21%: EUR 192.36\n"
    "Total due: EUR 1,108.36\n\n"
    "Payment by bank transfer to IBAN NL91 ABNA 0417 1643 00, quoting the invoice number."
)

LETTER_PAGE = (
    "Dear Ms Okafor,\n\n"
    "Thank you for your letter of 4 April about the damp patch in the back bedroom of "
    "flat 3, 27 Linden Road. Our surveyor visited on 9 April and found a cracked "
    "downpipe behind the building, which has let water into the wall for some months.\n\n"
    "The downpipe will be replaced on 16 April and the wall treated once it has dried "
    "out, which the surveyor expects to take about six weeks. We will redecorate the "
    "room at our cost afterwards.\n\n"
    "Yours sincerely,\n"
    "Tomas Rieger\n"
    "Property Manager, Linden Housing Association"
)

SCANNED_RECEIPT_TEXT = (
    "RECEIPT OF GOODS\n\n"
    "Received from Ashgrove Office Supplies Ltd the goods listed on invoice "
    "INV-2024-0412, complete and in good condition.\n\n"
    "Date: 4 April 2024\n"
    "Signed: M. Corvina, practice manager"
)

ENCRYPTED_MEMO_TEXT = (
    "CONFIDENTIAL\n\n"
    "To: Board of directors\n"
    "From: Finance committee\n"
    "Subject: Proposed acquisition of Heronsgate Logistics\n\n"
    "The committee recommends an offer of no more than 4.2 million euros, subject to "
    "due diligence on the pension liabilities identified in the seller's accounts."
)

# Word lists for make_long_pdf: sentences built from them read like a
# municipal annual report, and vary from page to page.
_REPORT_TOPICS = [
    "water supply",
    "road maintenance",
    "public libraries",
    "waste collection",
    "parks and green spaces",
    "housing repairs",
    "school transport",
    "street lighting",
]
_REPORT_SUBJECTS = [
    "The council",
    "The finance team",
    "The works department",
    "Our contractors",
    "The audit committee",
    "Residents' panels",
    "The planning office",
    "Local businesses",
]
_REPORT_VERBS = [
    "reviewed",
    "approved",
    "questioned",
    "extended",
    "reduced",
    "postponed",
    "completed",
    "funded",
]
_REPORT_OBJECTS = [
    "the renewal programme",
    "the spring maintenance plan",
    "three new service contracts",
    "the revised budget",
    "the complaints procedure",
    "the energy saving scheme",
    "the winter readiness checks",
    "the staff training plan",
]
_REPORT_QUALIFIERS = [
    "after a public consultation",
    "within the agreed budget",
    "ahead of the original schedule",
    "despite higher material costs",
    "following the inspection in May",
    "in line with national guidance",
    "with support from volunteers",
    "at the request of ward councillors",
]


def make_text_pdf(
    path: Path,
    pages: list[str],
    *,
    title: str = "",
    author: str = "",
    subject: str = "",
    keywords: str = "",
    created: str = DEFAULT_PDF_DATE,
    modified: str = DEFAULT_PDF_DATE,
) -> Path:
    """A PDF with one page per string in ``pages``, each with a real text layer.

    Info fields left empty are written empty. Raises ValueError when a page's
    text does not fit on an A4 page even at a small font size.
    """
    document = pymupdf.open()
    try:
        for text in pages:
            _add_text_page(document, text)
        document.set_metadata(
            {
                "title": title,
                "author": author,
                "subject": subject,
                "keywords": keywords,
                "creator": "",
                "producer": "",
                "creationDate": created,
                "modDate": modified,
            }
        )
        return _save(document, path)
    finally:
        document.close()


def make_image_only_pdf(path: Path, text: str = "SCANNED PAGE") -> Path:
    """A one-page PDF whose only content is a picture of ``text``: no text layer."""
    document = pymupdf.open()
    try:
        _add_image_only_page(document, text)
        _set_plain_metadata(document, title="Scanned document")
        return _save(document, path)
    finally:
        document.close()


def make_mixed_pdf(path: Path) -> Path:
    """Two pages of memo text, then a scanned receipt with no text layer."""
    document = pymupdf.open()
    try:
        for text in MEMO_PAGES:
            _add_text_page(document, text)
        _add_image_only_page(document, SCANNED_RECEIPT_TEXT)
        _set_plain_metadata(document, title="Loading dock schedule, with signed receipt")
        return _save(document, path)
    finally:
        document.close()


def make_long_pdf(path: Path, page_count: int = 60, words_per_page: int = 220) -> Path:
    """An annual-report-like PDF of ``page_count`` pages of varied prose.

    Page N's text is seeded by N, so it is the same on every run, differs from
    its neighbours, and contains the sentence "This is page N of the report."
    """
    document = pymupdf.open()
    try:
        for page_number in range(1, page_count + 1):
            _add_text_page(document, report_page_text(page_number, words_per_page))
        _set_plain_metadata(document, title="Annual report of the borough services")
        return _save(document, path)
    finally:
        document.close()


def report_page_text(page_number: int, words_per_page: int = 220) -> str:
    """The text make_long_pdf puts on page ``page_number`` (at least ``words_per_page`` words)."""
    rng = random.Random(page_number)
    topic = _REPORT_TOPICS[(page_number - 1) % len(_REPORT_TOPICS)]
    sentences = [
        f"Section {page_number}: {topic.capitalize()}.",
        f"This is page {page_number} of the report, and it covers {topic}.",
    ]
    word_count = sum(len(sentence.split()) for sentence in sentences)
    while word_count < words_per_page:
        sentence = (
            f"{rng.choice(_REPORT_SUBJECTS)} {rng.choice(_REPORT_VERBS)} "
            f"{rng.choice(_REPORT_OBJECTS)} for {topic} {rng.choice(_REPORT_QUALIFIERS)}, "
            f"at a cost of {rng.randint(12, 980)} thousand euros."
        )
        sentences.append(sentence)
        word_count += len(sentence.split())
    return " ".join(sentences)


def make_encrypted_pdf(path: Path) -> Path:
    """A confidential memo that needs :data:`ENCRYPTED_PDF_PASSWORD` to open (AES-256)."""
    document = pymupdf.open()
    try:
        _add_text_page(document, ENCRYPTED_MEMO_TEXT)
        _set_plain_metadata(document, title="Proposed acquisition")
        path.parent.mkdir(parents=True, exist_ok=True)
        document.save(
            path,
            encryption=pymupdf.PDF_ENCRYPT_AES_256,
            user_pw=ENCRYPTED_PDF_PASSWORD,
            owner_pw=ENCRYPTED_PDF_PASSWORD + "-owner",
        )
    finally:
        document.close()
    return path


def make_corrupt_pdf(path: Path) -> Path:
    """A PDF header followed by garbage and a cut-off object: MuPDF cannot open it."""
    rng = random.Random(1717)
    garbage = bytes(rng.randrange(256) for _ in range(2048))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"%PDF-1.7\n" + garbage + b"\n3 0 obj\n<< /Type /Page /Parent 2 0 R /Cont")
    return path


def make_zero_page_pdf(path: Path) -> Path:
    """A well-formed PDF whose page tree is empty (PyMuPDF refuses to save one itself)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [] /Count 0 >>",
    ]
    content = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(content))
        content += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_offset = len(content)
    content += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        content += b"%010d 00000 n \n" % offset
    content += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref_offset,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(content))
    return path


def _add_text_page(document: pymupdf.Document, text: str) -> None:
    """Append an A4 page with ``text`` wrapped into the margins, shrinking the font to fit."""
    for font_size in (11, 10, 9, 8):
        page = document.new_page(width=PAGE_RECT.width, height=PAGE_RECT.height)
        spare_height = page.insert_textbox(TEXT_RECT, text, fontsize=font_size, fontname="helv")
        if spare_height >= 0:
            return
        document.delete_page(page.number)
    raise ValueError(f"{len(text)} characters do not fit on one A4 page")


def _add_image_only_page(document: pymupdf.Document, text: str) -> None:
    """Append a page holding only a grey-scale picture of ``text``, as a scanner would."""
    scratch = pymupdf.open()
    try:
        scratch_page = scratch.new_page(width=PAGE_RECT.width, height=PAGE_RECT.height)
        scratch_page.insert_textbox(TEXT_RECT, text, fontsize=12, fontname="helv")
        picture = scratch_page.get_pixmap(dpi=SCAN_DPI, colorspace=pymupdf.csGRAY)
        png = picture.tobytes("png")
    finally:
        scratch.close()
    page = document.new_page(width=PAGE_RECT.width, height=PAGE_RECT.height)
    page.insert_image(page.rect, stream=png)


def _set_plain_metadata(document: pymupdf.Document, *, title: str) -> None:
    """A title and the fixed dates; every other info field empty."""
    document.set_metadata(
        {
            "title": title,
            "author": "",
            "subject": "",
            "keywords": "",
            "creator": "",
            "producer": "",
            "creationDate": DEFAULT_PDF_DATE,
            "modDate": DEFAULT_PDF_DATE,
        }
    )


def _save(document: pymupdf.Document, path: Path) -> Path:
    """Save compactly and reproducibly (no fresh file ID on each run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(path, garbage=4, deflate=True, no_new_id=True)
    return path


def make_pdf_with_nul_characters(path: Path) -> Path:
    """A PDF whose title (UTF-16, as ImageMagick writes it) and page text hold NUL characters.

    PostgreSQL refuses U+0000 in text and jsonb; SQLite takes it silently.
    """
    document = pymupdf.open()
    page = document.new_page()
    page.insert_text((72, 72), "Quarterly statement for the account \x00 held by the client.")
    page.insert_text((72, 100), "The balance was reconciled on the last business day.")
    document.set_metadata({"title": "placeholder"})
    info_xref = int(document.pdf_trailer().split("/Info")[1].split()[0])
    # "Scan\0of\0" in UTF-16BE with its byte-order mark.
    document.xref_set_key(info_xref, "Title", "<FEFF005300630061006E00000020006F006600000020>")
    document.save(path)
    document.close()
    return path
