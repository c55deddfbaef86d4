"""The OpenAPI document tells the truth (issue 19): who may call each operation and how, which
headers the credentials ride in, that Idempotency-Key is required where the route demands it, and
that every refusal is a problem (an OperationOutcome on /fhir). Then schemathesis holds the
professional routes' answers to what the document declares, on requests signed as practice
software signs them. And /api/docs renders the document under the app's content-security policy.
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from rempart.app import create_app
from rempart.eligibility.schemas import RightsCheckIn, RightsCheckOut
from rempart.errors import PROBLEM_BASE, PROBLEM_JSON
from rempart.identity.context import IdentityServices
from rempart.identity.deps import INSURER_API_PREFIX, is_public
from rempart.identity.permissions import SCOPE_PERMISSIONS, Role
from rempart.members.service import write_members
from rempart.runtime import Runtime
from rempart.web import openapi as truthful
from rempart.web.openapi import FHIR_JSON, api_routes, route_needs, truthful_openapi
from rempart.web.security import CSP
from tests.factories import TODAY, make_insurer, population
from tests.support.browser import chromium, free_port, live_server, needs_chromium
from tests.support.clock import FakeClock
from tests.support.insurer_client import InsurerClient
from tests.support.portal import PortalUser
from tests.support.practice_client import PracticeClient

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
PROFESSIONAL_PATHS = (
    "/api/v1/rights-checks",
    "/api/v1/quotes",
    "/api/v1/prior-approvals",
    "/api/v1/claims",
    "/api/v1/remittances",
)


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    # The app as rempart.app wires it: the truthful document, and the docs page.
    application = create_app(runtime)
    application.state.identity = IdentityServices.build(
        runtime.settings, clock=FakeClock(), prefix=f"t{uuid.uuid4().hex}"
    )
    return application


@pytest.fixture
def document(app: FastAPI) -> dict[str, Any]:
    return truthful_openapi(app)


def api_routes_all(app: FastAPI) -> list[Any]:
    return [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def test_the_document_is_valid_openapi_and_served(app: FastAPI, document: dict[str, Any]) -> None:
    validate(document)
    served = PracticeClient.register(app, app.state.runtime).client.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(document))


def test_the_dependencies_it_reads_still_exist() -> None:
    # openapi.py names the identity dependencies as strings (request plumbing imports no domain).
    for name in truthful.DEPENDENCY_NAMES | truthful.GUARDS:
        module, _, attribute = name.rpartition(".")
        assert hasattr(importlib.import_module(module), attribute), name


def test_every_route_that_needs_credentials_declares_how(app: FastAPI, document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["dpop"] == {"type": "http", "scheme": "DPoP", "description": truthful.DPOP_DESCRIPTION}
    assert schemes["portalSession"]["in"] == "cookie"
    assert schemes["portalSession"]["name"] in {"__Host-rempart_session", "rempart_session"}
    assert "X-CSRF-Token" in schemes["portalSession"]["description"]
    checked = 0
    for route in api_routes(app):
        needs = route_needs(route)
        for method in route.methods:
            op = document["paths"][route.path_format].get(method.lower())
            if op is None:
                continue
            checked += 1
            if needs.authenticated and not needs.public:
                assert op.get("security"), (method, route.path_format)
                assert {"401", "403"} <= set(op["responses"]), (method, route.path_format)
            else:
                assert not op.get("security"), (method, route.path_format)
    assert checked > 90
    for public in ("/fhir/metadata", "/.well-known/rempart/attestation-keys", "/api/v1/auth/token"):
        for op in document["paths"][public].values():
            assert not op.get("security")
    # Staff routes: a session, or an insurer's API client where one of its scopes grants the route.
    staff = document["paths"]["/api/v1/insurers/{insurer_id}/products"]["get"]
    assert staff["security"] == [{"portalSession": []}]
    nightly = document["paths"]["/api/v1/insurers/{insurer_id}/claims"]["get"]
    assert nightly["security"] == [{"dpop": []}, {"portalSession": []}]
    assert "X-Acting-RPPS" not in {p["name"] for p in nightly["parameters"]}


def test_what_an_insurer_client_may_reach_is_what_its_scopes_grant() -> None:
    granted = {str(p) for permissions in SCOPE_PERMISSIONS.values() for p in permissions}
    assert granted == truthful.INSURER_CLIENT_PERMISSIONS
    assert INSURER_API_PREFIX == truthful.INSURER_API_PREFIX


def test_practice_routes_declare_dpop_and_the_acting_professional(document: dict[str, Any]) -> None:
    practice = [
        (path, method, op)
        for path, method, op in operations(document)
        if path.startswith(PROFESSIONAL_PATHS) or (path.startswith("/fhir/") and op.get("security"))
    ]
    assert len(practice) >= 15
    for path, method, op in practice:
        assert {"dpop": []} in op["security"], (method, path)
        headers = {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}
        assert {"DPoP", "X-Acting-RPPS"} <= headers, (method, path)


def test_idempotency_key_is_required_where_the_route_demands_it(app: FastAPI, document: dict[str, Any]) -> None:
    demanding = {
        (path, method)
        for path, method, op in operations(document)
        for p in op.get("parameters", [])
        if p["in"] == "header" and p["name"] == "Idempotency-Key" and p["required"]
    }
    assert demanding == {
        ("/api/v1/prior-approvals", "post"),
        ("/api/v1/claims", "post"),
        ("/api/v1/claims/{claim_id}/corrections", "post"),
        ("/fhir/Claim", "post"),
    }
    optional = document["paths"]["/api/v1/insurers/{insurer_id}/payment-runs"]["post"]["parameters"]
    assert [p["required"] for p in optional if p["name"] == "Idempotency-Key"] == [False]
    # The route answers the problem the document declares for a missing key.
    declared = document["paths"]["/api/v1/claims"]["post"]["responses"]["400"]
    assert PROBLEM_BASE + "idempotency-key-required" in declared["description"]
    assert declared["content"][PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/Problem"}
    practice = PracticeClient.register(app, app.state.runtime)
    line = {
        "care_domain": "PHAR",
        "act_code": "3400930000001",
        "care_date": "2026-03-02",
        "quantity": 1,
        "unit_price_cents": 1_000,
        "brss_cents": 1_000,
        "amo_rate_pct": 65,
    }
    missing = practice.post("/api/v1/claims", json={"check_id": str(uuid.uuid4()), "lines": [line]})
    assert missing.status_code == 400, missing.text
    assert missing.headers["content-type"] == PROBLEM_JSON
    assert missing.json()["type"] == PROBLEM_BASE + "idempotency-key-required"


def test_no_framework_validation_error_and_every_refusal_is_a_problem(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    assert "HTTPValidationError" not in text
    assert "#/components/schemas/ValidationError" not in text
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance", "errors"} <= set(problem["properties"])
    assert set(problem["properties"]["errors"]["items"]["properties"]) == {"field", "reason"}
    for path, method, op in operations(document):
        for code, response in op["responses"].items():
            if not code.startswith(("4", "5")):
                continue
            expected = (
                {FHIR_JSON: "#/components/schemas/OperationOutcome"}
                if path.startswith("/fhir/")
                else {PROBLEM_JSON: "#/components/schemas/Problem"}
            )
            got = {media: body["schema"].get("$ref") for media, body in response["content"].items()}
            assert got == expected, (method, path, code)
    validation = document["paths"]["/api/v1/rights-checks"]["post"]["responses"]["422"]
    assert PROBLEM_BASE + "validation-failed" in validation["description"]
    for path in ("/fhir/Claim", "/fhir/CoverageEligibilityRequest"):
        op = document["paths"][path]["post"]
        assert list(op["requestBody"]["content"]) == [FHIR_JSON]
        assert list(op["responses"]["200"]["content"]) == [FHIR_JSON]


def test_the_rights_check_has_examples(document: dict[str, Any]) -> None:
    op = document["paths"]["/api/v1/rights-checks"]["post"]
    # The examples are what the route takes and gives.
    RightsCheckIn.model_validate(op["requestBody"]["content"]["application/json"]["example"])
    answer = RightsCheckOut.model_validate(op["responses"]["200"]["content"]["application/json"]["example"])
    assert answer.status == "covered"
    # The route's own example of its miss is kept.
    assert op["responses"]["404"]["content"][PROBLEM_JSON]["example"]["type"] == PROBLEM_BASE + "no-matching-rights"


def test_the_docs_page_renders_the_document_under_the_csp(app: FastAPI) -> None:
    client = PracticeClient.register(app, app.state.runtime).client
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CSP
    # No inline script or style, nothing from another origin.
    assert "<script>" not in page.text
    assert "style=" not in page.text
    assert "http" not in page.text
    scripts = ["/api/docs/assets/swagger-ui-bundle.js", "/static/api-docs.js"]
    for asset in [*scripts, "/api/docs/assets/swagger-ui.css"]:
        assert f'"{asset}"' in page.text
        answer = client.get(asset)
        assert answer.status_code == 200, asset
        assert answer.headers["content-type"].startswith(("text/javascript", "text/css")), asset
    assert 'url: "/openapi.json"' in client.get("/static/api-docs.js").text
    assert client.get("/api/docs/assets/elsewhere.js").status_code == 404
    # Public on purpose, said on each route (deny by default under /api/).
    docs = [route for route in api_routes_all(app) if route.path_format.startswith("/api/docs")]
    assert len(docs) == 2
    assert all(is_public(route.original_route) for route in docs)


# -- schemathesis: the routes answer what the document says --------------------------------------

EXAMPLES_PER_OPERATION = 30
CHECKS: list[Any] = [
    schemathesis.checks.not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
]


def declared_problem_type(document: dict[str, Any]) -> Any:
    """A check of our own: a problem's ``type`` is one the document lists for that route and status
    (schemathesis holds the status and the body's shape; the list of types is in the description)."""

    def check(_ctx: Any, response: Any, case: Any) -> None:
        if not response.headers.get("content-type", [""])[0].startswith(PROBLEM_JSON):
            return
        declared = document["paths"][case.operation.path][case.method.lower()]["responses"]
        said = declared.get(str(response.status_code), {}).get("description", "")
        problem_type = json.loads(response.content)["type"]
        assert f"`{problem_type}`" in said, (
            f"{case.method} {case.operation.path} answered {response.status_code} {problem_type}, "
            f"which the document does not list for it"
        )

    return check


def _gist(failure: str) -> str:
    """What a failure says, without the request's values: its checks' names and their first lines."""
    lines = [line.strip() for line in failure.splitlines()]
    said = [line for line in lines if line.startswith(("- ST", "Received:", "Documented:")) or "answered" in line]
    return " | ".join(said)[:400] or failure[:400]


def conformance(
    app: FastAPI,
    document: dict[str, Any],
    chosen: list[Any],
    headers_for: Any,
    path_parameters: dict[str, str] | None = None,
) -> tuple[Counter[int], list[str]]:
    """Each of ``chosen`` operations called with valid and invalid requests (bounded per operation);
    the statuses answered, and every failure of a check."""
    calls: list[tuple[str, str, int]] = []
    failures: list[str] = []
    checks = [*CHECKS, declared_problem_type(document)]

    for operation in chosen:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        # Valid requests and invalid ones (wrong types, missing fields), mixed.
        @given(case=operation.as_strategy() | operation.as_strategy(GenerationMode.NEGATIVE))
        def run(case: Any) -> None:
            for name, value in (path_parameters or {}).items():
                if case.path_parameters and name in case.path_parameters:
                    case.path_parameters[name] = value  # our insurer: another one's id is tested elsewhere
            headers = headers_for(case.method, case.formatted_path)
            try:
                response = case.call_and_validate(headers=headers, checks=checks)
                calls.append((case.method, case.formatted_path, response.status_code))
            except (AssertionError, BaseExceptionGroup) as failure:  # every failure is reported, not the first only
                calls.append((case.method, case.formatted_path, -1))
                failures.append(f"{case.method} {case.operation.path}: {_gist(str(failure))}")

        run()
    return Counter(status for _, _, status in calls), failures


def all_operations(app: FastAPI) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]  # raises on an unreadable one


@pytest.mark.slow
def test_professional_routes_conform_to_the_document(app: FastAPI, runtime: Runtime, document: dict[str, Any]) -> None:
    practice = PracticeClient.register(app, runtime)
    every = all_operations(app)
    chosen = [op for op in every if op.path.startswith(PROFESSIONAL_PATHS) and op.method.lower() in {"get", "post"}]
    assert len(chosen) >= 12

    answered, failures = conformance(app, document, chosen, practice.headers)

    print(f"schemathesis: {answered.total()} requests, {len(failures)} failures, answers {sorted(answered.items())}")
    assert not failures, "\n".join(sorted(set(failures)))
    assert answered[200] + answered[201] > 0  # some requests were valid enough to be answered


@pytest.mark.slow
def test_insurer_routes_conform_to_the_document_for_its_clients_and_its_staff(
    app: FastAPI, runtime: Runtime, document: dict[str, Any]
) -> None:
    insurer = make_insurer(runtime)
    with runtime.sessions.begin() as session:
        write_members(session=session, keys=runtime.keys, insurer_id=insurer.id, records=population(12), today=TODAY)
    admin = PortalUser.invited(
        app,
        runtime,
        login=f"admin-{uuid.uuid4().hex[:6]}@mutuelle.test",
        roles={Role.INSURER_ADMIN, Role.CLAIMS_AGENT, Role.DPO},
        insurer_id=insurer.id,
    )
    scopes = ["members:import", "claims:review", "payment-runs", "access-log:read"]
    job = InsurerClient.registered_by(admin, insurer_id=insurer.id, scopes=scopes)
    assert admin.step_up().status_code == 200  # changes that ask for a fresh passkey are reached too
    every = [op for op in all_operations(app) if op.path.startswith(INSURER_API_PREFIX)]

    # The insurer's own systems, on the routes their scopes open (the others answer 403, declared).
    by_client = [op for op in every if op.method.lower() in {"get", "post"}]
    client_answers, client_failures = conformance(
        app, document, by_client, job.headers, path_parameters={"insurer_id": str(insurer.id)}
    )

    # Its staff, in a passkey session: every method, with the session cookie and the CSRF token.
    def staff_headers(_method: str, _path: str) -> dict[str, str]:
        cookies = "; ".join(f"{name}={value}" for name, value in admin.client.cookies.items())
        return {"Cookie": cookies, "X-CSRF-Token": admin.csrf_token or "", "Origin": admin.origin}

    staff_answers, staff_failures = conformance(
        app, document, every, staff_headers, path_parameters={"insurer_id": str(insurer.id)}
    )

    for who, answered in (("client", client_answers), ("staff", staff_answers)):
        print(f"schemathesis ({who}): {answered.total()} requests, answers {sorted(answered.items())}")
    failures = client_failures + staff_failures
    assert not failures, "\n".join(sorted(set(failures)))
    assert client_answers[200] + client_answers[202] > 0
    assert staff_answers[200] + staff_answers[201] > 0


@pytest.mark.browser
@needs_chromium
def test_swagger_ui_renders_in_a_browser_without_breaking_the_csp(app: FastAPI) -> None:
    with live_server(app, free_port()) as origin, chromium() as browser:
        page = browser.new_context().new_page()
        problems: list[str] = []
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(origin + "/api/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=60_000)
        assert "Rempart" in page.inner_text(".swagger-ui .info .title")
        assert page.query_selector(".swagger-ui .auth-wrapper .authorize") is not None  # the security schemes
        page.wait_for_selector(
            "#operations-rights_checks-create_rights_check_api_v1_rights_checks_post", timeout=60_000
        )
        # The policy refused nothing: no inline script or style, no eval, no other origin.
        assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
