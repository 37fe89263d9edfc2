"""Office files for tests: written with python-docx, python-pptx and openpyxl, converted by LibreOffice.

Hostile ones are built from real ones: a zip-bomb part or a billion-laughs
part swapped into a real package, a VBA project added to a real document,
a real document encrypted with msoffcrypto-tool.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n'
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'
        for n in range(1, 10)
    )
    + "]>\n"
)


def write_docx(
    path: Path, paragraphs: list[str], *, title: str = "", embedded: dict[str, bytes] | None = None
) -> Path:
    """A Word document of ``paragraphs`` and a table; ``embedded`` files under word/embeddings/."""
    import docx

    document = docx.Document()
    if title:
        document.core_properties.title = title
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    table = document.add_table(rows=2, cols=2)
    for row, values in zip(table.rows, (("Quarter", "Revenue"), ("Q3", "flat")), strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    if embedded:
        with zipfile.ZipFile(path, "a") as package:
            for name, content in embedded.items():
                package.writestr(f"word/embeddings/{name}", content)
    return path


def docx_bytes(paragraphs: list[str]) -> bytes:
    with tempfile.TemporaryDirectory() as scratch:
        return write_docx(Path(scratch) / "d.docx", paragraphs).read_bytes()


def write_pptx(path: Path, slides: list[tuple[str, str]]) -> Path:
    """A presentation of (title, body) slides, the first with speaker notes."""
    import pptx

    presentation = pptx.Presentation()
    layout = presentation.slide_layouts[1]
    for number, (title, body) in enumerate(slides):
        slide = presentation.slides.add_slide(layout)
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if number == 0:
            slide.notes_slide.notes_text_frame.text = "Speaker notes: mention the board."
    path.parent.mkdir(parents=True, exist_ok=True)
    presentation.save(str(path))
    return path


def write_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    """A workbook of named sheets of rows."""
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(str(path))
    return path


def write_encrypted_docx(path: Path, password: str = "secret") -> Path:
    """A real DOCX encrypted with a password (the ECMA-376 agile encryption Office uses)."""
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = io.BytesIO(docx_bytes(["Privileged and confidential."]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        OOXMLFile(plain).encrypt(password, out)
    return path


def _replace_part(source: Path, target: Path, part: str, content: bytes, compress: int) -> Path:
    """``source`` with ``part`` replaced by ``content`` (every other part copied as it was)."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as rebuilt:
        for info in original.infolist():
            if info.filename != part:
                rebuilt.writestr(info, original.read(info))
        rebuilt.writestr(part, content, compress_type=compress)
    return target


def write_zip_bomb_docx(path: Path, expanded_bytes: int = 200 * 1024 * 1024) -> Path:
    """A real DOCX whose document part expands to ``expanded_bytes`` of one repeated byte."""
    with tempfile.TemporaryDirectory() as scratch:
        real = write_docx(Path(scratch) / "real.docx", ["real"])
        with zipfile.ZipFile(real) as original, zipfile.ZipFile(path, "w") as rebuilt:
            for info in original.infolist():
                if info.filename != "word/document.xml":
                    rebuilt.writestr(info, original.read(info))
            # Written in chunks: the bomb never sits in this process's memory whole.
            bomb = zipfile.ZipInfo("word/document.xml")
            bomb.compress_type = zipfile.ZIP_DEFLATED
            with rebuilt.open(bomb, "w", force_zip64=True) as part:
                chunk = b" " * (1024 * 1024)
                for _ in range(expanded_bytes // len(chunk)):
                    part.write(chunk)
    return path


def write_billion_laughs_docx(path: Path) -> Path:
    """A real DOCX whose document part declares nested entities that expand to 10^9 'lol's."""
    body = (
        BILLION_LAUGHS + '<w:document xmlns:w="http://schemas.openxmlformats.org/'
        'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p>'
        "</w:body></w:document>"
    ).encode()
    with tempfile.TemporaryDirectory() as scratch:
        real = write_docx(Path(scratch) / "real.docx", ["real"])
        return _replace_part(real, path, "word/document.xml", body, zipfile.ZIP_DEFLATED)


def write_macro_docm(path: Path) -> Path:
    """A macro-enabled Word document: a real DOCX carrying a VBA project part (never run)."""
    with tempfile.TemporaryDirectory() as scratch:
        real = write_docx(Path(scratch) / "real.docx", ["Enable macros to view this invoice."])
        vba = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"Attribute VB_Name = AutoOpen Shell calc" * 20
        return _replace_part(real, path, "word/vbaProject.bin", vba, zipfile.ZIP_DEFLATED)


def soffice() -> str | None:
    return shutil.which("soffice")


def convert_with_libreoffice(source: Path, target_format: str, out_dir: Path) -> Path:
    """``source`` saved by LibreOffice itself as ``target_format`` (doc, odt, xls…)."""
    binary = soffice()
    if binary is None:
        raise RuntimeError("LibreOffice (soffice) is not installed; run scripts/setup")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="officegen-") as profile:
        subprocess.run(
            [
                binary,
                f"-env:UserInstallation={Path(profile).as_uri()}",
                "--headless",
                "--norestore",
                "--convert-to",
                target_format,
                "--outdir",
                str(out_dir),
                str(source),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
    produced = out_dir / f"{source.stem}.{target_format}"
    if not produced.is_file():
        raise RuntimeError(f"LibreOffice did not write {produced}")
    return produced
