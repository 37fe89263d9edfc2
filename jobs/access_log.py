"""The access log: what a read of document content or identifiers records.

A hospital's access log and a law firm's chain of custody both ask who saw
which document, and when. Every such read, whether through the console, the
API or an export that copies identifiers into its output, is one
``content.viewed`` event in the job's hash chain, built here so the shape
auditors query (``what``, and how it was read) has one owner.
"""

from __future__ import annotations

from typing import Any

from db import audit

CONTENT_VIEWED = "content.viewed"


def content_viewed(
    actor: str,
    job_id: int,
    what: str,
    details: dict[str, Any],
    *,
    run_id: int | None = None,
    item_id: int | None = None,
    item_sha256: str | None = None,
) -> audit.EventDraft:
    """The event for ``actor`` reading ``what`` (item, artifact, original, identifiers, …).

    ``details`` say how (role, via, address, or which export) and which
    parts; never the content or the identifiers themselves.
    """
    return audit.EventDraft(
        action=CONTENT_VIEWED,
        actor=actor,
        job_id=job_id,
        run_id=run_id,
        item_id=item_id,
        item_sha256=item_sha256,
        details={"what": what, **details},
    )
