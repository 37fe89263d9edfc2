"""Load files: the Concordance DAT and the Opticon OPT, written and read.

What review platforms load a production by. The DAT is one document per
line, fields quoted and separated by bytes no document text uses: by
default field separator DC4 (0x14), quote þ (U+00FE) and ® (U+00AE) for a
newline inside a field, UTF-8 with a byte-order mark, CRLF line ends. The
OPT is one page image per line::

    ImageKey,Volume,Path,DocBreak,FolderBreak,BoxBreak,PageCount
    ABC000000001,VOL001,VOL001\\IMAGES\\0001\\ABC000000001.tif,Y,,,3

``DocBreak`` is ``Y`` on a document's first page, which alone carries the
page count; paths are relative to the production's root, with backslashes,
as the platforms that read OPT expect. The readers here accept what other
parties send too: any delimiters given, no BOM, LF line ends, forward slashes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from worker import errors

UTF8_BOM = b"\xef\xbb\xbf"


def volume_dats(root: Path) -> list[Path]:
    """Every volume's DAT under a production's root (``*/DATA/*.dat``), or the root's own."""
    return sorted(root.glob("*/DATA/*.dat")) + sorted(root.glob("DATA/*.dat"))


@dataclass(frozen=True)
class DatDialect:
    """The delimiters of a DAT file (Concordance's defaults unless told otherwise)."""

    separator: str = "\x14"
    quote: str = "\u00fe"
    newline: str = "\u00ae"

    def __post_init__(self) -> None:
        marks = (self.separator, self.quote, self.newline)
        if any(len(mark) != 1 or mark in "\r\n" for mark in marks):
            raise errors.UsageError(
                "DAT delimiters are single characters other than CR and LF, "
                f"got {[hex(ord(m)) if len(m) == 1 else m for m in marks]}"
            )
        if len(set(marks)) != 3:
            raise errors.UsageError("the DAT's separator, quote and newline mark must differ")


CONCORDANCE = DatDialect()


def parse_delimiter(text: str) -> str:
    """One delimiter as users of review platforms write it.

    A single character stands for itself; ``0x14`` and ``U+00FE`` are code
    points in hexadecimal; two or more digits (``020``, ``254``) are the
    decimal "ASCII" codes the platforms' load-file dialogs show.
    """
    written = text.strip() if len(text) > 1 else text
    if len(written) == 1:
        return written
    lowered = written.lower()
    try:
        if lowered.startswith(("0x", "u+", "\\x", "\\u")):
            code = int(lowered[2:], 16)
        elif written.isdigit():
            code = int(written, 10)
        else:
            raise ValueError(written)
        return chr(code)
    except (ValueError, OverflowError):
        raise errors.UsageError(
            f"cannot read {text!r} as a delimiter: give one character, 0x14, U+00FE or 020"
        ) from None


def detect_dialect(data: bytes, newline: str | None = None) -> DatDialect:
    """The separator and quote a DAT uses, read from its header line.

    A header's first character is the quote (þ, ", ...) unless it is a
    letter, and the character after that first field's closing quote is the
    separator. The newline mark cannot be seen in a header: ``newline``, or
    Concordance's ®.
    """
    text = data.removeprefix(UTF8_BOM).decode("utf-8", errors="replace")
    header = text.split("\n", 1)[0].rstrip("\r")
    newline = newline or CONCORDANCE.newline
    if not header:
        return DatDialect(newline=newline)
    first = header[0]
    if first.isalnum() or first == "_":
        separator = next((c for c in header if not (c.isalnum() or c in "_ -")), None)
        quote = next(c for c in (CONCORDANCE.quote, '"', "'", "~") if c not in (separator, newline))
    else:
        quote = first
        closing = header.find(quote, 1)
        separator = header[closing + 1] if 0 < closing < len(header) - 1 else None
    if separator is None:
        return DatDialect(quote=quote, newline=newline)
    return DatDialect(separator=separator, quote=quote, newline=newline)


def dat_bytes(fields: Sequence[str], rows: Iterable[dict[str, str]], dialect: DatDialect) -> bytes:
    """The DAT for ``rows`` (a dict per document, keyed by field name), BOM first."""
    lines = [_dat_line(fields, dialect)]
    lines.extend(_dat_line([row.get(name, "") for name in fields], dialect) for row in rows)
    return UTF8_BOM + "\r\n".join(lines).encode("utf-8") + b"\r\n"


def _dat_line(values: Sequence[str], dialect: DatDialect) -> str:
    cleaned = [
        value.replace("\r\n", "\n")
        .replace("\r", "\n")
        .replace("\n", dialect.newline)
        .replace(dialect.quote, "")
        .replace(dialect.separator, " ")
        for value in values
    ]
    return dialect.separator.join(f"{dialect.quote}{value}{dialect.quote}" for value in cleaned)


def read_dat(
    data: bytes, dialect: DatDialect | None = None
) -> tuple[list[str], list[dict[str, str]]]:
    """The field names and the rows of a DAT file; newline markers turned back into newlines.

    Without a ``dialect`` the separator and quote are read from the header
    (``detect_dialect``), so another party's DAT reads as well as ours.
    """
    if dialect is None:
        dialect = detect_dialect(data)
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    text = data.decode("utf-8")
    lines = [line for line in re.split(r"\r\n|\n", text) if line]
    if not lines:
        return [], []
    header = _dat_values(lines[0], dialect)
    rows = []
    for line in lines[1:]:
        values = _dat_values(line, dialect)
        values += [""] * (len(header) - len(values))
        rows.append(dict(zip(header, values, strict=False)))
    return header, rows


def _dat_values(line: str, dialect: DatDialect) -> list[str]:
    return [
        value.strip().strip(dialect.quote).replace(dialect.newline, "\n")
        for value in line.split(dialect.separator)
    ]


@dataclass(frozen=True)
class OptLine:
    """One page image of an Opticon file."""

    image_key: str
    volume: str
    path: str
    doc_break: bool
    folder_break: bool
    box_break: bool
    page_count: int | None

    def as_text(self) -> str:
        return ",".join(
            [
                self.image_key,
                self.volume,
                self.path,
                "Y" if self.doc_break else "",
                "Y" if self.folder_break else "",
                "Y" if self.box_break else "",
                "" if self.page_count is None else str(self.page_count),
            ]
        )


def opt_bytes(lines: Iterable[OptLine]) -> bytes:
    return "".join(line.as_text() + "\r\n" for line in lines).encode("utf-8")


def read_opt(data: bytes) -> list[OptLine]:
    """Every page line of an OPT file; a malformed line raises ValueError naming it."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    parsed = []
    for number, line in enumerate(re.split(r"\r\n|\n", data.decode("utf-8")), start=1):
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) < 7:
            raise ValueError(f"OPT line {number} has {len(parts)} fields, not 7: {line!r}")
        count = parts[6].strip()
        if count and not count.isdigit():
            raise ValueError(f"OPT line {number}: the page count {count!r} is not a number")
        parsed.append(
            OptLine(
                image_key=parts[0].strip(),
                volume=parts[1].strip(),
                path=parts[2].strip(),
                doc_break=parts[3].strip().upper() == "Y",
                folder_break=parts[4].strip().upper() == "Y",
                box_break=parts[5].strip().upper() == "Y",
                page_count=int(count) if count else None,
            )
        )
    return parsed
