"""The REST API under ``/api``: jobs, runs, items, artifacts, audit, reports, exports, users.

Errors are ``application/problem+json`` (RFC 9457) with Sieve's error code
(see ``jobs.web.app``). Admins change things; reviewers read the jobs granted
to them; auditors read audit trails and reports, never document content.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import audit
from db.models import ItemRun, ReviewDecision, Run, StoredSegment, UserRole
from jobs import accounts, reconciliation
from jobs.submit import RunOptions
from jobs.web import access, views
from jobs.web.access import Caller, admin_only, anyone, content_readers, database
from jobs.web.actions import Actions, TaskRequest
from jobs.web.exports import CONTENT_FORMATS, FORMATS, ExportRegistry
from jobs.web.views import RowId
from worker import errors

router = APIRouter(prefix="/api")
Db = Annotated[Session, Depends(database)]
Admin = Annotated[Caller, Depends(admin_only)]
Reader = Annotated[Caller, Depends(content_readers)]
Anyone = Annotated[Caller, Depends(anyone)]
auditors = access.role(UserRole.admin, UserRole.auditor)
Auditor = Annotated[Caller, Depends(auditors)]


def _actions(request: Request) -> Actions:
    actions: Actions = request.app.state.actions
    return actions


def _exports(request: Request) -> ExportRegistry:
    registry: ExportRegistry = request.app.state.exports
    return registry


class TaskBody(BaseModel):
    task: str = "summarize"
    labels: list[str] = Field(default_factory=list)
    prompt: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    case: str | None = None

    def request(self) -> TaskRequest:
        return TaskRequest(self.task, tuple(self.labels), self.prompt, self.schema_, self.case)


class JobBody(TaskBody):
    paths: list[str] = Field(min_length=1)  # files or folders on the server's disk
    name: str | None = None
    priority: Literal["high", "normal", "low"] = "normal"
    custodian: str | None = None
    custodian_folders: bool = False
    dedup: Literal["global", "custodian", "none"] = "global"
    unit: Literal["series", "study", "instance"] = "series"
    deterministic: bool = False

    def options(self) -> RunOptions:
        return RunOptions(
            priority=self.priority,
            deterministic=self.deterministic,
            custodian=self.custodian,
            custodian_folders=self.custodian_folders,
            dedup=self.dedup,
            unit=self.unit,
        )


class RerunBody(BaseModel):
    run: RowId | None = None  # the run to re-run (default: the latest)
    failed_only: bool = False
    where: str | None = None
    task: TaskBody | None = None
    priority: Literal["high", "normal", "low"] = "normal"
    deterministic: bool = False
    model: str | None = None  # a GGUF path on the server, as ``sieve rerun --model``


class DecisionBody(BaseModel):
    decision: Literal["agree", "disagree", "note"]
    note: str = Field(default="", max_length=10_000)
    run: RowId | None = None  # the run number decided on (default: the item's latest)


class UserBody(BaseModel):
    name: str
    role: Literal["admin", "reviewer", "auditor"]
    password: str


class GrantBody(BaseModel):
    job_id: RowId


class ExportBody(BaseModel):
    format: Literal["jsonl", "csv", "custody"]


def _submission_json(submission: Any) -> dict[str, Any]:
    return {
        "job_id": submission.job_id,
        "run_id": submission.run_id,
        "file_count": submission.file_count,
        "item_count": submission.item_count,
        "duplicates": len(submission.duplicate_paths),
    }


# --- who am I -------------------------------------------------------------------------


@router.get("/me")
def me(found: Anyone) -> dict[str, Any]:
    return {
        "name": found.principal.name,
        "role": found.principal.role.value,
        "via": found.principal.via,
    }


# --- jobs -------------------------------------------------------------------------------


@router.get("/jobs")
def list_jobs(found: Anyone, session: Db, limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
    return {"jobs": views.job_list(session, found.principal, limit)}


@router.post("/jobs", status_code=201)
def create_job(body: JobBody, found: Admin, request: Request) -> dict[str, Any]:
    """Submit files or folders that are on the server's disk."""
    submission = _actions(request).submit_paths(
        [Path(path) for path in body.paths],
        body.request(),
        body.name,
        body.options(),
        found.principal.name,
    )
    return _submission_json(submission)


@router.post("/jobs/upload", status_code=201)
def upload_job(
    found: Admin,
    request: Request,
    files: Annotated[list[UploadFile], File()],
    task: Annotated[str, Form()] = "summarize",
    labels: Annotated[str, Form()] = "",
    prompt: Annotated[str | None, Form()] = None,
    name: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    """Submit uploaded files (multipart, field ``files``), streamed to the content store."""
    task_request = TaskRequest(task, tuple(labels.split(",")) if labels else (), prompt or None)
    submission = _actions(request).submit_uploads(
        [(upload.filename or "upload", upload.file) for upload in files],
        task_request,
        name or None,
        RunOptions(),
        found.principal.name,
    )
    return _submission_json(submission)


@router.get("/jobs/{job_id}")
def get_job(job_id: RowId, found: Anyone, session: Db) -> dict[str, Any]:
    access.require_job_view(session, found, job_id)
    return views.job_detail(session, job_id)


@router.post("/jobs/{job_id}/pause")
def pause_job(job_id: RowId, found: Admin, request: Request) -> dict[str, Any]:
    changed = _actions(request).set_paused(job_id, True, found.principal.name)
    return {"job_id": job_id, "paused": True, "changed": changed}


@router.post("/jobs/{job_id}/unpause")
def unpause_job(job_id: RowId, found: Admin, request: Request) -> dict[str, Any]:
    changed = _actions(request).set_paused(job_id, False, found.principal.name)
    return {"job_id": job_id, "paused": False, "changed": changed}


@router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: RowId, found: Admin, request: Request) -> dict[str, Any]:
    report = _actions(request).cancel(job_id, found.principal.name)
    return {
        "job_id": job_id,
        "runs_cancelled": report.runs_cancelled,
        "items_cancelled": report.items_cancelled,
        "items_running": report.items_running,
    }


# --- runs ---------------------------------------------------------------------------------


@router.get("/jobs/{job_id}/runs")
def list_runs(job_id: RowId, found: Anyone, session: Db) -> dict[str, Any]:
    access.require_job_view(session, found, job_id)
    return {"job_id": job_id, "runs": views.job_detail(session, job_id)["runs"]}


@router.post("/jobs/{job_id}/runs", status_code=201)
def create_run(job_id: RowId, body: RerunBody, found: Admin, request: Request) -> dict[str, Any]:
    """A re-run, with the options of ``sieve rerun``."""
    made = _actions(request).rerun(
        job_id,
        actor=found.principal.name,
        run_number=body.run,
        failed_only=body.failed_only,
        where=body.where,
        task=body.task.request() if body.task is not None else None,
        priority=body.priority,
        deterministic=body.deterministic,
        model_path=body.model,
    )
    return {
        "job_id": made.job_id,
        "run_id": made.run_id,
        "number": made.number,
        "items": len(made.item_run_ids),
    }


@router.get("/jobs/{job_id}/runs/{run_a}/diff/{run_b}")
def diff_runs(
    job_id: RowId, run_a: RowId, run_b: RowId, found: Reader, session: Db
) -> dict[str, Any]:
    """Two runs of a job compared item by item (run numbers, as ``sieve diff`` shows them)."""
    access.require_content(session, found, job_id)
    diff = views.run_diff_view(session, job_id, run_a, run_b)
    access.record_job_access(session, found, job_id, "run_diff", views.diff_access_details(diff))
    return diff


# --- items and artifacts --------------------------------------------------------------------


@router.get("/jobs/{job_id}/items")
def list_items(
    job_id: RowId,
    found: Reader,
    session: Db,
    request: Request,
    run: RowId | None = None,
    where: str | None = None,
    cursor: str | None = None,
    limit: int | None = Query(None, ge=1),
) -> dict[str, Any]:
    """A page of items; ``where`` takes ``sieve rerun --where`` expressions; follow ``next_cursor``."""
    access.require_content(session, found, job_id)
    page_size = min(limit or request.app.state.settings.web.page_size, 1000)
    return views.items_page(
        session, job_id, run_number=run, where=where, cursor=cursor, limit=page_size
    )


@router.get("/items/{item_id}")
def get_item(item_id: RowId, found: Reader, session: Db, request: Request) -> dict[str, Any]:
    """An item with its segments (text and artifact links), each run's state and result."""
    item = views.require_item(session, item_id)
    access.require_content(session, found, item.job_id)
    detail = views.item_detail(session, item)
    access.record_access(request, session, found, item, "item", {"via_api": True})
    return detail


@router.get("/items/{item_id}/identifiers")
def get_identifiers(item_id: RowId, found: Reader, session: Db, request: Request) -> dict[str, Any]:
    """The patient/person identifiers kept apart from the content (each read audited)."""
    item = views.require_item(session, item_id)
    access.require_content(session, found, item.job_id)
    identifiers = dict(item.identifiers or {})
    access.record_access(
        request, session, found, item, "identifiers", {"fields": sorted(identifiers)}
    )
    return {"item_id": item_id, "identifiers": identifiers}


@router.post("/items/{item_id}/decisions", status_code=201)
def decide(item_id: RowId, body: DecisionBody, found: Reader, session: Db) -> dict[str, Any]:
    """Record a reviewer's agree / disagree / note on the model's answer (audited)."""
    item = views.require_item(session, item_id)
    access.require_content(session, found, item.job_id)
    return record_decision(session, found, item, body.decision, body.note, body.run)


def record_decision(
    session: Session, found: Caller, item: Any, decision: str, note: str, run_number: int | None
) -> dict[str, Any]:
    """Store a decision and its audit event in one transaction."""
    # The run whose answer is decided on: the one named, else the latest that holds the item.
    query = (
        select(Run)
        .join(ItemRun, (ItemRun.run_id == Run.id) & (ItemRun.item_id == item.id))
        .where(Run.job_id == item.job_id)
    )
    if run_number is not None:
        query = query.where(Run.number == run_number)
    run = session.scalar(query.order_by(Run.number.desc()).limit(1))
    if run is None:
        which = f"run {run_number}" if run_number is not None else "any run"
        raise errors.NotFoundError(f"item {item.id} is not in {which} of job {item.job_id}")
    row = ReviewDecision(
        item_id=item.id,
        run_id=run.id,
        user_id=found.principal.user_id,
        decision=decision,
        note=note,
    )
    session.add(row)
    session.flush()
    # The note may quote the document, and auditors read the chain but no content: the
    # chain holds the note's hash (which a later change to the stored note would break).
    note_sha256 = hashlib.sha256(note.encode()).hexdigest() if note else None
    audit.append_event(
        session,
        audit.EventDraft(
            action="review.decided",
            actor=found.principal.name,
            job_id=item.job_id,
            run_id=run.id,
            item_id=item.id,
            item_sha256=item.sha256,
            details={
                "decision": decision,
                "decision_id": row.id,
                "note_sha256": note_sha256,
                "address": found.address,
            },
        ),
    )
    session.commit()
    return {"item_id": item.id, "run": run.number, "decision": decision}


@router.get("/artifacts/{segment_id}")
def get_artifact(segment_id: RowId, found: Reader, session: Db, request: Request) -> FileResponse:
    """A page image, frame or audio snippet; range requests are honoured (audio and video)."""
    segment = session.get(StoredSegment, segment_id)
    if segment is None or not segment.artifact_path:
        raise errors.NotFoundError(f"segment {segment_id} has no artifact")
    item = segment.item
    access.require_content(session, found, item.job_id)
    root = request.app.state.settings.artifacts_dir.resolve()
    path = (root / segment.artifact_path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise errors.NotFoundError(f"the artifact of segment {segment_id} is missing on disk")
    access.record_access(request, session, found, item, "artifact", {"segment": segment.label})
    media_type = views.artifact_type(segment.artifact_path)
    return FileResponse(path, media_type=media_type, headers=file_headers(media_type))


@router.get("/items/{item_id}/original")
def get_original(item_id: RowId, found: Reader, session: Db, request: Request) -> FileResponse:
    """The item's original file from the content store (what the audio and video players play)."""
    item = views.require_item(session, item_id)
    access.require_content(session, found, item.job_id)
    root = request.app.state.settings.objects_dir.resolve()
    path = (root / item.stored_path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise errors.NotFoundError(f"the original of item {item_id} is missing from the store")
    access.record_access(request, session, found, item, "original")
    return FileResponse(path, media_type=item.media_type, headers=file_headers(item.media_type))


INLINE_TYPES = ("image/", "audio/", "video/")


def file_headers(media_type: str) -> dict[str, str]:
    """A document's bytes never run as a page of this origin: sandboxed, and downloaded
    unless the browser only shows it (an image, a recording)."""
    headers = {"Cache-Control": "private, no-store", "Content-Security-Policy": "sandbox"}
    if not media_type.startswith(INLINE_TYPES):
        headers["Content-Disposition"] = "attachment"
    return headers


# --- audit and reports -----------------------------------------------------------------------


@router.get("/jobs/{job_id}/audit")
def job_audit(job_id: RowId, found: Auditor, session: Db) -> dict[str, Any]:
    """The job's hash chain, whether it verifies, and every access event in it."""
    return views.audit_view(session, job_id)


@router.get("/jobs/{job_id}/audit/verify")
def verify_audit(job_id: RowId, found: Auditor, session: Db) -> dict[str, Any]:
    view = views.audit_view(session, job_id, limit=0)
    return {key: view[key] for key in ("job_id", "chain", "event_count", "verified", "break")}


@router.get("/jobs/{job_id}/report")
def job_report(
    job_id: RowId, found: Anyone, session: Db, run: RowId | None = None
) -> dict[str, Any]:
    """The reconciliation: every submitted path accounted for."""
    access.require_job_view(session, found, job_id)
    views.require_job(session, job_id)
    report = reconciliation.build_report(session, job_id, run)
    return {
        "job_id": job_id,
        "run": report.run_number,
        "submitted": report.submitted,
        "counts": report.counts(),
        "error_codes": report.error_codes(),
        "balanced": report.balanced,
        "check": report.check_line(),
        "rows": [row.as_row() for row in report.rows],
        "found": [row.as_row() for row in report.found],
    }


# --- exports -------------------------------------------------------------------------------------


@router.post("/jobs/{job_id}/exports", status_code=202)
def start_export(
    job_id: RowId, body: ExportBody, found: Anyone, session: Db, request: Request
) -> dict[str, Any]:
    """Start writing results (jsonl, csv) or the custody report; poll, then download."""
    _check_export_access(session, found, job_id, body.format)
    views.require_job(session, job_id)
    return _exports(request).start(job_id, body.format, found.principal.name).as_json()


def _check_export_access(session: Session, found: Caller, job_id: int, export_format: str) -> None:
    if export_format in CONTENT_FORMATS:
        access.require_content(session, found, job_id)
    elif found.principal.role is UserRole.reviewer:
        raise errors.ForbiddenError("the custody report is for admins and auditors")


@router.get("/exports/{export_id}")
def watch_export(export_id: RowId, found: Anyone, session: Db, request: Request) -> dict[str, Any]:
    export = _exports(request).get(export_id)
    _check_export_access(session, found, export.job_id, export.format)
    return export.as_json()


@router.get("/exports/{export_id}/download")
def download_export(export_id: RowId, found: Anyone, session: Db, request: Request) -> FileResponse:
    export = _exports(request).get(export_id)
    _check_export_access(session, found, export.job_id, export.format)
    if export.state != "done" or export.path is None:
        hint = "start another" if export.state == "expired" else "watch it until it is done"
        raise errors.UsageError(f"export {export_id} is {export.state}: {hint}")
    details = {"format": export.format, "rows": export.rows, "export": export.id}
    if export.format in CONTENT_FORMATS:
        access.record_job_access(session, found, export.job_id, "export", details)
    else:
        audit.append_event(
            session,
            audit.EventDraft(
                action="export.downloaded",
                actor=found.principal.name,
                job_id=export.job_id,
                details={**details, "address": found.address},
            ),
        )
        session.commit()
    return FileResponse(
        export.path, media_type=FORMATS[export.format][0], filename=export.path.name
    )


# --- users ---------------------------------------------------------------------------------------


@router.get("/users")
def list_users(found: Admin, session: Db) -> dict[str, Any]:
    return {"users": views.users_view(session)}


@router.post("/users", status_code=201)
def add_user(body: UserBody, found: Admin, session: Db) -> dict[str, Any]:
    accounts.add_user(session, body.name, body.role, body.password, found.principal.name)
    session.commit()
    return {"name": body.name, "role": body.role}


@router.post("/users/{name}/disable")
def disable_user(name: str, found: Admin, session: Db) -> dict[str, Any]:
    changed = accounts.set_disabled(session, name, True, found.principal.name)
    session.commit()
    return {"name": name, "disabled": True, "changed": changed}


@router.post("/users/{name}/enable")
def enable_user(name: str, found: Admin, session: Db) -> dict[str, Any]:
    changed = accounts.set_disabled(session, name, False, found.principal.name)
    session.commit()
    return {"name": name, "disabled": False, "changed": changed}


@router.delete("/users/{name}/grants/{job_id}")
def revoke_grant(name: str, job_id: RowId, found: Admin, session: Db) -> dict[str, Any]:
    removed = accounts.revoke_grant(session, name, job_id, found.principal.name)
    session.commit()
    return {"name": name, "job_id": job_id, "removed": removed}


@router.post("/tokens/{token_id}/revoke")
def revoke_token(token_id: RowId, found: Admin, session: Db) -> dict[str, Any]:
    revoked = accounts.revoke_token(session, token_id, found.principal.name)
    session.commit()
    return {"token_id": token_id, "revoked": revoked}


@router.post("/users/{name}/grants", status_code=201)
def grant_job(name: str, body: GrantBody, found: Admin, session: Db) -> dict[str, Any]:
    views.require_job(session, body.job_id)
    added = accounts.grant_job(session, name, body.job_id, found.principal.name)
    session.commit()
    return {"name": name, "job_id": body.job_id, "added": added}
