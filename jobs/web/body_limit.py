"""Refuse request bodies past a limit as they arrive, before anything spools them.

Starlette reads a whole multipart body into temporary files before a route
sees it, so a size check in the route comes after the disk is already full.
This ASGI layer counts bytes on the way in: a declared ``Content-Length``
past the limit is refused at once, and a body that grows past it (chunked, or
lying about its length) is cut off and refused with the same 413 problem,
whatever the application was about to answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from worker import errors

Scope = dict[str, Any]
Message = dict[str, Any]


class _BodyTooLarge(Exception):
    """Raised into the application when the body passes its limit."""


class BodyLimit:
    """ASGI middleware: at most ``limit_for(path)`` bytes of body per HTTP request."""

    def __init__(self, app: Any, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send, limit)
            return
        received = 0
        tripped = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, tripped
            message: Message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    tripped = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            # Once tripped, whatever the application answers (a parse error) is dropped.
            nonlocal started
            if not tripped:
                started = started or message["type"] == "http.response.start"
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not tripped:
                raise
        if tripped and not started:
            await _refuse(scope, send, limit)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(scope: Scope, send: Any, limit: int) -> None:
    """A 413 problem document, as the application's own errors are."""
    code = errors.LimitExceededError.code
    body = json.dumps(
        {
            "type": f"urn:sieve:error:{code}",
            "title": code.replace("_", " "),
            "status": 413,
            "detail": f"the request body is larger than this server accepts ({limit} bytes)",
            "code": code,
            "instance": scope["path"],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
