"""Who is asking, what their role lets them do, and the access log of what they read.

A request is authenticated by a bearer token (the API's clients) or by the
session cookie (the pages, and their scripts). A request that changes
something with a cookie must also carry the session's CSRF token, in the
``X-CSRF-Token`` header or the form's ``csrf_token`` field; a bearer token
is not sent by browsers on their own, so it needs none.

Every read of an item's content, of an artifact or of identifiers is an audit
event in the job's hash chain, committed before the content is sent: there is
no read without its record. A player fetching a recording range by range
makes one read of many requests: a request for a later range (``Range:
bytes=N-`` with N > 0) of a file the same caller opened within
``web.access_repeat_s`` continues that read and is not written again. Every
request that starts a read (no Range header, or one from byte 0) is.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from db import audit
from db.models import AuditEvent, Item, UserRole, WebSession
from jobs import access_log, accounts
from worker import errors

SESSION_COOKIE = "sieve_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Caller:
    """The authenticated principal of a request, and its browser session if it has one."""

    principal: accounts.Principal
    web_session_id: int | None
    csrf_token: str | None
    address: str


def database(request: Request) -> Iterator[Session]:
    """One database session per request, closed after the response."""
    with request.app.state.session_factory() as session:
        yield session


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _caller(request: Request, session: Session) -> Caller | None:
    address = client_address(request)
    token = _bearer_token(request)
    if token is not None:
        user = accounts.user_for_token(session, token)
        if user is None:
            return None
        return Caller(accounts.principal_of(user, "token"), None, None, address)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    web_session: WebSession | None = accounts.session_for_cookie(session, cookie)
    if web_session is None:
        return None
    return Caller(
        accounts.principal_of(web_session.user, "session"),
        web_session.id,
        web_session.csrf_token,
        address,
    )


async def caller(request: Request, session: Annotated[Session, Depends(database)]) -> Caller:
    """The authenticated caller; a cookie request that changes something must pass CSRF."""
    found = await run_in_threadpool(_caller, request, session)  # database reads off the loop
    if found is None:
        raise errors.AuthenticationError()
    if found.web_session_id is not None and request.method not in SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER)
        if given is None and _is_form(request):
            given = str((await request.form()).get(CSRF_FIELD) or "")
        if not given or not accounts.same_secret(given, found.csrf_token or ""):
            raise errors.CsrfError()
    request.state.caller = found
    return found


def _is_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


def role(*allowed: UserRole) -> Callable[..., Caller]:
    """A dependency that admits only these roles (403 for the others)."""

    def check(found: Annotated[Caller, Depends(caller)]) -> Caller:
        if found.principal.role not in allowed:
            names = " or ".join(member.value for member in allowed)
            raise errors.ForbiddenError(f"this needs the {names} role")
        return found

    return check


admin_only = role(UserRole.admin)
content_readers = role(UserRole.admin, UserRole.reviewer)
anyone = role(UserRole.admin, UserRole.reviewer, UserRole.auditor)


def require_content(session: Session, found: Caller, job_id: int) -> None:
    """Raise 403 unless the caller may read this job's documents."""
    if not accounts.may_read_content(session, found.principal, job_id):
        raise errors.ForbiddenError(f"you have no grant to read job {job_id}'s documents")


def require_job_view(session: Session, found: Caller, job_id: int) -> None:
    """Raise 403 unless the caller may see this job's counts and reports."""
    if not accounts.may_see_job(session, found.principal, job_id):
        raise errors.ForbiddenError(f"you have no grant for job {job_id}")


class RepeatFilter:
    """The reads logged recently, so a range that continues one within ``window_s`` is known."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._logged: dict[tuple[Any, ...], float] = {}
        self._lock = threading.Lock()

    def opened_recently(self, key: tuple[Any, ...]) -> bool:
        """True when a read of ``key`` was logged within the window (nothing is changed)."""
        with self._lock:
            logged = self._logged.get(key)
            return logged is not None and time.monotonic() - logged < self.window_s

    def remember(self, key: tuple[Any, ...]) -> None:
        """Note that a read of ``key`` was just logged (call it once its event is committed)."""
        now = time.monotonic()
        with self._lock:
            if len(self._logged) > 10_000:  # forget what is past the window
                self._logged = {k: t for k, t in self._logged.items() if now - t < self.window_s}
            self._logged[key] = now


def record_access(
    request: Request,
    session: Session,
    found: Caller,
    item: Item,
    what: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Write and commit the access event for a read of ``item`` (before it is sent).

    A later range of a file (artifact or original) that the same caller
    opened within the repeat window continues that read and is not written
    twice; every other request is.
    """
    if what not in ("artifact", "original"):
        _append_access(session, found, item.job_id, item, what, details)
        return
    repeats: RepeatFilter = request.app.state.repeats
    key = (found.principal.name, found.principal.via, item.id, what, str(details or ""))
    if _continues_a_read(request) and repeats.opened_recently(key):
        return
    _append_access(session, found, item.job_id, item, what, details)
    # Only a read whose event is committed opens a window: continuations never extend it.
    repeats.remember(key)


def _continues_a_read(request: Request) -> bool:
    """True for a ``Range`` request that starts past byte 0 (a player's follow-up fetch)."""
    unit, _, ranges = request.headers.get("range", "").partition("=")
    if unit.strip().lower() != "bytes" or not ranges.strip():
        return False
    first_start = ranges.split(",")[0].split("-")[0].strip()
    # "-500" (the last 500 bytes) has no start: a player asks it when it probes the end.
    return first_start == "" or (first_start.isdigit() and int(first_start) > 0)


def record_job_access(
    session: Session, found: Caller, job_id: int, what: str, details: dict[str, Any]
) -> None:
    """The access event for a read of many items' content at once (a run diff, an export)."""
    _append_access(session, found, job_id, None, what, details)


def _append_access(
    session: Session,
    found: Caller,
    job_id: int,
    item: Item | None,
    what: str,
    details: dict[str, Any] | None,
) -> None:
    audit.append_event(
        session,
        access_log.content_viewed(
            found.principal.name,
            job_id,
            what,
            {
                "role": found.principal.role.value,
                "via": found.principal.via,
                "address": found.address,
                **(details or {}),
            },
            item_id=item.id if item is not None else None,
            item_sha256=item.sha256 if item is not None else None,
        ),
    )
    session.commit()


def record_sign_in(session: Session, name: str, address: str, succeeded: bool, why: str) -> None:
    """Sign-ins, failed or not, go into the global chain."""
    audit.append_event(
        session,
        audit.EventDraft(
            action="login.succeeded" if succeeded else "login.failed",
            actor=name[:64] or "(empty)",
            details={"address": address, "reason": why},
        ),
    )
    session.commit()


def recent_sign_ins(session: Session, window_s: float) -> list[tuple[float, str, str, bool]]:
    """The last window's password sign-ins from the chain, for the throttle to replay.

    A refusal while throttled is not a password tried, so it is not replayed.
    """
    now = dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(seconds=window_s)
    rows = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action.in_(("login.failed", "login.succeeded")))
        .where(AuditEvent.occurred_at >= since)
        .order_by(AuditEvent.id)
    )
    sign_ins = []
    for event in rows:
        details = event.details or {}
        if details.get("reason") == "rate limited":
            continue
        sign_ins.append(
            (
                (now - event.occurred_at).total_seconds(),
                event.actor,
                str(details.get("address", "")),
                event.action == "login.succeeded",
            )
        )
    return sign_ins
