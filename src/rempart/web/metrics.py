"""``/metrics`` for operators (Prometheus text format): how the app answers, and what the
platform's background work is doing.

What is measured, and what never is:

- HTTP requests counted by **route template** (``/api/v1/claims/{claim_id}``, never the raw path,
  which carries ids), method and status; their latency by route template and method. A request
  that matched no route is counted under ``<unmatched>``: a scanner's thousand paths are one series.
- The platform's own figures are read from the database at scrape time by collectors registered by
  the app (``rempart.metrics_collectors``: this module is plumbing and imports no domain).
- No label ever holds an id of a person, a practice or an insurer, nor any personal data.

Who may read it: the numbers say how busy the platform is and whether detection is containing
someone, which is worth something to an attacker. So ``/metrics`` answers only

- a caller on the loopback interface (a Prometheus agent or sidecar on the host), provided the
  request did not come through a proxy (no ``Forwarded``/``X-Forwarded-For`` header): a reverse
  proxy on the same host makes every outside request look local; or
- a caller that presents ``Authorization: Bearer <REMPART_METRICS_TOKEN>`` (compared in constant
  time); with no token set, only loopback.

Anyone else gets the same 404 problem as any unknown path: the endpoint does not advertise itself.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rempart.errors import PROBLEM_BASE, PROBLEM_JSON

PATH = "/metrics"
UNMATCHED = "<unmatched>"
# Rights checks answer in milliseconds; imports and exports of the back office take seconds.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_PROXY_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-real-ip"})
_NOT_FOUND = json.dumps(
    {"type": PROBLEM_BASE + "not-found", "title": "Not found", "status": 404, "detail": "Nothing here."}
).encode()


class Metrics:
    """One app's registry (not the library's global one: two apps in a process, as in the tests,
    must not share nor collide) and who may read it."""

    def __init__(self, *, token: str = "") -> None:
        self.token = token
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rempart_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rempart_http_request_duration_seconds",
            "Time from the request's arrival to the end of its answer, by route template and method.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def register(self, collector: Collector) -> None:
        """A collector of the platform's figures, called at every scrape."""
        self.registry.register(collector)

    def may_read(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers", ()))
        authorization = headers.get(b"authorization", b"")
        if self.token and authorization.startswith(b"Bearer "):
            return hmac.compare_digest(authorization[len(b"Bearer ") :].strip(), self.token.encode())
        if _PROXY_HEADERS & headers.keys():
            return False
        return _is_loopback(scope.get("client"))


def _is_loopback(client: Any) -> bool:
    if not client:
        return False
    try:
        return ipaddress.ip_address(str(client[0])).is_loopback
    except ValueError:
        return False  # "testclient" and other names: not an address, not loopback


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class HttpMetrics:
    """ASGI middleware: counts every HTTP answer and times it, by route template."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The router wrote the matched route into the scope it was given, this very dict.
            route, method = _route_of(scope), str(scope.get("method", "?"))
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - started)


router = APIRouter()


@router.api_route(PATH, methods=["GET", "HEAD"], include_in_schema=False)
def metrics(request: Request) -> Response:
    """Sync on purpose: the platform's collectors query the database, in a worker thread."""
    registry: Metrics = request.app.state.metrics
    if not registry.may_read(request.scope):
        # Built here rather than raised: /metrics is not under an API prefix, where the app's
        # handler would answer a person's browser with an HTML page.
        return Response(_NOT_FOUND, status_code=404, media_type=PROBLEM_JSON)
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
