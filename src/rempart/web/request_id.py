"""A request id on every answer, every problem and every log line of the request.

The caller may send its own ``X-Request-ID`` (practice software that logs it beside its own
records, a load balancer that set one): it is kept when it is well-formed — 8 to 64 characters of
letters, digits, ``.``, ``_`` and ``-`` — and replaced by a fresh uuid4 otherwise, so that nothing
a caller writes there reaches a log line or a header unchecked (no spaces, no newlines, no
personal data of any length worth the name).

A plain ASGI middleware (no per-request task), outermost but for the proxy headers: the id is set
before anything inside logs, and the answer carries it whatever answered (a route, a problem, the
503 of ``RequestCapacity``). Log lines get it through structlog's context variables
(``rempart.logs`` merges them); problem bodies through :func:`current_request_id`.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
_HEADER_KEY = HEADER.lower().encode()
_WELL_FORMED = re.compile(rb"[A-Za-z0-9._-]{8,64}")
_INSTANCE_PREFIX = "urn:rempart:request:"

_current: ContextVar[str | None] = ContextVar("rempart_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being answered, or None outside a request (CLI, background work)."""
    return _current.get()


def request_instance() -> str | None:
    """The id as a problem's ``instance`` (RFC 9457, section 3.1.5): a URI naming this occurrence."""
    request_id = _current.get()
    return _INSTANCE_PREFIX + request_id if request_id else None


def accepted_or_new(incoming: bytes | None) -> str:
    """The caller's id when it is well-formed, else a fresh uuid4."""
    if incoming is not None and _WELL_FORMED.fullmatch(incoming):
        return incoming.decode("ascii")
    return str(uuid.uuid4())


class RequestId:
    """ASGI middleware: reads or makes the id, binds it for the request, sends it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((value for name, value in scope.get("headers", ()) if name == _HEADER_KEY), None)
        request_id = accepted_or_new(incoming)
        header = (_HEADER_KEY, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() != _HEADER_KEY]
                message["headers"] = [*headers, header]
            await send(message)

        token = _current.set(request_id)
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        await self.app(scope, receive, send_with_id)
        # Restored only once the answer went out: an exception goes on to the app's outermost
        # handler (Starlette's ServerErrorMiddleware, outside every middleware), whose 500 problem
        # and log line still name the request. Each request runs in a task of its own, whose
        # context dies with it, so nothing reaches the next request either way.
        structlog.contextvars.reset_contextvars(**bound)
        _current.reset(token)


def stamp_problem(body: dict[str, Any], headers: dict[str, str] | None) -> tuple[dict[str, Any], dict[str, str] | None]:
    """A problem's headers with ``X-Request-ID`` (the 500 answer is sent from outside the
    middleware, by the handler itself); outside a request, unchanged. The body is left as it is:
    the refusals that must not tell one case from another (every kind of miss, a throttled login
    for a known or an unknown account) answer the same bytes, which a per-request ``instance``
    would break; the id is in the header and in every log line of the request."""
    instance = request_instance()
    if instance is None:
        return body, headers
    return body, {**(headers or {}), HEADER: instance[len(_INSTANCE_PREFIX) :]}
