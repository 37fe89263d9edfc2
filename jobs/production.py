"""``sieve export JOB --format production``: a Bates-numbered production with load files.

What the other side's review platform loads: every produced page an image
with its Bates number stamped in the lower right, numbered in order with no
gaps, families kept together (the parent, then its attachments), and a
volume laid out as litigation-support teams expect::

    OUT/VOL001/IMAGES/0001/ABC000000001.pdf     one page each (or .tif, Group 4)
    OUT/VOL001/NATIVES/0001/ABC000000007.xlsx   files that cannot be imaged
    OUT/VOL001/TEXT/0001/ABC000000001.txt       one text file per document
    OUT/VOL001/DATA/VOL001.dat  VOL001.opt      the load files (jobs/loadfiles.py)

At most 5,000 files go in one folder. A document is imaged from its PDF (a
PDF, or the PDF LibreOffice made of a legacy Office file), its picture (an
image), or its extracted text set on pages (e-mail, Word, text…); a
spreadsheet, audio, video, DICOM or anything that cannot be imaged travels
as a native behind a Bates-numbered slip sheet. With ``--withhold-privileged``
every document a privilege run found privileged is replaced by a slip sheet
"Withheld - privileged" (and belongs in the privilege log). The export is
an audit event with the load files' hashes, so what was produced is on the
job's chain of custody.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pymupdf
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import audit
from db.models import Item, Result, Run, StoredSegment
from jobs import loadfiles, privilege_log, results
from jobs.bates import BatesFormat
from jobs.settings import Settings
from jobs.status import resolve_run
from worker import errors, media_types

MAX_FILES_PER_FOLDER = 5000
# What a withheld document's slip sheet says (the PDF base fonts have no em dash).
WITHHELD_SLIP = "Withheld - privileged"
IMAGE_FORMATS = ("pdf", "tiff")
TIFF_DPI = 150
_PAGE = pymupdf.paper_rect("a4")
_TEXT_FONT = "cour"
_TEXT_SIZE = 9
_TEXT_LINE = 11
_TEXT_COLUMNS = 92
_MARGIN = 50
_STAMP_SIZE = 9

# Never imaged: the reviewer needs the file itself (formulas, sound, moving pictures, pixels).
_NATIVE_ONLY_PREFIXES = ("audio/", "video/")
_NATIVE_ONLY = frozenset(
    {
        media_types.XLSX,
        media_types.XLS,
        media_types.ODS,
        "text/csv",
        "application/dicom",
    }
)
_CONVERTED_PDF = "converted.pdf"

DAT_FIELDS = (
    "BEGBATES",
    "ENDBATES",
    "BEGATTACH",
    "ENDATTACH",
    "CUSTODIAN",
    "ALL_CUSTODIANS",
    "FILE_NAME",
    "FILE_PATH",
    "FROM",
    "TO",
    "CC",
    "BCC",
    "SUBJECT",
    "DATE_SENT",
    "MD5",
    "SHA256",
    "PAGE_COUNT",
    "TEXT_PATH",
    "NATIVE_PATH",
    "THREAD_ID",
    "WITHHELD",
)


@dataclass(frozen=True)
class ProductionOptions:
    """What ``sieve export --format production`` was asked for."""

    bates: BatesFormat
    start: int = 1
    image_format: str = "pdf"
    volume: str = "VOL001"
    run_number: int | None = None  # the run whose results are produced (default: latest)
    withhold_privileged: bool = False
    privilege_run_number: int | None = None  # default: the job's latest privilege run
    review_fields: tuple[str, ...] = ()  # keys of the produced run's answers, as DAT fields
    dialect: loadfiles.DatDialect = loadfiles.CONCORDANCE


@dataclass
class ProducedDocument:
    """One document's place in the production."""

    item_id: int
    family_id: int
    begin: str
    end: str
    page_count: int
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class Production:
    """What an export wrote."""

    root: Path
    volume: str
    documents: list[ProducedDocument]
    pages: int
    withheld: int
    natives: int
    dat_path: Path
    opt_path: Path


class _Folders:
    """Numbered subfolders (0001, 0002…) of one kind, at most 5,000 files each."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def next_path(self, name: str) -> Path:
        folder = self.root / f"{self.count // MAX_FILES_PER_FOLDER + 1:04d}"
        self.count += 1
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name


def produce(
    session: Session, settings: Settings, job_id: int, out_dir: Path, options: ProductionOptions
) -> Production:
    """Write the production of ``job_id`` under ``out_dir`` (which must be empty or absent)."""
    if options.image_format not in IMAGE_FORMATS:
        raise errors.UsageError(f"--image must be one of {', '.join(IMAGE_FORMATS)}")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise errors.UsageError(f"{out_dir} is not empty: a production is written to a new folder")
    run = resolve_run(session, job_id, options.run_number)
    withheld = _privileged_items(session, job_id, options) if options.withhold_privileged else set()
    rows = [row for row in results.result_rows(session, run) if _is_document(row)]
    items = {
        item.id: item
        for item in session.scalars(select(Item).where(Item.id.in_([r["item_id"] for r in rows])))
    }
    writer = _VolumeWriter(session, settings, out_dir, options)
    documents = [
        writer.write_document(row, items[row["item_id"]], row["item_id"] in withheld)
        for row in rows
    ]
    _fill_family_ranges(documents)
    production = writer.finish(documents)
    _audit(session, job_id, run, production, options)
    return production


def _is_document(row: dict[str, Any]) -> bool:
    """A produced document: not a second path of one, not a container of others."""
    return not row["duplicate"] and row["container_counts"] is None


def _privileged_items(session: Session, job_id: int, options: ProductionOptions) -> set[int]:
    """The items the privilege run found privileged."""
    run = privilege_log.privilege_run(session, job_id, options.privilege_run_number)
    answers = session.execute(select(Result.item_id, Result.output).where(Result.run_id == run.id))
    return {item_id for item_id, output in answers if (output or {}).get("privileged") is True}


def _fill_family_ranges(documents: list[ProducedDocument]) -> None:
    """BEGATTACH/ENDATTACH: the first and last Bates number of each document's family."""
    families: dict[int, list[ProducedDocument]] = {}
    for document in documents:
        families.setdefault(document.family_id, []).append(document)
    for members in families.values():
        for document in members:
            document.fields["BEGATTACH"] = members[0].begin
            document.fields["ENDATTACH"] = members[-1].end


class _VolumeWriter:
    """Writes one volume's images, natives and text, numbering pages as it goes."""

    def __init__(
        self, session: Session, settings: Settings, out_dir: Path, options: ProductionOptions
    ) -> None:
        self.session = session
        self.settings = settings
        self.options = options
        self.root = out_dir
        self.volume_dir = out_dir / options.volume
        self.images = _Folders(self.volume_dir / "IMAGES")
        self.natives = _Folders(self.volume_dir / "NATIVES")
        self.texts = _Folders(self.volume_dir / "TEXT")
        self.next_number = options.start
        self.opt_lines: list[loadfiles.OptLine] = []
        self.withheld = 0
        self.native_count = 0

    def write_document(self, row: dict[str, Any], item: Item, withheld: bool) -> ProducedDocument:
        native: Path | None = None
        if withheld:
            pages = _slip_sheet(WITHHELD_SLIP, row)
            self.withheld += 1
        else:
            pages = self._imaged(item)
            if pages is None:
                pages = _slip_sheet("Produced in native format", row)
                native = self.settings.objects_dir / item.stored_path
        try:
            begin_number = self.next_number
            image_paths = [self._write_page(pages, index) for index in range(pages.page_count)]
        finally:
            pages.close()
        begin = self.options.bates.format(begin_number)
        end = self.options.bates.format(self.next_number - 1)
        self._record_pages(begin_number, image_paths)
        fields = _document_fields(row, item, self.options)
        fields |= {"BEGBATES": begin, "ENDBATES": end, "PAGE_COUNT": str(len(image_paths))}
        fields["WITHHELD"] = "Y" if withheld else ""
        text = f"{WITHHELD_SLIP}\n" if withheld else self._text_of(item)
        fields["TEXT_PATH"] = self._relative(self._write_text(begin, text))
        if native is not None:
            fields["NATIVE_PATH"] = self._relative(self._write_native(begin, native, item))
            self.native_count += 1
        return ProducedDocument(
            row["item_id"], row["family_id"], begin, end, len(image_paths), fields
        )

    def _imaged(self, item: Item) -> pymupdf.Document | None:
        """The document's pages as a PDF, or None when it travels as a native."""
        if item.media_type in _NATIVE_ONLY or item.media_type.startswith(_NATIVE_ONLY_PREFIXES):
            return None
        stored = self.settings.objects_dir / item.stored_path
        converted = self.settings.artifacts_dir / item.sha256 / _CONVERTED_PDF
        try:
            if item.media_type == "application/pdf":
                return _opened_pdf(stored)
            if converted.is_file():
                return _opened_pdf(converted)
            if item.media_type.startswith("image/"):
                with pymupdf.open(stored) as picture:
                    return pymupdf.open("pdf", picture.convert_to_pdf())
        except (RuntimeError, ValueError, pymupdf.FileDataError):
            return None  # cannot be imaged: produced natively instead
        text = self._text_of(item)
        return _text_pages(text) if text.strip() else None

    def _text_of(self, item: Item) -> str:
        """The item's extracted text, a form feed between segments (pages, parts)."""
        segments = self.session.scalars(
            select(StoredSegment)
            .where(StoredSegment.item_id == item.id)
            .order_by(StoredSegment.kind, StoredSegment.index)
        ).all()
        return "\n\f\n".join(segment.text for segment in segments if segment.text.strip())

    def _write_page(self, pages: pymupdf.Document, index: int) -> Path:
        number = self.options.bates.format(self.next_number)
        self.next_number += 1
        single = pymupdf.open()
        try:
            single.insert_pdf(pages, from_page=index, to_page=index)
            _stamp(single[0], number)
            if self.options.image_format == "pdf":
                target = self.images.next_path(f"{number}.pdf")
                single.save(target, garbage=3, deflate=True)
            else:
                target = self.images.next_path(f"{number}.tif")
                _save_tiff(single[0], target)
        finally:
            single.close()
        return target

    def _record_pages(self, begin_number: int, image_paths: list[Path]) -> None:
        for offset, path in enumerate(image_paths):
            first = offset == 0
            self.opt_lines.append(
                loadfiles.OptLine(
                    image_key=self.options.bates.format(begin_number + offset),
                    volume=self.options.volume,
                    path=self._relative(path).replace("/", "\\"),
                    doc_break=first,
                    folder_break=False,
                    box_break=False,
                    page_count=len(image_paths) if first else None,
                )
            )

    def _write_text(self, begin: str, text: str) -> Path:
        target = self.texts.next_path(f"{begin}.txt")
        target.write_text(text, encoding="utf-8")
        return target

    def _write_native(self, begin: str, source: Path, item: Item) -> Path:
        suffix = PurePosixPath(item.path.rsplit(" › ", 1)[-1]).suffix[:10]
        target = self.natives.next_path(f"{begin}{suffix}")
        shutil.copyfile(source, target)
        return target

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def finish(self, documents: list[ProducedDocument]) -> Production:
        data = self.volume_dir / "DATA"
        data.mkdir(parents=True, exist_ok=True)
        fields = [*DAT_FIELDS, *(_review_field(name) for name in self.options.review_fields)]
        dat_path = data / f"{self.options.volume}.dat"
        dat_path.write_bytes(
            loadfiles.dat_bytes(fields, (d.fields for d in documents), self.options.dialect)
        )
        opt_path = data / f"{self.options.volume}.opt"
        opt_path.write_bytes(loadfiles.opt_bytes(self.opt_lines))
        return Production(
            self.root,
            self.options.volume,
            documents,
            len(self.opt_lines),
            self.withheld,
            self.native_count,
            dat_path,
            opt_path,
        )


def _document_fields(row: dict[str, Any], item: Item, options: ProductionOptions) -> dict[str, str]:
    email = (item.doc_metadata or {}).get("email") or {}
    answer = row.get("result") or {}
    fields = {
        "CUSTODIAN": row.get("custodian") or "",
        "ALL_CUSTODIANS": "; ".join(row.get("all_custodians") or []),
        "FILE_NAME": row["path"].rsplit(" › ", 1)[-1].rsplit("/", 1)[-1],
        "FILE_PATH": row["path"],
        "FROM": email.get("from") or "",
        "TO": "; ".join(email.get("to") or []),
        "CC": "; ".join(email.get("cc") or []),
        "BCC": "; ".join(email.get("bcc") or []),
        "SUBJECT": email.get("subject") or "",
        "DATE_SENT": email.get("date") or "",
        "MD5": item.md5 or "",
        "SHA256": item.sha256,
        "THREAD_ID": row.get("thread_id") or "",
        "NATIVE_PATH": "",
    }
    for name in options.review_fields:
        value = answer.get(name)
        fields[_review_field(name)] = "" if value is None else _field_text(value)
    return fields


def _review_field(name: str) -> str:
    return "REVIEW_" + "".join(c if c.isalnum() else "_" for c in name.upper())


def _field_text(value: Any) -> str:
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, list):
        return "; ".join(_field_text(v) for v in value)
    return str(value)


def _opened_pdf(path: Path) -> pymupdf.Document:
    document = pymupdf.open(path)
    if document.needs_pass or document.page_count == 0:
        document.close()
        raise ValueError("cannot be imaged")
    return document


def _text_pages(text: str) -> pymupdf.Document:
    """Extracted text set on A4 pages in a monospaced font, a form feed starting a new page."""
    document = pymupdf.open()
    lines_per_page = int((_PAGE.height - 2 * _MARGIN) // _TEXT_LINE)
    for block in text.split("\f"):
        lines = list(_wrapped(block.strip("\n")))
        for start in range(0, max(1, len(lines)), lines_per_page):
            page = document.new_page(width=_PAGE.width, height=_PAGE.height)
            y = _MARGIN + _TEXT_SIZE
            for line in lines[start : start + lines_per_page]:
                page.insert_text((_MARGIN, y), line, fontname=_TEXT_FONT, fontsize=_TEXT_SIZE)
                y += _TEXT_LINE
    return document


def _wrapped(text: str) -> Iterator[str]:
    for line in text.splitlines() or [""]:
        line = line.expandtabs(4)
        while len(line) > _TEXT_COLUMNS:
            yield line[:_TEXT_COLUMNS]
            line = line[_TEXT_COLUMNS:]
        yield line


def _slip_sheet(title: str, row: dict[str, Any]) -> pymupdf.Document:
    """One page that stands in for a document: why, and which document."""
    document = pymupdf.open()
    page = document.new_page(width=_PAGE.width, height=_PAGE.height)
    page.insert_text((_MARGIN, 300), title, fontname="helv", fontsize=20)
    name = row["path"].rsplit(" › ", 1)[-1].rsplit("/", 1)[-1]
    page.insert_text((_MARGIN, 340), f"Document: {name[:80]}", fontname="helv", fontsize=11)
    return document


def _stamp(page: pymupdf.Page, number: str) -> None:
    """The Bates number in the lower right, on a white box so it reads over any content."""
    width = pymupdf.get_text_length(number, fontname="helv", fontsize=_STAMP_SIZE)
    rect = page.rect
    x, y = rect.x1 - 24 - width, rect.y1 - 18
    page.draw_rect(
        pymupdf.Rect(x - 3, y - _STAMP_SIZE - 1, x + width + 3, y + 4),
        color=None,
        fill=(1, 1, 1),
        overlay=True,
    )
    page.insert_text((x, y), number, fontname="helv", fontsize=_STAMP_SIZE, color=(0, 0, 0))


def _save_tiff(page: pymupdf.Page, target: Path) -> None:
    """A black-and-white Group 4 TIFF of the page, as productions usually carry."""
    from PIL import Image

    pixmap = page.get_pixmap(dpi=TIFF_DPI, colorspace=pymupdf.csGRAY)
    image = Image.frombytes("L", (pixmap.width, pixmap.height), pixmap.samples)
    image.convert("1").save(target, compression="group4", dpi=(TIFF_DPI, TIFF_DPI))


def _audit(
    session: Session, job_id: int, run: Run, production: Production, options: ProductionOptions
) -> None:
    from jobs.submit import submitter_identity

    documents = production.documents
    audit.append_event(
        session,
        audit.EventDraft(
            "production.exported",
            submitter_identity(),
            job_id,
            run.id,
            details={
                "volume": production.volume,
                "documents": len(documents),
                "pages": production.pages,
                "withheld": production.withheld,
                "natives": production.natives,
                "first_bates": documents[0].begin if documents else None,
                "last_bates": documents[-1].end if documents else None,
                "image_format": options.image_format,
                "dat_sha256": hashlib.sha256(production.dat_path.read_bytes()).hexdigest(),
                "opt_sha256": hashlib.sha256(production.opt_path.read_bytes()).hexdigest(),
            },
        ),
    )
    session.commit()
