"""The console's application: the API, the pages, their errors and their headers.

``create_app`` builds one FastAPI app bound to one database. Everything it
serves comes from the package (templates, CSS, a little JavaScript): no CDN,
no build step, nothing fetched from elsewhere; the interactive API docs
(which load from a CDN) are off, the schema stays at ``/openapi.json``.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from jobs import commands
from jobs.settings import Settings
from jobs.web import access, api, pages
from jobs.web.actions import Actions
from jobs.web.body_limit import BodyLimit
from jobs.web.exports import ExportRegistry
from jobs.web.throttle import KNOWN_FOR_S, LoginThrottle
from worker import errors

logger = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parent
PROBLEM_TYPE = "application/problem+json"

# By error class, most specific first (looked up along the MRO).
_STATUS: dict[type[errors.SieveError], int] = {
    errors.AuthenticationError: 401,
    errors.ForbiddenError: 403,
    errors.RateLimitedError: 429,
    errors.NotFoundError: 404,
    errors.UsageError: 400,
    errors.InputError: 400,
    errors.LimitExceededError: 413,
    errors.DatabaseUnavailableError: 503,
    errors.BrokerUnavailableError: 503,
    errors.ConfigurationError: 500,
}

SECURITY_HEADERS = {
    # Only this server's own scripts, styles, images and media; no framing.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; media-src 'self'; object-src 'none'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
# Sent only on responses that came over HTTPS (directly or through a trusted proxy).
HSTS = "max-age=31536000"
# Bodies other than uploads are forms and small JSON: nothing near this.
SMALL_BODY_MAX_BYTES = 1024 * 1024


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def status_for(exc: errors.SieveError) -> int:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def problem(
    status: int,
    code: str,
    detail: str,
    instance: str,
    extra_headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem document; ``code`` is Sieve's stable error code."""
    body = {
        "type": f"urn:sieve:error:{code}",
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "code": code,
        "instance": instance,
    }
    headers = dict(extra_headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="sieve"'
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def _wants_page(request: Request) -> bool:
    return not request.url.path.startswith("/api") and request.url.path != "/openapi.json"


def _error_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
) -> Response:
    if not _wants_page(request):
        return problem(status, code, detail, request.url.path, headers)
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "code": code, "detail": detail, "caller": None, "csrf_token": ""},
        status_code=status,
        headers=headers,
    )


def create_app(
    settings: Settings,
    session_factory: sessionmaker[Session] | None = None,
    run_in_process: Callable[[list[int]], None] | None = None,
) -> FastAPI:
    """The console bound to ``session_factory`` (default: the configured database).

    ``run_in_process``: how the embedded default runs what is submitted (default:
    one background thread with the configured model).
    """
    if session_factory is None:
        _engine, session_factory = commands.open_database(settings)
    app = FastAPI(
        title="Sieve",
        summary="Batch document and media review with a local model",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.session_factory = session_factory
    app.state.actions = Actions(settings, session_factory, run_in_process)
    app.state.exports = ExportRegistry(
        settings.data_dir / "exports",
        session_factory,
        max_running=settings.web.exports_at_once,
        keep_s=settings.web.export_keep_hours * 3600,
    )
    app.state.throttle = LoginThrottle(settings.web.login_attempts, settings.web.login_window_s)
    with session_factory() as session:
        app.state.throttle.replay(
            access.recent_sign_ins(session, max(settings.web.login_window_s, KNOWN_FOR_S))
        )
    app.state.repeats = access.RepeatFilter(settings.web.access_repeat_s)
    app.state.templates = pages.make_templates(PACKAGE / "templates")
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=PACKAGE / "static"), name="static")
    # Added before the header middleware so that its refusals carry the headers too.
    app.add_middleware(
        BodyLimit, limit_for=lambda path: _body_limit(path, settings.web.upload_request_max_bytes)
    )
    _install_handlers(app)
    return app


def _body_limit(path: str, upload_limit: int) -> int:
    """The most bytes a request to ``path`` may send: uploads get their own limit."""
    return upload_limit if path.endswith("/upload") else SMALL_BODY_MAX_BYTES


def _add_security_headers(request: Request, response: Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.url.scheme == "https":
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    if not request.url.path.startswith("/static"):
        response.headers.setdefault("Cache-Control", "no-store")


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.SieveError)
    async def sieve_error(request: Request, exc: errors.SieveError) -> Response:
        retry = getattr(exc, "retry_after_s", None)
        headers = {"Retry-After": str(int(retry) + 1)} if retry else None
        return _error_response(request, status_for(exc), exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        detail = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        return _error_response(request, 422, "invalid_request", detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error_response(request, exc.status_code, code, str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # Runs outside the header middleware (Starlette's outermost layer): add them here.
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        detail = "an internal error; the server's log has the detail"
        response = _error_response(request, 500, errors.InternalError.code, detail)
        _add_security_headers(request, response)
        return response

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        _add_security_headers(request, response)
        return response
