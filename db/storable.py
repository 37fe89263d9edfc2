"""Text the database will accept: the one boundary that cleans what files carry.

PostgreSQL refuses two things a file can hold and Python strings can carry:
the NUL character (``\\u0000 cannot be converted to text``, in ``text`` and in
``jsonb`` alike) and unpaired UTF-16 surrogates (not encodable as UTF-8). A PDF
written by ImageMagick puts a NUL in its title; a badly decoded file name or
a library message may carry a lone surrogate. SQLite stores both without
complaint, which is why this must not be left to the database to notice.

:func:`clean` replaces each such character with U+FFFD and counts them. The
session factory (:func:`db.session.make_session_factory`) runs it over every
string and JSON attribute of every row before it is flushed, and the audit
trail runs it over event details before hashing them, so what is hashed is
what is stored. Callers that want to say that something was replaced (the
pipeline notes it on the item) call :func:`clean` themselves first.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(text: str) -> tuple[str, int]:
    """``text`` with NULs and lone surrogates replaced, and how many were."""
    if not _UNSTORABLE.search(text):  # the common case: one C-speed scan, no copy
        return text, 0
    return _UNSTORABLE.subn(REPLACEMENT, text)


def clean(value: Any) -> tuple[Any, int]:
    """``value`` (a string, or JSON-like dicts and lists of them) made storable; and the count.

    Dictionary keys are cleaned too. Values of other types pass unchanged. The
    input is not modified: a changed container is a new one.
    """
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        replaced = 0
        cleaned_dict: dict[Any, Any] = {}
        for key, item in value.items():
            cleaned_key, key_count = clean(key)
            cleaned_item, item_count = clean(item)
            cleaned_dict[cleaned_key] = cleaned_item
            replaced += key_count + item_count
        return (cleaned_dict if replaced else value), replaced
    if isinstance(value, (list, tuple)):
        pairs = [clean(item) for item in value]
        replaced = sum(count for _, count in pairs)
        if not replaced:
            return value, 0
        return type(value)(item for item, _ in pairs), replaced
    return value, 0
