"""The console's pages: server-rendered HTML, one route per page, forms with CSRF tokens.

Pages read through ``jobs.web.views`` (as the API does) and change things
through ``jobs.web.actions``; the access log is written here for what a page
shows. The sign-in form, having no session yet, is protected by a
double-submit cookie instead of the session's token.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote, urlencode

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from db.models import UserRole
from jobs import accounts, reconciliation
from jobs.submit import RunOptions
from jobs.web import access, views
from jobs.web.access import Caller, database
from jobs.web.actions import Actions, TaskRequest
from jobs.web.api import record_decision
from jobs.web.views import RowId
from worker import errors

router = APIRouter(include_in_schema=False)
Db = Annotated[Session, Depends(database)]
Signed = Annotated[Caller, Depends(access.anyone)]
Admin = Annotated[Caller, Depends(access.admin_only)]
Reader = Annotated[Caller, Depends(access.content_readers)]
Auditor = Annotated[Caller, Depends(access.role(UserRole.admin, UserRole.auditor))]
LOGIN_CSRF_COOKIE = "sieve_login_csrf"
NOTICE_COOKIE = "sieve_notice"
# The reconciliation outcomes a job page lists path by path: what someone must look at.
ATTENTION = frozenset({"failed", "unsupported", "cancelled", "unfinished", "not_in_run"})
REPORT_ROWS_SHOWN = 200


def make_templates(directory: Path) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(directory))
    templates.env.filters["as_json"] = lambda value: json.dumps(
        value, indent=2, ensure_ascii=False, sort_keys=True, default=str
    )
    templates.env.globals["query"] = lambda **params: urlencode(
        {key: value for key, value in params.items() if value is not None}
    )
    return templates


def _render(
    request: Request, name: str, found: Caller | None, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    notice = request.cookies.get(NOTICE_COOKIE)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "caller": found,
            "csrf_token": found.csrf_token if found else "",
            "notice": unquote(notice) if notice else None,
            **context,
        },
        status_code=status,
    )
    if notice:
        response.delete_cookie(NOTICE_COOKIE, path="/")
    return response


def _actions(request: Request) -> Actions:
    actions: Actions = request.app.state.actions
    return actions


def _back(request: Request, path: str, notice: str | None = None) -> RedirectResponse:
    """Back to ``path`` after a change, with ``notice`` shown once on the page it lands on.

    The notice travels in a short-lived cookie, not in the address: a link from
    elsewhere cannot make the console display words of its author's choosing.
    """
    response = RedirectResponse(path, status_code=303)
    if notice:
        _set_cookie(request, response, NOTICE_COOKIE, quote(notice[:500]), max_age=60)
    return response


def _safe_next(target: str | None) -> str:
    """Only a path on this server: ``next`` must never send a user elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


# --- signing in and out ------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = _render(request, "login.html", None, {"login_csrf": token, "next": _safe_next(next)})
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.post("/login")
def login(
    request: Request,
    session: Db,
    name: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not accounts.same_secret(csrf_token, expected):
        raise errors.CsrfError()
    address = access.client_address(request)
    throttle = request.app.state.throttle
    wait = throttle.retry_after(name, address)
    if wait > 0:
        access.record_sign_in(session, name, address, False, "rate limited")
        raise errors.RateLimitedError(
            # The same words whichever limit held it (this name, this address, both):
            # the refusal tells a guesser nothing more than to wait.
            f"too many failed sign-ins; try again in {wait:.0f} s",
            wait,
        )
    user = accounts.verify_password(session, name, password)
    if user is None:
        throttle.failed(name, address)
        access.record_sign_in(session, name, address, False, "wrong name or password")
        token = secrets.token_urlsafe(32)
        response = _render(
            request,
            "login.html",
            None,
            {"login_csrf": token, "next": _safe_next(next), "error": "Wrong name or password."},
            status=401,
        )
        _set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
        return response
    throttle.succeeded(name, address)
    lifetime = dt.timedelta(hours=request.app.state.settings.web.session_hours)
    cookie, _web_session = accounts.open_session(session, user, address, lifetime)
    access.record_sign_in(session, name, address, True, "password")
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_cookie(request, response, access.SESSION_COOKIE, cookie, int(lifetime.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        # Secure whenever the page came over HTTPS: served with TLS, or behind a trusted
        # proxy that said so (X-Forwarded-Proto, believed only from web.trusted_proxies).
        secure=request.url.scheme == "https",
    )


@router.post("/logout")
def logout(request: Request, found: Signed, session: Db) -> Response:
    cookie = request.cookies.get(access.SESSION_COOKIE, "")
    web_session = accounts.session_for_cookie(session, cookie) if cookie else None
    if web_session is not None:
        web_session.ended_at = dt.datetime.now(dt.UTC)
        session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(access.SESSION_COOKIE, path="/")
    return response


# --- jobs ------------------------------------------------------------------------------------


@router.get("/")
def job_list(request: Request, found: Signed, session: Db) -> HTMLResponse:
    jobs = views.job_list(session, found.principal, 200)
    return _render(request, "jobs.html", found, {"jobs": jobs, "title": "Jobs"})


@router.get("/submit")
def submit_page(request: Request, found: Admin) -> HTMLResponse:
    return _render(request, "submit.html", found, {"title": "Submit a job"})


def _task_from_form(task: str, labels: str, prompt: str) -> TaskRequest:
    return TaskRequest(task, tuple(labels.split(",")) if labels.strip() else (), prompt or None)


@router.post("/submit")
def submit_paths(
    request: Request,
    found: Admin,
    paths: Annotated[str, Form()],
    task: Annotated[str, Form()] = "summarize",
    labels: Annotated[str, Form()] = "",
    prompt: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
) -> Response:
    chosen = [Path(line.strip()) for line in paths.splitlines() if line.strip()]
    if not chosen:
        raise errors.UsageError("name at least one file or folder on the server")
    submission = _actions(request).submit_paths(
        chosen,
        _task_from_form(task, labels, prompt),
        name or None,
        RunOptions(),
        found.principal.name,
    )
    return _back(request, f"/jobs/{submission.job_id}", f"queued {submission.item_count} item(s)")


@router.post("/submit/upload")
def submit_upload(
    request: Request,
    found: Admin,
    files: Annotated[list[UploadFile], File()],
    task: Annotated[str, Form()] = "summarize",
    labels: Annotated[str, Form()] = "",
    prompt: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
) -> Response:
    submission = _actions(request).submit_uploads(
        [(upload.filename or "upload", upload.file) for upload in files if upload.filename],
        _task_from_form(task, labels, prompt),
        name or None,
        RunOptions(),
        found.principal.name,
    )
    return _back(request, f"/jobs/{submission.job_id}", f"queued {submission.item_count} item(s)")


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: RowId, found: Signed, session: Db) -> HTMLResponse:
    access.require_job_view(session, found, job_id)
    job = views.job_detail(session, job_id)
    report = reconciliation.build_report(session, job_id)
    attention = [row for row in report.rows + report.found if row.category in ATTENTION]
    reads_content = accounts.may_read_content(session, found.principal, job_id)
    items = views.items_page(session, job_id, limit=50) if reads_content else None
    return _render(
        request,
        "job.html",
        found,
        {
            "title": f"Job {job_id}",
            "job": job,
            "report": report,
            "attention_rows": attention[:REPORT_ROWS_SHOWN],
            "attention_more": len(attention) > REPORT_ROWS_SHOWN,
            "items": items,
            "reads_content": reads_content,
        },
    )


@router.get("/jobs/{job_id}/items")
def items_page(
    request: Request,
    job_id: RowId,
    found: Reader,
    session: Db,
    run: RowId | None = None,
    where: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    access.require_content(session, found, job_id)
    page = views.items_page(
        session, job_id, run_number=run, where=where or None, cursor=cursor, limit=100
    )
    return _render(
        request,
        "items.html",
        found,
        {"title": f"Items of job {job_id}", "page": page, "where": where or "", "job_id": job_id},
    )


@router.post("/jobs/{job_id}/rerun")
def rerun(
    request: Request,
    job_id: RowId,
    found: Admin,
    failed_only: Annotated[bool, Form()] = False,
    where: Annotated[str, Form()] = "",
) -> Response:
    made = _actions(request).rerun(
        job_id, actor=found.principal.name, failed_only=failed_only, where=where or None
    )
    return _back(
        request,
        f"/jobs/{job_id}",
        f"run {made.number} queued with {len(made.item_run_ids)} item(s)",
    )


@router.post("/jobs/{job_id}/pause")
def pause(request: Request, job_id: RowId, found: Admin) -> Response:
    _actions(request).set_paused(job_id, True, found.principal.name)
    return _back(request, f"/jobs/{job_id}", "paused")


@router.post("/jobs/{job_id}/unpause")
def unpause(request: Request, job_id: RowId, found: Admin) -> Response:
    _actions(request).set_paused(job_id, False, found.principal.name)
    return _back(request, f"/jobs/{job_id}", "unpaused")


@router.post("/jobs/{job_id}/cancel")
def cancel(request: Request, job_id: RowId, found: Admin) -> Response:
    report = _actions(request).cancel(job_id, found.principal.name)
    return _back(request, f"/jobs/{job_id}", f"cancelled {report.items_cancelled} item(s)")


@router.get("/jobs/{job_id}/diff")
def diff_page(
    request: Request, job_id: RowId, found: Reader, session: Db, a: RowId = 1, b: RowId = 2
) -> HTMLResponse:
    access.require_content(session, found, job_id)
    diff = views.run_diff_view(session, job_id, a, b)
    access.record_job_access(session, found, job_id, "run_diff", views.diff_access_details(diff))
    return _render(
        request, "diff.html", found, {"title": f"Job {job_id}: run {a} against {b}", "diff": diff}
    )


@router.get("/jobs/{job_id}/audit")
def audit_page(request: Request, job_id: RowId, found: Auditor, session: Db) -> HTMLResponse:
    view = views.audit_view(session, job_id)
    access_events = views.access_events(session, job_id)
    return _render(
        request,
        "audit.html",
        found,
        {"title": f"Audit of job {job_id}", "audit": view, "access_events": access_events},
    )


# --- one item --------------------------------------------------------------------------------


@router.get("/items/{item_id}")
def item_page(request: Request, item_id: RowId, found: Reader, session: Db) -> HTMLResponse:
    item = views.require_item(session, item_id)
    access.require_content(session, found, item.job_id)
    detail = views.item_detail(session, item)
    access.record_access(request, session, found, item, "item", {"page": True})
    return _render(
        request,
        "item.html",
        found,
        {"title": views.item_title(detail["path"]), "item": detail},
    )


@router.post("/items/{item_id}/decision")
def decide(
    request: Request,
    item_id: RowId,
    found: Reader,
    session: Db,
    decision: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
) -> Response:
    if decision not in ("agree", "disagree", "note"):
        raise errors.UsageError("a decision is agree, disagree or note")
    item = views.require_item(session, item_id)
    access.require_content(session, found, item.job_id)
    record_decision(session, found, item, decision, note[:10_000], None)
    return _back(request, f"/items/{item_id}", f"decision recorded: {decision}")


# --- users -----------------------------------------------------------------------------------


@router.get("/users")
def users_page(request: Request, found: Admin, session: Db) -> HTMLResponse:
    return _render(
        request,
        "users.html",
        found,
        {"title": "Users", "users": views.users_view(session)},
    )


@router.post("/users")
def add_user(
    request: Request,
    found: Admin,
    session: Db,
    name: Annotated[str, Form()],
    role: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    accounts.add_user(session, name, role, password, found.principal.name)
    session.commit()
    return _back(request, "/users", f"user {name} created")


@router.post("/users/{name}/disable")
def disable_user(request: Request, name: str, found: Admin, session: Db) -> Response:
    accounts.set_disabled(session, name, True, found.principal.name)
    session.commit()
    return _back(request, "/users", f"user {name} disabled")


@router.post("/users/{name}/enable")
def enable_user(request: Request, name: str, found: Admin, session: Db) -> Response:
    accounts.set_disabled(session, name, False, found.principal.name)
    session.commit()
    return _back(request, "/users", f"user {name} enabled")


@router.post("/users/{name}/password")
def reset_password(
    request: Request,
    name: str,
    found: Admin,
    session: Db,
    password: Annotated[str, Form()],
) -> Response:
    accounts.reset_password(session, name, password, found.principal.name)
    session.commit()
    return _back(request, "/users", f"{name}'s password was reset and their sessions ended")


@router.post("/users/{name}/revoke")
def revoke_grant(
    request: Request, name: str, found: Admin, session: Db, job_id: Annotated[RowId, Form()]
) -> Response:
    accounts.revoke_grant(session, name, job_id, found.principal.name)
    session.commit()
    return _back(request, "/users", f"{name} may no longer read job {job_id}")


@router.post("/users/{name}/grant")
def grant(
    request: Request, name: str, found: Admin, session: Db, job_id: Annotated[RowId, Form()]
) -> Response:
    views.require_job(session, job_id)
    accounts.grant_job(session, name, job_id, found.principal.name)
    session.commit()
    return _back(request, "/users", f"{name} may read job {job_id}")
