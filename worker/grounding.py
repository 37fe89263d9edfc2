"""Grounding: every quote an answer gives, checked against the text of the page it cites.

A reviewer can only rely on "page 3 says …" if page 3 says it. Review tasks
(privilege, responsiveness, pii) answer with ``{"page": …, "quote": …}``
objects; after the answer validates, each quote is looked for in the
extracted text of the cited page. Matching forgives what extraction and
typing change and nothing else: case, runs of white space, curly against
straight quotes, dashes, and a trailing full stop or ellipsis. A quote that
is on another page is unverified with that page named; one that is nowhere
is unverified as not found. The check never changes the answer: its verdict
is stored beside it (``results.grounding``) and counted in ``sieve report``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u00a0": " ",
        "\u00ad": "",  # a soft hyphen only shows where a line broke
    }
)
_PAGE_NUMBER = re.compile(r"^\s*(?:p\.?|pp\.?|page)?\s*(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class QuoteCheck:
    """One quote's verdict."""

    page: str
    quote: str
    verified: bool
    reason: str  # "on the cited page", "on another page", "not in the document", …
    found_on: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "quote": self.quote,
            "verified": self.verified,
            "reason": self.reason,
            "found_on": self.found_on,
        }


def normalised(text: str) -> str:
    """``text`` as quotes are compared: folded case, punctuation variants and white space."""
    folded = text.translate(_FOLD).casefold()
    return " ".join(folded.split())


def quotes_in(output: Any) -> Iterator[tuple[str, str]]:
    """Every (page, quote) pair an answer gives, wherever its schema puts them."""
    if isinstance(output, dict):
        page, quote = output.get("page"), output.get("quote")
        if isinstance(page, str) and isinstance(quote, str):
            yield page, quote
        for value in output.values():
            yield from quotes_in(value)
    elif isinstance(output, list):
        for value in output:
            yield from quotes_in(value)


def check_quotes(output: dict[str, Any], pages: Mapping[str, str]) -> dict[str, Any] | None:
    """The grounding verdict for ``output`` over the document's ``pages`` (label → text).

    None when the answer quotes nothing (tasks without citations).
    """
    found = list(quotes_in(output))
    if not found:
        return None
    texts = {label: normalised(text) for label, text in pages.items()}
    checks = [_check(page, quote, texts) for page, quote in found]
    unverified = [check for check in checks if not check.verified]
    return {
        "quotes": len(checks),
        "verified": len(checks) - len(unverified),
        "unverified": len(unverified),
        "checks": [check.as_json() for check in checks],
    }


def quote_counts(verdict: dict[str, Any] | None) -> dict[str, int]:
    """``quotes`` and ``quotes_unverified`` of a stored verdict; empty when there is none."""
    if not verdict:
        return {}
    return {"quotes": verdict["quotes"], "quotes_unverified": verdict["unverified"]}


def _check(page: str, quote: str, texts: Mapping[str, str]) -> QuoteCheck:
    wanted = normalised(quote).rstrip(" .…")
    if not wanted:
        return QuoteCheck(page, quote, False, "the quote is empty")
    label = _cited_label(page, texts)
    if label is not None and wanted in texts[label]:
        return QuoteCheck(page, quote, True, "on the cited page", label)
    elsewhere = next((other for other, text in texts.items() if wanted in text), None)
    if elsewhere is not None:
        return QuoteCheck(page, quote, False, "on another page", elsewhere)
    if label is None:
        return QuoteCheck(page, quote, False, "no such page, and not in the document")
    return QuoteCheck(page, quote, False, "not in the document")


def _cited_label(page: str, texts: Mapping[str, str]) -> str | None:
    """The page label a citation means: the label itself, or "page N" for a bare N."""
    by_folded = {normalised(label): label for label in texts}
    cited = normalised(page)
    if cited in by_folded:
        return by_folded[cited]
    number = _PAGE_NUMBER.match(cited)
    if number is not None:
        for prefix in ("page", "slide"):
            label = by_folded.get(f"{prefix} {number.group(1)}")
            if label is not None:
                return label
    return None
