"""The HTTP surface every route shares: health, problem+json errors, security headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.routing import compile_path

from rempart.app import _routers, create_app
from rempart.errors import PROBLEM_BASE
from rempart.runtime import Runtime


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as c:
        yield c


def test_health_answers_200_with_security_headers(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    csp = response.headers["content-security-policy"]
    assert csp.startswith("default-src 'none'")
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"  # no-referrer makes form posts Origin: null


def test_an_unknown_path_is_a_problem_json_404(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == PROBLEM_BASE + "not-found"
    assert body["status"] == 404


class _Echo(BaseModel):
    nir: str
    amount_cents: int


def _app_with_probe_routes(runtime: Runtime) -> TestClient:
    app = create_app(runtime)
    probe = APIRouter()

    @probe.post("/api/v1/probe/validate")
    def validate(body: _Echo) -> dict[str, str]:
        return {"ok": "yes"}

    @probe.get("/api/v1/probe/crash")
    def crash() -> None:
        raise RuntimeError("SELECT * FROM beneficiaries WHERE nir = '185057800608436'")

    app.include_router(probe)
    return TestClient(app, raise_server_exceptions=False)


def test_invalid_input_names_the_field_and_never_echoes_the_value(runtime: Runtime) -> None:
    client = _app_with_probe_routes(runtime)
    response = client.post("/api/v1/probe/validate", json={"nir": "185057800608436", "amount_cents": "douze"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == PROBLEM_BASE + "validation-failed"
    assert [e["field"] for e in body["errors"]] == ["amount_cents"]
    assert "douze" not in response.text
    assert "185057800608436" not in response.text


@pytest.mark.parametrize(
    "body",
    [b'{"nir": "1850578006084\xff36", "amount_cents": 1}', b"[" * 100_000 + b"]" * 100_000],
    ids=["not UTF-8", "nested past the parser"],
)
def test_a_body_that_cannot_be_read_is_a_malformed_request_that_echoes_nothing(runtime: Runtime, body: bytes) -> None:
    client = _app_with_probe_routes(runtime)
    response = client.post("/api/v1/probe/validate", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == PROBLEM_BASE + "malformed-request"
    assert problem["title"] == "The request could not be read"
    assert problem["detail"] == "The body is not well-formed UTF-8 JSON."
    assert "1850578006084" not in response.text


def test_an_unexpected_error_leaks_no_stack_sql_or_personal_data(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    client = _app_with_probe_routes(runtime)
    response = client.get("/api/v1/probe/crash")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == PROBLEM_BASE + "internal-error"
    for leaked in ("SELECT", "beneficiaries", "185057800608436", "Traceback", "RuntimeError("):
        assert leaked not in response.text
    logged = capsys.readouterr().err
    assert "RuntimeError" in logged
    assert "185057800608436" not in logged
    assert "SELECT" not in logged


def test_production_refuses_laptop_defaults() -> None:
    from pydantic import ValidationError

    from rempart.config import Settings

    with pytest.raises(ValidationError) as caught:
        Settings(
            environment="production", database_url="sqlite:///var/rempart.db", public_origin="http://localhost:8000"
        )
    message = str(caught.value)
    for variable in ("REMPART_DATABASE_URL", "REMPART_REDIS_URL", "REMPART_PUBLIC_ORIGIN", "REMPART_DATABASE_APP_ROLE"):
        assert variable in message
    ready = Settings(
        environment="production",
        database_url="postgresql://rempart@db/rempart",
        redis_url="redis://cache:6379/0",
        public_origin="https://tiers-payant.example",
        rp_id="tiers-payant.example",
        database_app_role="rempart_app",
    )
    assert ready.cookies_secure


def test_a_problem_that_asks_to_wait_says_so_in_retry_after_too(runtime: Runtime) -> None:
    from rempart.errors import RempartError

    class TooFast(RempartError):
        status = 429
        slug = "slow-down"
        title = "Too many checks"

    app = create_app(runtime)
    probe = APIRouter()

    @probe.get("/api/v1/probe/slow")
    def slow() -> None:
        raise TooFast("wait a little", extra={"retry_after": 30})

    app.include_router(probe)
    response = TestClient(app).get("/api/v1/probe/slow")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "30"
    assert response.json()["retry_after"] == 30


def test_the_callers_address_comes_from_a_trusted_proxy_only(runtime: Runtime) -> None:
    """Behind the load balancer the access log and detection see the caller, not the balancer;
    anyone else's X-Forwarded-For is ignored (else a thief would choose its own "network")."""
    settings = runtime.settings.model_copy(update={"trusted_proxies": "10.0.0.0/24, 192.0.2.1"})
    app = create_app(Runtime(settings=settings, engine=runtime.engine, sessions=runtime.sessions, keys=runtime.keys))
    probe = APIRouter()

    @probe.get("/api/v1/probe/address")
    def address(request: Request) -> dict[str, str | None]:
        return {"address": request.client.host if request.client else None}

    app.include_router(probe)
    forwarded = {"X-Forwarded-For": "203.0.113.7"}

    def seen(peer: str) -> str:
        client = TestClient(app, client=(peer, 40000))
        response = client.get("/api/v1/probe/address", headers=forwarded)
        assert response.status_code == 200, response.text
        body: dict[str, str] = response.json()
        return body["address"]

    assert seen("10.0.0.17") == "203.0.113.7"  # a balancer of the trusted network
    assert seen("192.0.2.1") == "203.0.113.7"
    assert seen("198.51.100.4") == "198.51.100.4"  # not a balancer: its header is ignored


@pytest.mark.parametrize("proxies", ["*", "lb.internal", "10.0.0.0/24, not-an-address"])
def test_trusted_proxies_must_be_addresses(proxies: str) -> None:
    from pydantic import ValidationError

    from rempart.config import Settings

    with pytest.raises(ValidationError, match="REMPART_TRUSTED_PROXIES"):
        Settings(trusted_proxies=proxies)


def _api_routes(router: Any, prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    """Every (path, methods) of a router, through the routers it includes."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, set(route.methods or ())
        else:  # an included router (FastAPI keeps them nested)
            yield from _api_routes(route.original_router, prefix + (route.include_context.prefix or ""))


def test_routers_are_tried_busiest_first_and_no_two_domains_answer_the_same_request() -> None:
    domains = [list(_api_routes(router)) for router in _routers()]
    assert sum(len(routes) for routes in domains) > 80  # every route was found
    # The first route a request tries after the health check is the rights check.
    assert domains[0][0] == ("/api/v1/rights-checks", {"POST"})
    overlaps = []
    for i, routes in enumerate(domains):
        for j, others in enumerate(domains):
            for path, methods in routes:
                request_path = re.sub(r"{[^}]+}", "0", path)
                overlaps += [
                    (path, other)
                    for other, other_methods in others
                    if i != j and methods & other_methods and compile_path(other)[0].match(request_path)
                ]
    assert overlaps == []  # so their order decides only how fast a request is routed


def test_the_app_closes_the_runtimes_detection_engine_when_it_stops(runtime: Runtime) -> None:
    app = create_app(runtime)
    with TestClient(app):
        engine = runtime.detection
        assert runtime.detection is engine  # one per process, built on first use
    assert runtime.detection is not engine  # closed with the app: a later use builds another
