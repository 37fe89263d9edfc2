"""HTML read as text, the way a reviewer sees it rendered (inscriptis, Apache-2.0).

Used by the HTML extractor and for e-mail bodies sent as HTML only. Scripts,
styles and remote resources are never fetched or run: inscriptis reads the
markup and lays out its text, tables included.
"""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"<[^>]+>")


def html_to_text(markup: str) -> str:
    """The visible text of ``markup``; markup the parser rejects is stripped of tags instead."""
    if not markup.strip():
        return ""
    from inscriptis import get_text  # imported here: only HTML needs it

    try:
        text = get_text(markup)
    except (ValueError, TypeError, RecursionError):
        text = html.unescape(_TAG.sub(" ", markup))
    return "\n".join(line.rstrip() for line in text.splitlines()).strip()
