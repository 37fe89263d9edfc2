"""``sieve export JOB --format privilege-log``: the log of what was withheld as privileged.

One row per document a privilege run found privileged (with
``--confirmed-only``, only those a reviewer confirmed with ``sieve review
confirm``, itself an audit event): its Bates number when a production of the
job is given (``--production DIR``, read from its DAT), else a control
number; date; document type; author and recipients (from the e-mail's
headers, else from the review's answer); privilege type and basis; the
description the review wrote for the log (which names the subject, not the
advice); custodian; family; and whether it is redacted (Sieve withholds
whole documents: ``N``).

Styles, as courts and parties use them: ``standard`` (all of the above),
``metadata`` (objective fields only, no description), ``categorical`` (one
row per privilege type and document type, with the count, the date range
and the custodians).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db import audit
from db.models import AuditEvent, Item, Result, Run
from jobs import loadfiles
from worker import errors

STYLES = ("standard", "metadata", "categorical")
CONFIRMED = "review.confirmed"
BASIS_TEXT = {
    "attorney_client": "Attorney-client privilege",
    "work_product": "Attorney work product",
    "common_interest": "Common-interest privilege",
    "none": "None",
}
STANDARD_COLUMNS = (
    "CONTROL_NUMBER",
    "DATE",
    "DOC_TYPE",
    "AUTHOR",
    "TO",
    "CC",
    "BCC",
    "PRIVILEGE_TYPE",
    "BASIS",
    "DESCRIPTION",
    "CUSTODIAN",
    "FAMILY_ID",
    "REDACTED",
)
METADATA_COLUMNS = tuple(column for column in STANDARD_COLUMNS if column != "DESCRIPTION")
CATEGORICAL_COLUMNS = (
    "PRIVILEGE_TYPE",
    "BASIS",
    "DOC_TYPE",
    "DOCUMENTS",
    "DATE_FROM",
    "DATE_TO",
    "CUSTODIANS",
)


@dataclass(frozen=True)
class LogRequest:
    job_id: int
    style: str = "standard"
    privilege_run_number: int | None = None
    production_dir: Path | None = None
    confirmed_only: bool = False


def privilege_run(session: Session, job_id: int, number: int | None) -> Run:
    """The job's privilege run with that number, or its latest one."""
    query = select(Run).where(Run.job_id == job_id, Run.task_name == "privilege")
    if number is not None:
        query = query.where(Run.number == number)
    run = session.scalar(query.order_by(Run.number.desc()).limit(1))
    if run is None:
        raise errors.UsageError(
            f"job {job_id} has no privilege run (sieve rerun {job_id} --task privilege)"
        )
    return run


def log_rows(session: Session, request: LogRequest) -> tuple[list[str], list[dict[str, str]]]:
    """The columns and rows of the log."""
    if request.style not in STYLES:
        raise errors.UsageError(f"--style must be one of {', '.join(STYLES)}")
    run = privilege_run(session, request.job_id, request.privilege_run_number)
    confirmed = _confirmed_items(session, run) if request.confirmed_only else None
    bates = _bates_by_path(request.production_dir) if request.production_dir else {}
    rows = []
    for result, item in session.execute(
        select(Result, Item)
        .join(Item, Item.id == Result.item_id)
        .where(Result.run_id == run.id)
        .order_by(Item.family_id, Item.level, Item.id)
    ):
        answer = result.output or {}
        if answer.get("privileged") is not True:
            continue
        if confirmed is not None and item.id not in confirmed:
            continue
        rows.append(_standard_row(item, answer, bates))
    if request.style == "categorical":
        return list(CATEGORICAL_COLUMNS), _categories(rows)
    columns = STANDARD_COLUMNS if request.style == "standard" else METADATA_COLUMNS
    return list(columns), [{column: row[column] for column in columns} for row in rows]


def _standard_row(item: Item, answer: dict[str, Any], bates: dict[str, str]) -> dict[str, str]:
    email = (item.doc_metadata or {}).get("email") or {}
    basis = str(answer.get("basis") or "none")
    recipients = answer.get("recipients") or []
    return {
        "CONTROL_NUMBER": bates.get(item.path, f"SIEVE-{item.id:08d}"),
        "DATE": str(email.get("date") or answer.get("date") or ""),
        "DOC_TYPE": "E-mail" if email else _document_type(item.media_type),
        "AUTHOR": str(email.get("from") or answer.get("author") or ""),
        "TO": "; ".join(email.get("to") or recipients),
        "CC": "; ".join(email.get("cc") or []),
        "BCC": "; ".join(email.get("bcc") or []),
        "PRIVILEGE_TYPE": basis,
        "BASIS": BASIS_TEXT.get(basis, basis),
        "DESCRIPTION": str(answer.get("log_description") or ""),
        "CUSTODIAN": item.custodian or "",
        "FAMILY_ID": str(item.family_id or item.id),
        "REDACTED": "N",
    }


def _document_type(media_type: str) -> str:
    kinds = {
        "application/pdf": "PDF",
        "text/plain": "Text",
        "application/msword": "Word document",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (
            "Word document"
        ),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Spreadsheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation": (
            "Presentation"
        ),
    }
    return kinds.get(media_type, media_type)


def _categories(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    grouped: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        grouped[(row["PRIVILEGE_TYPE"], row["DOC_TYPE"])].append(row)
    categories = []
    for (kind, doc_type), members in sorted(grouped.items()):
        dates = sorted(row["DATE"][:10] for row in members if row["DATE"])
        categories.append(
            {
                "PRIVILEGE_TYPE": kind,
                "BASIS": BASIS_TEXT.get(kind, kind),
                "DOC_TYPE": doc_type,
                "DOCUMENTS": str(len(members)),
                "DATE_FROM": dates[0] if dates else "",
                "DATE_TO": dates[-1] if dates else "",
                "CUSTODIANS": "; ".join(
                    sorted({r["CUSTODIAN"] for r in members if r["CUSTODIAN"]})
                ),
            }
        )
    return categories


def _bates_by_path(production_dir: Path) -> dict[str, str]:
    """Each produced document's first Bates number, by its path, from the production's DATs."""
    found: dict[str, str] = {}
    dats = loadfiles.volume_dats(production_dir)
    if not dats:
        raise errors.UsageError(f"no production load file (DATA/*.dat) under {production_dir}")
    for dat in dats:
        _, rows = loadfiles.read_dat(dat.read_bytes())
        for row in rows:
            if row.get("FILE_PATH") and row.get("BEGBATES"):
                found[row["FILE_PATH"]] = row["BEGBATES"]
    return found


def confirm(
    session: Session, job_id: int, item_ids: list[int], run_number: int | None, actor: str
) -> int:
    """Record that a reviewer confirmed the privilege run's answers for ``item_ids``."""
    run = privilege_run(session, job_id, run_number)
    answers = {
        result.item_id: result
        for result in session.scalars(
            select(Result).where(Result.run_id == run.id, Result.item_id.in_(item_ids))
        )
    }
    missing = sorted(set(item_ids) - set(answers))
    if missing:
        raise errors.UsageError(
            f"run {run.number} of job {job_id} has no answer for item(s) "
            + ", ".join(map(str, missing))
        )
    drafts = [
        audit.EventDraft(
            CONFIRMED,
            actor,
            job_id,
            run.id,
            item_id,
            session.get(Item, item_id).sha256,  # type: ignore[union-attr]
            {
                "result_id": answers[item_id].id,
                "privileged": (answers[item_id].output or {}).get("privileged"),
            },
        )
        for item_id in item_ids
    ]
    audit.append_events(session, drafts)
    session.commit()
    return len(drafts)


def _confirmed_items(session: Session, run: Run) -> set[int]:
    return {
        item_id
        for item_id in session.scalars(
            select(AuditEvent.item_id).where(
                AuditEvent.run_id == run.id, AuditEvent.action == CONFIRMED
            )
        )
        if item_id is not None
    }


def write_log(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    """CSV or XLSX, by the file's suffix."""
    if path.suffix.lower() == ".xlsx":
        import openpyxl

        workbook = openpyxl.Workbook()
        sheet = workbook.active
        assert sheet is not None
        sheet.title = "Privilege log"
        sheet.append(columns)
        for row in rows:
            sheet.append([row[column] for column in columns])
        workbook.save(path)
        return
    if path.suffix.lower() != ".csv":
        raise errors.UsageError("--output must end in .csv or .xlsx")
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
