"""Bates numbers: a prefix, an optional separator and a zero-padded page number.

``ABC000000001``, ``ABC-000001``: every page of a production has one, in
order, with no gaps; a document's range runs from its first page's number to
its last's. Parsing takes any party's numbers apart as "everything up to the
trailing digits" and the digits, so ranges can be checked whatever prefix
another party used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TRAILING_DIGITS = re.compile(r"^(.*?)(\d+)$")


@dataclass(frozen=True)
class BatesFormat:
    """How this production writes its numbers."""

    prefix: str
    digits: int = 9
    separator: str = ""

    def format(self, number: int) -> str:
        return f"{self.prefix}{self.separator}{number:0{self.digits}d}"


@dataclass(frozen=True, order=True)
class Bates:
    """A parsed number: its prefix (separator included) and its value."""

    prefix: str
    number: int

    def next(self) -> Bates:
        return Bates(self.prefix, self.number + 1)


def parse(text: str) -> Bates | None:
    """``text`` as a Bates number, or None when it does not end in digits."""
    match = _TRAILING_DIGITS.match(text.strip())
    if match is None:
        return None
    return Bates(match.group(1), int(match.group(2)))
