"""``sieve production check DIR``: does a production hold together, ours or another party's?

Reads every volume's DAT and OPT under DIR (``*/DATA/*.dat`` and ``*.opt``, or
the two files directly under DIR/DATA) and reports, each as one line:

* a load file that cannot be parsed, or a DAT without BEGBATES/ENDBATES;
* Bates numbers that do not follow one another: a **gap** between one
  document's ENDBATES and the next one's BEGBATES, an **overlap**, a range
  that runs backwards, a prefix that changes inside a range;
* **DAT/OPT disagreements**: a document whose pages are not all in the OPT,
  whose first page is not a document break or whose page count differs; a
  document break in the OPT that starts no document in the DAT; a page
  listed twice;
* **broken references**: an image, text or native path that is not there;
* an attachment range (BEGATTACH/ENDATTACH) that does not contain its document.

A production passes when there is nothing to report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

from jobs import bates, loadfiles


@dataclass
class CheckReport:
    """What checking one production found."""

    root: Path
    documents: int = 0
    pages: int = 0
    first: str | None = None
    last: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        span = f", Bates {self.first}–{self.last}" if self.first else ""
        verdict = "ok" if self.ok else f"{len(self.problems)} problem(s)"
        return f"{self.documents} documents, {self.pages} pages{span}: {verdict}"


def check_production(root: Path, dialect: loadfiles.DatDialect | None = None) -> CheckReport:
    """Check every volume's load files under ``root``.

    Without a ``dialect`` each DAT's separator and quote are read from its header.
    """
    report = CheckReport(root)
    dats = loadfiles.volume_dats(root)
    if not dats:
        report.problems.append(f"no DAT file under {root} (looked for */DATA/*.dat and DATA/*.dat)")
        return report
    for dat in dats:
        opt = dat.with_suffix(".opt")
        if not opt.is_file():
            report.problems.append(f"{_shown(dat, root)}: no OPT beside it ({opt.name})")
            continue
        _check_volume(dat, opt, root, dialect, report)
    return report


def _check_volume(
    dat: Path, opt: Path, root: Path, dialect: loadfiles.DatDialect | None, report: CheckReport
) -> None:
    try:
        header, rows = loadfiles.read_dat(dat.read_bytes(), dialect)
    except (OSError, UnicodeDecodeError) as exc:
        report.problems.append(f"{_shown(dat, root)}: cannot be read: {exc}")
        return
    try:
        pages = loadfiles.read_opt(opt.read_bytes())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        report.problems.append(f"{_shown(opt, root)}: cannot be read: {exc}")
        return
    missing = [name for name in ("BEGBATES", "ENDBATES") if name not in header]
    if missing:
        report.problems.append(f"{_shown(dat, root)}: no {' or '.join(missing)} field")
        return
    by_key: dict[str, loadfiles.OptLine] = {}
    for page in pages:
        if page.image_key in by_key:
            report.problems.append(f"OPT: page {page.image_key} is listed twice")
        by_key[page.image_key] = page
        _check_path(page.path, root, f"OPT: the image of {page.image_key}", report)
    starts: set[str] = set()
    previous: bates.Bates | None = None
    for number, row in enumerate(rows, start=1):
        begin, end = row.get("BEGBATES", ""), row.get("ENDBATES", "")
        where = f"DAT document {number} ({begin or 'no BEGBATES'})"
        span = _range(begin, end, where, report)
        if span is None:
            continue
        first, last = span
        starts.add(begin)
        _check_sequence(previous, first, where, report)
        previous = last
        _check_pages(row, first, last, by_key, where, report)
        _check_attachment_range(row, first, last, where, report)
        for name in ("TEXT_PATH", "NATIVE_PATH"):
            if row.get(name):
                _check_path(row[name], root, f"{where}: {name}", report)
        report.documents += 1
        report.first = report.first or begin
        report.last = end
    report.pages += len(pages)
    for page in pages:
        if page.doc_break and page.image_key not in starts:
            report.problems.append(f"OPT: {page.image_key} starts a document the DAT does not have")


def _range(
    begin: str, end: str, where: str, report: CheckReport
) -> tuple[bates.Bates, bates.Bates] | None:
    first, last = bates.parse(begin), bates.parse(end)
    if first is None or last is None:
        report.problems.append(
            f"{where}: BEGBATES/ENDBATES {begin!r}/{end!r} are not Bates numbers"
        )
        return None
    if first.prefix != last.prefix:
        report.problems.append(f"{where}: the prefix changes inside the range {begin}–{end}")
        return None
    if last.number < first.number:
        report.problems.append(f"{where}: the range {begin}–{end} runs backwards")
        return None
    return first, last


def _check_sequence(
    previous: bates.Bates | None, first: bates.Bates, where: str, report: CheckReport
) -> None:
    if previous is None or previous.prefix != first.prefix:
        return
    expected = previous.number + 1
    if first.number > expected:
        report.problems.append(
            f"{where}: gap: {first.number - expected} number(s) missing after "
            f"{previous.prefix}{previous.number}"
        )
    elif first.number < expected:
        report.problems.append(f"{where}: overlaps the previous document's range")


def _check_pages(
    row: dict[str, str],
    first: bates.Bates,
    last: bates.Bates,
    by_key: dict[str, loadfiles.OptLine],
    where: str,
    report: CheckReport,
) -> None:
    begin = row["BEGBATES"]
    digits = len(begin) - len(first.prefix)
    keys = [f"{first.prefix}{n:0{digits}d}" for n in range(first.number, last.number + 1)]
    absent = [key for key in keys if key not in by_key]
    if absent:
        report.problems.append(f"{where}: {len(absent)} page(s) not in the OPT, first {absent[0]}")
        return
    head = by_key[keys[0]]
    if not head.doc_break:
        report.problems.append(
            f"{where}: its first page {begin} is not a document break in the OPT"
        )
    if head.page_count is not None and head.page_count != len(keys):
        report.problems.append(
            f"{where}: the OPT gives {head.page_count} pages, the Bates range {len(keys)}"
        )
    stated = row.get("PAGE_COUNT")
    if stated and stated.isdigit() and int(stated) != len(keys):
        report.problems.append(f"{where}: PAGE_COUNT {stated} but the range holds {len(keys)}")
    for key in keys[1:]:
        if by_key[key].doc_break:
            report.problems.append(f"{where}: {key} inside the range is a document break")


def _check_attachment_range(
    row: dict[str, str], first: bates.Bates, last: bates.Bates, where: str, report: CheckReport
) -> None:
    begin_attach, end_attach = row.get("BEGATTACH", ""), row.get("ENDATTACH", "")
    if not begin_attach and not end_attach:
        return
    start, stop = bates.parse(begin_attach), bates.parse(end_attach)
    if start is None or stop is None or not (start <= first and last <= stop):
        report.problems.append(
            f"{where}: its family range {begin_attach}–{end_attach} does not contain it"
        )


def _check_path(reference: str, root: Path, what: str, report: CheckReport) -> None:
    written = PureWindowsPath(reference)  # takes both \\ and / apart
    if written.drive or written.root or ".." in written.parts:
        report.problems.append(f"{what}: {reference} points outside the production")
        return
    if not root.joinpath(*written.parts).is_file():
        report.problems.append(f"{what}: {reference} is not there")


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
