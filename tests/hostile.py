"""A corpus of hostile and broken files, and what Sieve must make of each.

An integration test submits the whole folder to a real worker and checks every
item's final state and error code against :class:`HostileCase`. Each file is
generated here (a clone needs nothing downloaded) in well under a second, the
whole corpus in a few seconds and under 5 MB: bombs are small on disk by nature.

Each case records how its expectation was established (``verified``): most were
run in-process through the registered extractors (see
tests/unit/test_hostile_corpus.py); the image cases rest on Pillow's own
behaviour, because the image extractor is not part of this corpus's checks; the
spinning PDF was timed (it cannot be run to the end in-process: that is the point).
"""

from __future__ import annotations

import os
import random
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests import mailgen, officegen, pdfgen, zipgen
from worker.config import LimitSettings

# The limits the integration test runs the corpus under, for the cases marked
# ``needs_low_limits``: a 2,000-page cap and a sandbox that gives up in seconds.
HOSTILE_LIMITS = LimitSettings(
    max_pdf_pages=2000,
    extract_cpu_s=10,
    extract_wall_s=20.0,
    extract_memory_mb=1024,
    # LibreOffice takes seconds to start: a conversion given under one stands
    # for one that hangs, and must be killed whole and fail alone.
    convert_base_s=0.3,
    convert_per_mib_s=0.0,
)

IN_PROCESS = "in-process through the registered extractor (tests/unit/test_hostile_corpus.py)"
PILLOW_ONLY = (
    "Pillow's own behaviour (Image.open with MAX_IMAGE_PIXELS = limits.max_image_pixels); "
    "not run through the image extractor"
)

# The spinning PDF: a page draws a form 10 times, that form draws the next one
# 10 times, and so on, 9 levels down to one stroked line: 10^9 strokes from a
# file of 2.4 KB. Timed with PyMuPDF 1.28 (MuPDF 1.28.5) on the development
# machine: get_text gets through about 2.5 x 10^5 strokes a second and a
# 150 dpi render about 3 x 10^3, so text extraction alone would run for about an
# hour and the render of the (textless) page for days. Memory stays flat near
# 170 MB resident, so the sandbox ends it by time, not by memory.
SPIN_LEVELS = 9
SPIN_FAN_OUT = 10

# A page tree that declares this many pages over one real page. MuPDF (1.28)
# refuses a /Count larger than the number of objects in the file, and believes
# any other: the pages it cannot find then fail to load.
ABSURD_PAGE_COUNT = 2**31 - 1

MANY_PAGES = 10_000

# NAME_MAX is 255 bytes: 120 two-byte characters and the suffix stay under it.
LONG_NAME = "\u00fc" * 120 + "-long.pdf"
SHELL_NAME = "invoice;touch PWNED;$(touch PWNED2).pdf"
# Latin-1 "facture-été-2024.pdf": not valid UTF-8, as old Windows tools write.
NON_UTF8_NAME = os.fsdecode(b"facture-\xe9t\xe9-2024.pdf")


@dataclass(frozen=True)
class HostileCase:
    """One file of the corpus and the outcome Sieve must reach for it."""

    key: str  # a short ASCII identifier, for test ids and logs
    path: Path  # relative to the corpus folder; may not be valid UTF-8
    description: str
    expected_state: str  # "failed", "unsupported" or "done"
    expected_codes: frozenset[str]  # any of these error codes is right; empty when "done"
    needs_low_limits: bool = False  # the expectation holds under HOSTILE_LIMITS only
    needs_sandbox: bool = False  # only the sandbox's limits end it: never run it in-process
    verified: str = IN_PROCESS


def build_hostile_corpus(folder: Path) -> list[HostileCase]:
    """Write every case into ``folder`` (created if needed); returned in :data:`CASE_KEYS` order."""
    return [build_hostile_case(folder, key) for key in CASE_KEYS]


def build_hostile_case(folder: Path, key: str) -> HostileCase:
    """Write the one case named ``key`` into ``folder`` (created if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    return _BUILDERS[key](folder, key)


# --- PDFs -------------------------------------------------------------------------


def _truncated_half(folder: Path, key: str) -> HostileCase:
    path = Path("truncated-half.pdf")
    whole = _report_pdf()
    _write(folder / path, whole[: len(whole) // 2])
    return HostileCase(
        key=key,
        path=path,
        description=(
            "a 12-page report cut off halfway, like an interrupted download: MuPDF rebuilds "
            "the cross-reference table and reads what is left; pages whose content was cut "
            "come out blank and are rendered for OCR"
        ),
        expected_state="done",
        expected_codes=frozenset(),
    )


def _truncated_early(folder: Path, key: str) -> HostileCase:
    path = Path("truncated-early.pdf")
    whole = _report_pdf()
    _write(folder / path, whole[: len(whole) * 15 // 100])
    return HostileCase(
        key=key,
        path=path,
        description=(
            "the same report cut after 15%: the page tree's /Count survives, most objects "
            "do not, and MuPDF refuses to count the pages ('Invalid number of pages')"
        ),
        expected_state="failed",
        expected_codes=frozenset({"corrupt_file"}),
    )


def _encrypted(folder: Path, key: str) -> HostileCase:
    path = Path("encrypted.pdf")
    pdfgen.make_encrypted_pdf(folder / path)
    return HostileCase(
        key=key,
        path=path,
        description="an AES-256 PDF that needs a user password",
        expected_state="failed",
        expected_codes=frozenset({"encrypted"}),
    )


def _header_then_garbage(folder: Path, key: str) -> HostileCase:
    path = Path("header-then-garbage.pdf")
    pdfgen.make_corrupt_pdf(folder / path)
    return HostileCase(
        key=key,
        path=path,
        description="a %PDF- header, 2 KB of random bytes and half an object",
        expected_state="failed",
        expected_codes=frozenset({"corrupt_file"}),
    )


def _absurd_page_count(folder: Path, key: str) -> HostileCase:
    path = Path("absurd-page-count.pdf")
    _write(folder / path, _one_page_pdf(declared_page_count=ABSURD_PAGE_COUNT))
    return HostileCase(
        key=key,
        path=path,
        description=(
            f"one real page under a page tree whose /Count is {ABSURD_PAGE_COUNT}: MuPDF "
            "does not repair it but refuses to count ('Invalid number of pages')"
        ),
        expected_state="failed",
        expected_codes=frozenset({"corrupt_file"}),
    )


def _overstated_page_count(folder: Path, key: str) -> HostileCase:
    path = Path("overstated-page-count.pdf")
    _write(folder / path, _one_page_pdf(declared_page_count=3, padding_objects=4))
    return HostileCase(
        key=key,
        path=path,
        description=(
            "one real page under a /Count of 3 that MuPDF believes (the count stays below "
            "the number of objects): page 1 reads, loading pages 2 and 3 fails"
        ),
        expected_state="done",
        expected_codes=frozenset(),
    )


def _many_pages(folder: Path, key: str) -> HostileCase:
    path = Path("ten-thousand-pages.pdf")
    _write(folder / path, _many_page_pdf(MANY_PAGES))
    return HostileCase(
        key=key,
        path=path,
        description=f"{MANY_PAGES} tiny pages sharing one content stream (1.6 MB)",
        expected_state="failed",
        expected_codes=frozenset({"limit_exceeded"}),
        needs_low_limits=True,
    )


def _spinning(folder: Path, key: str) -> HostileCase:
    path = Path("spinning.pdf")
    _write(folder / path, spinning_pdf(SPIN_LEVELS, SPIN_FAN_OUT))
    return HostileCase(
        key=key,
        path=path,
        description=(
            f"a page whose forms draw each other {SPIN_FAN_OUT} times over {SPIN_LEVELS} "
            f"levels: {SPIN_FAN_OUT}^{SPIN_LEVELS} strokes from 2.4 KB; its text takes about "
            "an hour to extract, and its render days"
        ),
        expected_state="failed",
        expected_codes=frozenset({"timeout", "oom"}),
        needs_low_limits=True,
        needs_sandbox=True,
        verified=(
            "timed in-process: the PDF extractor was still running after 107 s of CPU "
            "(120 s wall), 169 MB resident; smaller instances draw exactly 10^levels lines"
        ),
    )


def _pdf_named_txt(folder: Path, key: str) -> HostileCase:
    path = Path("really-a-pdf.txt")
    _write(
        folder / path,
        _pdf_bytes(lambda scratch: pdfgen.make_text_pdf(scratch, [pdfgen.LETTER_PAGE])),
    )
    return HostileCase(
        key=key,
        path=path,
        description="a real PDF named .txt: detection goes by content, so it is read as a PDF",
        expected_state="done",
        expected_codes=frozenset(),
    )


def _shell_metacharacters(folder: Path, key: str) -> HostileCase:
    path = Path(SHELL_NAME)
    _write(
        folder / path,
        _pdf_bytes(lambda scratch: pdfgen.make_text_pdf(scratch, [pdfgen.INVOICE_PAGE])),
    )
    return HostileCase(
        key=key,
        path=path,
        description=(
            "an ordinary invoice whose name holds ';' and '$(...)': no PWNED or PWNED2 "
            "file may appear anywhere"
        ),
        expected_state="done",
        expected_codes=frozenset(),
    )


def _non_utf8_name(folder: Path, key: str) -> HostileCase:
    path = Path(NON_UTF8_NAME)
    _write(
        folder / path,
        _pdf_bytes(lambda scratch: pdfgen.make_text_pdf(scratch, [pdfgen.INVOICE_PAGE])),
    )
    return HostileCase(
        key=key,
        path=path,
        description="an ordinary invoice whose name is Latin-1 bytes, not valid UTF-8",
        expected_state="done",
        expected_codes=frozenset(),
    )


def _long_name(folder: Path, key: str) -> HostileCase:
    path = Path(LONG_NAME)
    _write(
        folder / path,
        _pdf_bytes(lambda scratch: pdfgen.make_text_pdf(scratch, [pdfgen.LETTER_PAGE])),
    )
    return HostileCase(
        key=key,
        path=path,
        description=f"an ordinary letter whose name is {len(LONG_NAME.encode())} bytes of UTF-8",
        expected_state="done",
        expected_codes=frozenset(),
    )


# --- not what the name says -------------------------------------------------------


def _zero_bytes(folder: Path, key: str) -> HostileCase:
    path = Path("empty.pdf")
    _write(folder / path, b"")
    return HostileCase(
        key=key,
        path=path,
        description="a zero-byte file named .pdf",
        expected_state="failed",
        expected_codes=frozenset({"empty_file"}),
    )


def _random_bytes(folder: Path, key: str) -> HostileCase:
    path = Path("random.pdf")
    # Seeded: these bytes start with no known signature and are not UTF-8.
    _write(folder / path, random.Random(20240315).randbytes(64 * 1024))
    return HostileCase(
        key=key,
        path=path,
        description="64 KB of random bytes named .pdf: detection reads content, not names",
        expected_state="unsupported",
        expected_codes=frozenset({"unsupported_type"}),
    )


# --- images -------------------------------------------------------------------------


def _png_bomb(folder: Path, key: str) -> HostileCase:
    path = Path("bomb.png")
    _write(folder / path, png_bytes(100_000, 100_000, zlib.compress(b"\x00" * 1024, 9)))
    return HostileCase(
        key=key,
        path=path,
        description=(
            "a PNG of under 100 bytes whose header declares 100000 x 100000 pixels: Pillow "
            "raises DecompressionBombError above twice MAX_IMAGE_PIXELS"
        ),
        expected_state="failed",
        expected_codes=frozenset({"limit_exceeded"}),
        verified=PILLOW_ONLY,
    )


def _tiff_bomb(folder: Path, key: str) -> HostileCase:
    path = Path("bomb.tif")
    _write(folder / path, tiff_bytes(100_000, 100_000))
    return HostileCase(
        key=key,
        path=path,
        description="a TIFF of under 200 bytes declaring 100000 x 100000 pixels in one strip",
        expected_state="failed",
        expected_codes=frozenset({"limit_exceeded"}),
        verified=PILLOW_ONLY,
    )


def _fake_png(folder: Path, key: str) -> HostileCase:
    path = Path("fake.png")
    _write(folder / path, b"\x89PNG\r\n\x1a\n" + random.Random(89).randbytes(2048))
    return HostileCase(
        key=key,
        path=path,
        description="a valid PNG signature followed by random bytes (no IHDR chunk)",
        expected_state="failed",
        expected_codes=frozenset({"corrupt_file"}),
        verified=PILLOW_ONLY + " (UnidentifiedImageError)",
    )


# --- archives -----------------------------------------------------------------------


def _zip_bomb(folder: Path, key: str) -> HostileCase:
    path = Path("zip-bomb.zip")
    zipgen.make_zero_bomb(folder / path, "backup/disk.img", 256 * 1024 * 1024)
    return HostileCase(
        key=key,
        path=path,
        description="256 MiB of zeros deflated to about 260 KB (ratio about 1000, the cap is 200)",
        expected_state="failed",
        expected_codes=frozenset({"limit_exceeded"}),
    )


def _zip_traversal(folder: Path, key: str) -> HostileCase:
    path = Path("zip-traversal.zip")
    zipgen.make_zip(
        folder / path,
        [
            ("../../../../../../tmp/sieve-pwned.txt", b"written outside the target\n"),
            ("docs/..\\..\\..\\sieve-pwned.bat", b"echo pwned\r\n"),
        ],
    )
    return HostileCase(
        key=key,
        path=path,
        description="members named ../../../../../../tmp/sieve-pwned.txt and docs/..\\..\\x.bat",
        expected_state="failed",
        expected_codes=frozenset({"unsafe_archive"}),
    )


def _zip_absolute(folder: Path, key: str) -> HostileCase:
    path = Path("zip-absolute.zip")
    zipgen.make_zip(folder / path, [("/tmp/sieve-pwned-absolute.txt", b"written outside\n")])
    return HostileCase(
        key=key,
        path=path,
        description="a member named /tmp/sieve-pwned-absolute.txt",
        expected_state="failed",
        expected_codes=frozenset({"unsafe_archive"}),
    )


def _zip_symlink(folder: Path, key: str) -> HostileCase:
    path = Path("zip-symlink.zip")
    zipgen.make_zip(folder / path, [zipgen.symlink_member("passwd.txt", "/etc/passwd")])
    return HostileCase(
        key=key,
        path=path,
        description="a member that is a symbolic link to /etc/passwd (Unix mode S_IFLNK)",
        expected_state="failed",
        expected_codes=frozenset({"unsafe_archive"}),
    )


def _zip_too_deep(folder: Path, key: str) -> HostileCase:
    path = Path("zip-too-deep.zip")
    letter = _pdf_bytes(lambda scratch: pdfgen.make_text_pdf(scratch, [pdfgen.LETTER_PAGE]))
    zipgen.make_nested_zip(folder / path, depth=5, innermost=("letter.pdf", letter))
    return HostileCase(
        key=key,
        path=path,
        description="a letter inside 5 archives nested in each other (the depth cap allows 3)",
        expected_state="failed",
        expected_codes=frozenset({"limit_exceeded"}),
    )


def _zip_partly_hostile(folder: Path, key: str) -> HostileCase:
    path = Path("zip-partly-hostile.zip")
    invoice = _pdf_bytes(lambda scratch: pdfgen.make_text_pdf(scratch, [pdfgen.INVOICE_PAGE]))
    zipgen.make_zip(
        folder / path,
        [
            ("invoices/INV-2024-0412.pdf", invoice),
            ("../sieve-pwned-partly.txt", b"written outside\n"),
        ],
    )
    return HostileCase(
        key=key,
        path=path,
        description="a good invoice PDF beside a ../ member: the invoice becomes a child item, "
        "the ../ is refused",
        expected_state="done",
        expected_codes=frozenset(),
    )


def _zip_encrypted_member(folder: Path, key: str) -> HostileCase:
    path = Path("zip-encrypted.zip")
    zipgen.make_zip(folder / path, [("salaries.txt", b"Salaries for 2024, confidential.\n")])
    zipgen.set_member_flags(folder / path, "salaries.txt", zipgen.ENCRYPTED_FLAG)
    return HostileCase(
        key=key,
        path=path,
        description="a ZIP whose only member is flagged as password-encrypted",
        expected_state="failed",
        expected_codes=frozenset({"encrypted"}),
    )


def _zip_bad_crc(folder: Path, key: str) -> HostileCase:
    path = Path("zip-bad-crc.zip")
    zipgen.make_zip(
        folder / path,
        [("minutes.txt", b"Minutes of the harbour committee, 4 April 2024.\n" * 20)],
        compression=zipfile.ZIP_STORED,
    )
    zipgen.flip_data_byte(folder / path, "minutes.txt")
    return HostileCase(
        key=key,
        path=path,
        description="a stored member with one byte flipped: its CRC-32 no longer matches",
        expected_state="failed",
        expected_codes=frozenset({"corrupt_file"}),
    )


# --- e-mail and Office ------------------------------------------------------------


def _many_part_email(folder: Path, key: str) -> HostileCase:
    path = Path("ten-thousand-parts.eml")
    _write(folder / path, mailgen.many_parts(10_000))
    return HostileCase(
        key=key,
        path=path,
        description="a message of 10,000 MIME parts (the limit is 2,000)",
        expected_state="failed",
        expected_codes=frozenset({"limit_exceeded"}),
    )


def _zip_bomb_docx(folder: Path, key: str) -> HostileCase:
    path = Path("zip-bomb.docx")
    officegen.write_zip_bomb_docx(folder / path)
    return HostileCase(
        key=key,
        path=path,
        description="a real DOCX whose document part expands 200 MB at about 1000:1",
        expected_state="failed",
        expected_codes=frozenset({"unsafe_archive"}),
    )


def _billion_laughs_docx(folder: Path, key: str) -> HostileCase:
    path = Path("billion-laughs.docx")
    officegen.write_billion_laughs_docx(folder / path)
    return HostileCase(
        key=key,
        path=path,
        description="a DOCX whose document part nests entities to 10^9 'lol's",
        expected_state="failed",
        expected_codes=frozenset({"corrupt_file", "no_content"}),
    )


def _macro_docm(folder: Path, key: str) -> HostileCase:
    path = Path("invoice-macro.docm")
    officegen.write_macro_docm(folder / path)
    return HostileCase(
        key=key,
        path=path,
        description="a macro-enabled Word file with an auto-open VBA project: read, never run",
        expected_state="done",
        expected_codes=frozenset(),
    )


def _encrypted_docx(folder: Path, key: str) -> HostileCase:
    path = Path("encrypted.docx")
    officegen.write_encrypted_docx(folder / path)
    return HostileCase(
        key=key,
        path=path,
        description="a DOCX saved with a password (an ECMA-376 encrypted package)",
        expected_state="failed",
        expected_codes=frozenset({"encrypted"}),
    )


def _hanging_conversion(folder: Path, key: str) -> HostileCase:
    path = Path("hangs-libreoffice.doc")
    with tempfile.TemporaryDirectory() as scratch:
        docx = officegen.write_docx(Path(scratch) / "legacy.docx", ["A legacy memo."] * 20)
        doc = officegen.convert_with_libreoffice(docx, "doc", Path(scratch) / "out")
        _write(folder / path, doc.read_bytes())
    return HostileCase(
        key=key,
        path=path,
        description="a legacy DOC whose LibreOffice conversion runs past its time limit",
        expected_state="failed",
        expected_codes=frozenset({"timeout"}),
        needs_low_limits=True,
    )


_BUILDERS: dict[str, Callable[[Path, str], HostileCase]] = {
    "truncated-half": _truncated_half,
    "truncated-early": _truncated_early,
    "encrypted-pdf": _encrypted,
    "header-then-garbage": _header_then_garbage,
    "absurd-page-count": _absurd_page_count,
    "overstated-page-count": _overstated_page_count,
    "ten-thousand-pages": _many_pages,
    "spinning-pdf": _spinning,
    "pdf-named-txt": _pdf_named_txt,
    "shell-metacharacters-name": _shell_metacharacters,
    "non-utf8-name": _non_utf8_name,
    "long-name": _long_name,
    "zero-bytes": _zero_bytes,
    "random-bytes": _random_bytes,
    "png-bomb": _png_bomb,
    "tiff-bomb": _tiff_bomb,
    "fake-png": _fake_png,
    "zip-bomb": _zip_bomb,
    "zip-traversal": _zip_traversal,
    "zip-absolute": _zip_absolute,
    "zip-symlink": _zip_symlink,
    "zip-too-deep": _zip_too_deep,
    "zip-partly-hostile": _zip_partly_hostile,
    "zip-encrypted": _zip_encrypted_member,
    "zip-bad-crc": _zip_bad_crc,
    "ten-thousand-part-email": _many_part_email,
    "zip-bomb-docx": _zip_bomb_docx,
    "billion-laughs-docx": _billion_laughs_docx,
    "macro-docm": _macro_docm,
    "encrypted-docx": _encrypted_docx,
    "hanging-conversion": _hanging_conversion,
}

# Every case, in the order the corpus is built and listed.
CASE_KEYS: tuple[str, ...] = tuple(_BUILDERS)


# --- hand-made files --------------------------------------------------------------


def spinning_pdf(levels: int, fan_out: int) -> bytes:
    """A one-page PDF drawing ``fan_out ** levels`` lines through nested form XObjects.

    Each form is drawn ``fan_out`` times by the one above it; MuPDF guards
    against a form drawing itself, not against one drawn many times, so the
    work grows exponentially while the file stays a few hundred bytes per level.
    """
    calls = b" ".join([b"/X Do"] * fan_out)
    first_form = 5
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R "
        b"/Resources << /XObject << /X %d 0 R >> >> >>" % first_form,
        _stream(b"", calls),
    ]
    for level in range(levels):
        last = level == levels - 1
        resources = (
            b"" if last else b"/Resources << /XObject << /X %d 0 R >> >>" % (first_form + level + 1)
        )
        body = b"0 0 m 200 200 l S" if last else calls
        objects.append(
            _stream(b"/Type /XObject /Subtype /Form /BBox [0 0 200 200] " + resources, body)
        )
    return _raw_pdf(objects)


def png_bytes(width: int, height: int, idat: bytes) -> bytes:
    """An 8-bit greyscale PNG declaring ``width`` x ``height`` with ``idat`` as its data.

    Chunk CRCs are correct, so a decoder trusts the header until it decodes.
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def tiff_bytes(width: int, height: int) -> bytes:
    """A little-endian greyscale TIFF declaring ``width`` x ``height`` over one 16-byte strip."""
    strip_bytes = 16
    entry_count = 9
    strip_at = 8 + 2 + entry_count * 12 + 4
    # (tag, type, value): type 3 is SHORT, 4 is LONG; each with a count of 1.
    entries = [
        (256, 4, width),  # ImageWidth
        (257, 4, height),  # ImageLength
        (258, 3, 8),  # BitsPerSample
        (259, 3, 1),  # Compression: none
        (262, 3, 1),  # PhotometricInterpretation: black is zero
        (273, 4, strip_at),  # StripOffsets
        (277, 3, 1),  # SamplesPerPixel
        (278, 4, height),  # RowsPerStrip: one strip for the whole image
        (279, 4, strip_bytes),  # StripByteCounts
    ]
    out = bytearray(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", entry_count))
    for tag, kind, value in entries:
        value_field = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, 1) + value_field
    out += struct.pack("<I", 0)  # no next IFD
    out += bytes(strip_bytes)
    return bytes(out)


def _one_page_pdf(declared_page_count: int, padding_objects: int = 0) -> bytes:
    """One page of text under a page tree that declares ``declared_page_count`` pages.

    ``padding_objects`` empty dictionaries raise the object count: MuPDF only
    believes a /Count no larger than it.
    """
    text = b"BT /F1 12 Tf 20 100 Td (The only real page of this file.) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count %d >>" % declared_page_count,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 300] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        _stream(b"", text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    objects += [b"<< >>"] * padding_objects
    return _raw_pdf(objects)


def _many_page_pdf(page_count: int) -> bytes:
    """``page_count`` one-inch pages sharing one content stream and font."""
    first_page = 5
    kids = b" ".join(b"%d 0 R" % (first_page + index) for index in range(page_count))
    text = b"BT /F1 8 Tf 8 30 Td (tiny page) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, page_count),
        _stream(b"", text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] /Contents 3 0 R "
        b"/Resources << /Font << /F1 4 0 R >> >> >>"
    )
    objects += [page] * page_count
    return _raw_pdf(objects)


def _raw_pdf(objects: list[bytes]) -> bytes:
    """A PDF of ``objects`` numbered from 1, with an exact cross-reference table."""
    content = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(content))
        content += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(content)
    content += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    content += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    content += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref_at,
    )
    return bytes(content)


def _stream(dictionary: bytes, data: bytes) -> bytes:
    """A stream object's body: ``dictionary`` entries plus the length, then ``data``."""
    return b"<< %s /Length %d >>\nstream\n%s\nendstream" % (dictionary, len(data), data)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """A PNG chunk: length, type, data and the CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _report_pdf() -> bytes:
    """The 12-page report the truncated cases cut (deterministic, so the cuts are too)."""
    return _pdf_bytes(
        lambda scratch: pdfgen.make_long_pdf(scratch, page_count=12, words_per_page=200)
    )


def _pdf_bytes(make: Callable[[Path], Path]) -> bytes:
    """The bytes of a PDF that ``make`` writes to a scratch path, outside the corpus.

    MuPDF cannot save to a name that is not valid UTF-8, so named cases write bytes.
    """
    with tempfile.TemporaryDirectory(prefix="sieve-hostile-") as scratch:
        return make(Path(scratch) / "scratch.pdf").read_bytes()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
