"""``OPTIONS`` and the ``Allow`` header on the API, as a plain ASGI middleware (plumbing: it reads the
app's routes, never a domain).

Starlette's router answers a method it does not serve with the methods of the *first* route whose
path matched, and ``OPTIONS`` with that 405. A path served by several routes (``GET`` and ``POST``
``/api/v1/me/passkeys``) so advertises only one of them. Here, on the API's paths:

- ``OPTIONS`` on a path some route serves answers 204 with ``Allow``: every method the app's routes
  serve on that path, and ``OPTIONS`` itself (RFC 9110, section 9.3.7). It needs no credentials: the
  same facts are public in ``/openapi.json``.
- ``OPTIONS`` on a path no route serves goes on to the app, which answers its own 404 problem+json.
- a 405 from the app gets the same, complete ``Allow``.

Mount it inside the security headers (``app.add_middleware`` before ``SecurityHeaders``), so that
its answers carry them too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from fastapi.routing import iter_route_contexts
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_PREFIXES = ("/api/",)
# The order methods are listed in (RFC 9110's order), whatever order the routes were declared in.
_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _listed(methods: Iterable[str]) -> str:
    return ", ".join(sorted(set(methods), key=lambda m: (_ORDER.index(m) if m in _ORDER else len(_ORDER), m)))


def allowed_methods(routes: Iterable[object], path: str) -> set[str]:
    """Every method a route of ``routes`` (nested routers included) serves on ``path``, the path as
    the router reads it (decoded). Empty when no route serves the path."""
    found: set[str] = set()
    for context in iter_route_contexts(list(routes)):  # type: ignore[arg-type]
        route_path, methods = context.path, context.methods
        if route_path is None or not methods:
            continue  # a mount or a websocket: no methods of its own to list
        regex: re.Pattern[str] = compile_path(route_path)[0]
        if regex.match(path):
            found |= {m.upper() for m in methods}
    return found


class AllowedMethods:
    def __init__(self, app: ASGIApp, *, prefixes: tuple[str, ...] = API_PREFIXES) -> None:
        self.app = app
        self.prefixes = prefixes

    def _route_path(self, scope: Scope) -> str:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        return path[len(root) :] if root and path.startswith(root) else path

    def _methods(self, scope: Scope) -> set[str]:
        router = getattr(scope.get("app"), "router", None)
        routes = getattr(router, "routes", ())
        return allowed_methods(routes, self._route_path(scope))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._route_path(scope).startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            methods = self._methods(scope)
            if methods:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 204,
                        "headers": [(b"allow", _listed(methods | {"OPTIONS"}).encode())],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return
            await self.app(scope, receive, send)  # no route: the app's own 404 problem
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = self._methods(scope)
                if methods:
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                    headers.append((b"allow", _listed(methods | {"OPTIONS"}).encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_allow)
