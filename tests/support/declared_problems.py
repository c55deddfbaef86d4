"""Every problem the suite sees an API route answer is one the OpenAPI document declares for it.

Schemathesis holds the routes to the document on requests it invents; the suite's own requests
reach further (a seeded population, a second staff member, a switched-off channel, a slowed
practice). This watches each problem as the app renders it (``rempart.app.problem_response``) and
checks its status and ``type`` against the document of the app that answered: the status must be
declared for that route and method, and the type listed in that response's description. A test
whose answers break the contract fails at teardown, naming the route, the status and the type.

Routes outside the document (the portal's pages, the health check) are not watched; nor are answers
given before routing (an unknown path, a body too large), which have no route to hold them to; nor,
unless asked, routes a test adds to an app to see how a problem renders (their endpoint is not
Rempart's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute

import rempart.app
from rempart.web.openapi import truthful_openapi

_METHODS = ("get", "put", "post", "delete", "patch")


def _shape(app: FastAPI) -> tuple[tuple[str, str], ...]:
    """What the document depends on: the app's routes (most tests build the same app)."""
    return tuple(
        sorted(
            (route.path_format, ",".join(sorted(route.methods))) for route in app.routes if isinstance(route, APIRoute)
        )
    )


@dataclass
class Watch:
    documents: dict[tuple[tuple[str, str], ...], dict[str, Any]] = field(default_factory=dict)
    undeclared: list[str] = field(default_factory=list)
    only_rempart: bool = True  # the routes whose endpoints are Rempart's, not a test's probes

    def document(self, app: FastAPI) -> dict[str, Any]:
        key = _shape(app)
        found = self.documents.get(key)
        if found is None:
            found = self.documents[key] = truthful_openapi(app)
        return found

    def see(self, request: Request, status: int, body: dict[str, Any]) -> None:
        route = request.scope.get("route")
        method = request.method.lower()
        if not isinstance(route, APIRoute) or method not in _METHODS:
            return
        if self.only_rempart and not getattr(route.endpoint, "__module__", "").startswith("rempart."):
            return
        operation = self.document(request.app).get("paths", {}).get(route.path_format, {}).get(method)
        if operation is None:
            return  # not in the document (a page, the health check)
        answer = f"{request.method} {route.path_format} answered {status} {body.get('type', '')}"
        declared = operation.get("responses", {}).get(str(status))
        if declared is None:
            self.undeclared.append(f"{answer}: status not declared")
        elif f"`{body.get('type', '')}`" not in declared.get("description", ""):
            self.undeclared.append(f"{answer}: type not listed")


@contextmanager
def watching(*, only_rempart: bool = True) -> Iterator[Watch]:
    """Check every problem rendered meanwhile (by any app built by ``rempart.app.create_app``)."""
    watch = Watch(only_rempart=only_rempart)
    rendered: Callable[..., Any] = rempart.app.problem_response

    def problem_response(
        status: int, body: dict[str, Any], headers: dict[str, str] | None = None, *, request: Request | None = None
    ) -> Any:
        if request is not None:
            watch.see(request, status, body)
        return rendered(status, body, headers, request=request)

    rempart.app.problem_response = problem_response  # type: ignore[assignment]
    try:
        yield watch
    finally:
        rempart.app.problem_response = rendered  # type: ignore[assignment]
