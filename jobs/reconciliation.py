"""``sieve report JOB``: every submitted path accounted for exactly once.

A production or a review is only defensible when nothing fell through: each
path the user submitted is in exactly one category for the run reported on:

``processed``      its item has a result
``duplicate``      the same content as an earlier path (the item it duplicates is named)
``failed``         its item stopped with an error code and message
``unsupported``    no extractor or model capability for it
``cancelled``      the run was cancelled before it was processed
``unfinished``     still pending, queued or running
``not_in_run``     a re-run that did not select it

Files found inside containers and documents (a mailbox's messages, an
e-mail's attachments, a ZIP's files, an Office file's embedded files) are
items too, and each path they were found at is accounted for the same way,
in a second check of its own: they are not submitted paths. An archive
member that was refused (a ``..`` name, a bomb) never became an item; it is
listed as a ``refused in archive`` row under its archive.

The check lines compare the submitted paths (the job's recorded file count,
and its sources) and the found paths with the sums of their categories.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from db.models import Item, ItemRun, ItemSource, ItemState, Job, Result
from jobs.status import resolve_run
from worker import errors

CATEGORIES = (
    "processed",
    "duplicate",
    "failed",
    "unsupported",
    "cancelled",
    "unfinished",
    "not_in_run",
)
# The columns of a report row, in order (``as_row`` keys, the CSV header).
COLUMNS = ("path", "category", "item_id", "error_code", "detail", "found_in_item_id")
_BY_STATE = {
    ItemState.done: "processed",
    ItemState.failed: "failed",
    ItemState.unsupported: "unsupported",
    ItemState.cancelled: "cancelled",
    ItemState.pending: "unfinished",
    ItemState.queued: "unfinished",
    ItemState.running: "unfinished",
}


@dataclass(frozen=True)
class ReportRow:
    """One submitted path (or one archive member) and where it ended up."""

    path: str
    category: str
    item_id: int | None
    error_code: str | None = None
    detail: str = ""
    found_in_item_id: int | None = None  # the item it was found inside; None if submitted

    def as_row(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "category": self.category,
            "item_id": self.item_id,
            "error_code": self.error_code,
            "detail": self.detail,
            "found_in_item_id": self.found_in_item_id,
        }


@dataclass
class Report:
    """The reconciliation of one run of a job."""

    job_id: int
    run_number: int
    submitted: int  # the job's recorded file count
    rows: list[ReportRow] = field(default_factory=list)  # one per submitted path
    found: list[ReportRow] = field(default_factory=list)  # one per path found inside an item
    members: list[ReportRow] = field(default_factory=list)  # refused archive members
    quotes: int = 0  # quotes the run's answers gave (review tasks)
    quotes_unverified: int = 0  # of them, not on the page they cite

    def counts(self, rows: list[ReportRow] | None = None) -> dict[str, int]:
        counted = Counter(row.category for row in (self.rows if rows is None else rows))
        return {category: counted.get(category, 0) for category in CATEGORIES}

    def error_codes(self) -> dict[str, int]:
        coded = [row.error_code for row in self.rows + self.found if row.error_code]
        return dict(sorted(Counter(coded).items()))

    @property
    def balanced(self) -> bool:
        """Every submitted and every found path in exactly one category, and no path twice."""
        paths = [row.path for row in self.rows]
        found = [row.path for row in self.found]
        return (
            len(paths) == len(set(paths)) == self.submitted
            and sum(self.counts().values()) == self.submitted
            and len(found) == len(set(found))
        )

    def check_line(self) -> str:
        counts = self.counts()
        terms = " + ".join(f"{counts[category]} {category}" for category in CATEGORIES)
        verdict = "ok" if self.balanced else "MISMATCH"
        return (
            f"check: {self.submitted} submitted paths = {terms} = {sum(counts.values())}: {verdict}"
        )

    def quotes_line(self) -> str:
        """How the answers' quotes fared against their cited pages (grounding)."""
        return (
            f"quotes: {self.quotes} checked against their cited pages, "
            f"{self.quotes_unverified} unverified"
        )

    def found_line(self) -> str:
        """The same check for the files found inside items (absent when none were)."""
        counts = self.counts(self.found)
        terms = " + ".join(f"{counts[c]} {c}" for c in CATEGORIES if counts[c])
        unique = len({row.path for row in self.found}) == len(self.found)
        verdict = "ok" if unique else "MISMATCH"
        return f"check: {len(self.found)} found paths = {terms or '0'}: {verdict}"


def build_report(session: Session, job_id: int, run_number: int | None = None) -> Report:
    """Account for every path submitted to ``job_id`` in run ``run_number`` (default: latest)."""
    job = session.get(Job, job_id)
    if job is None:
        raise errors.NotFoundError(f"no job with id {job_id}")
    run = resolve_run(session, job_id, run_number)
    report = Report(job_id, run.number, job.file_count)
    sources = session.execute(
        select(ItemSource.path, ItemSource.container_item_id, ItemSource.role, Item, ItemRun)
        .join(Item, Item.id == ItemSource.item_id)
        .outerjoin(ItemRun, and_(ItemRun.item_id == Item.id, ItemRun.run_id == run.id))
        .where(ItemSource.job_id == job_id)
        .order_by(ItemSource.id)
    )
    for path, container_item_id, role, item, item_run in sources:
        row = dataclasses.replace(
            _row(path, item, item_run, role), found_in_item_id=container_item_id
        )
        (report.rows if container_item_id is None else report.found).append(row)
        if path == item.path:
            report.members.extend(_refused_member_rows(item))
    for verdict in session.scalars(select(Result.grounding).where(Result.run_id == run.id)):
        if verdict:
            report.quotes += verdict["quotes"]
            report.quotes_unverified += verdict["unverified"]
    return report


def _row(path: str, item: Item, item_run: ItemRun | None, role: str | None) -> ReportRow:
    if role == "member":
        # An instance file of a series or study item: it fares as its item does.
        unit = f"instance of item {item.id} ({item.path})"
        if item_run is None:
            return ReportRow(path, "not_in_run", item.id, detail=unit)
        category = _BY_STATE[item_run.state]
        detail = unit + (f": {item_run.error_message}" if item_run.error_message else "")
        return ReportRow(path, category, item.id, item_run.error_code, detail)
    if path != item.path:
        return ReportRow(
            path, "duplicate", item.id, detail=f"duplicate of item {item.id} ({item.path})"
        )
    if item_run is None:
        return ReportRow(path, "not_in_run", item.id)
    category = _BY_STATE[item_run.state]
    detail = item_run.error_message or ("" if category == "processed" else item_run.state.value)
    return ReportRow(path, category, item.id, item_run.error_code, detail)


def _refused_member_rows(item: Item) -> list[ReportRow]:
    """The members an archive refused or could not write: they never became items."""
    members = (item.doc_metadata or {}).get("members") or []
    return [
        ReportRow(
            f"{item.path}!{member.get('path')}",
            f"refused in archive {item.path}",
            item.id,
            member.get("error_code"),
            member.get("error") or member.get("state", ""),
            item.id,
        )
        for member in members
        if isinstance(member, dict) and member.get("state") != "extracted"
    ]
