"""The FastAPI application factory: routers, problem+json errors, security headers, and the
lifespan of what the process runs beside the requests (the access log's sealer, detection)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from rempart import __version__
from rempart.approvals.api import router as approvals
from rempart.approvals.pages import router as approval_pages
from rempart.approvals.staff_pages import router as approval_review_pages
from rempart.attestations.api import router as attestations
from rempart.attestations.pages import router as card_pages
from rempart.audit.api import router as audit
from rempart.audit.console_pages import router as break_glass_pages
from rempart.audit.my_pages import router as my_access_log_pages
from rempart.audit.staff_pages import router as access_log_pages
from rempart.claims.api import router as claims
from rempart.claims.pages import router as claim_pages
from rempart.claims.staff_pages import router as review_pages
from rempart.detection.api import router as detection
from rempart.detection.console_pages import router as console_pages
from rempart.detection.pages import router as detection_pages
from rempart.eligibility.api import router as eligibility
from rempart.eligibility.my_pages import router as my_rights_pages
from rempart.eligibility.pages import router as counter_pages
from rempart.errors import PROBLEM_BASE, PROBLEM_JSON, RempartError
from rempart.fhir.api import router as fhir_meta
from rempart.fhir.claims import router as fhir_claims
from rempart.fhir.eligibility import router as fhir_eligibility
from rempart.fhir.reconciliation import router as fhir_reconciliation
from rempart.identity.api import router as identity
from rempart.identity.deps import PUBLIC
from rempart.incidents.api import router as incidents
from rempart.incidents.clock import DeadlineWatch
from rempart.incidents.console_pages import router as console_incident_pages
from rempart.incidents.my_pages import router as my_incident_pages
from rempart.incidents.staff_pages import router as breach_notice_pages
from rempart.insurers.api import router as insurers
from rempart.insurers.pages import router as product_pages
from rempart.insurers.platform_api import router as insurers_platform
from rempart.logs import get_logger
from rempart.members.export_api import router as member_exports
from rempart.members.export_pages import router as export_pages
from rempart.members.pages import router as member_pages
from rempart.metrics_collectors import PlatformCollector
from rempart.payments.api import router as payments
from rempart.payments.pages import router as payment_pages
from rempart.payments.staff_pages import router as payment_run_pages
from rempart.pricing.api import router as pricing
from rempart.pricing.pages import router as quote_pages
from rempart.runtime import Runtime
from rempart.web.allow import AllowedMethods
from rempart.web.api_docs import docs_router
from rempart.web.body_errors import describe_json_error
from rempart.web.capacity import RequestCapacity
from rempart.web.deps import SessionDep
from rempart.web.fhir_wire import is_fhir_path, outcome_response
from rempart.web.metrics import HttpMetrics, Metrics
from rempart.web.metrics import router as metrics_router
from rempart.web.openapi import truthful_openapi
from rempart.web.pages import is_page_path, problem_page, see_other
from rempart.web.pages import shell as page_shell
from rempart.web.problem_pages import problem_pages
from rempart.web.request_id import RequestId, stamp_problem
from rempart.web.security import SecurityHeaders

log = get_logger("rempart.app")
# 401s that signing in would not cure: the person reads what happened instead.
_NOT_A_SIGN_IN = frozenset({"enrolment-refused", "recovery-failed"})


def problem_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None, *, request: Request | None = None
) -> Response:
    """The problem as problem+json, or as a readable page on the portal's paths. A person who is
    not signed in and asks for a page is sent to the login page, which brings them back after."""
    body, headers = stamp_problem(body, headers)  # the request id: the body's instance, X-Request-ID
    if request is not None and is_fhir_path(request.url.path):
        return outcome_response(status, body, headers)  # the FHIR facade answers OperationOutcomes
    if request is not None and is_page_path(request.url.path):
        slug = str(body.get("type", "")).rsplit("/", 1)[-1]
        if status == 401 and request.method in {"GET", "HEAD"} and slug not in _NOT_A_SIGN_IN:
            # A page that needs a fresh passkey check sends to it; any other 401 to the login page.
            fresh_check = slug == "step-up-required"
            return see_other(("/step-up?" if fresh_check else "/login?") + urlencode({"next": request.url.path}))
        return problem_page(request, body, headers=headers)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_problem(request: Request, exc: RequestValidationError) -> Response:
    # Name the fields and what is wrong with them, never echo the submitted values back.
    errors = [_field_error(exc, err) for err in exc.errors()]
    body = {
        "type": PROBLEM_BASE + "validation-failed",
        "title": "The request is not valid",
        "status": 422,
        "detail": f"{len(errors)} field(s) are not valid",
        "errors": errors,
    }
    return problem_response(422, body, request=request)


def _field_error(exc: RequestValidationError, err: dict[str, Any]) -> dict[str, str]:
    loc = err.get("loc", ())
    if err.get("type") == "json_invalid" and len(loc) == 2 and isinstance(loc[1], int):
        # An unreadable JSON body is located at a character offset: said as a line and a column.
        return {"field": "body", "reason": describe_json_error(exc.body or b"", loc[1])}
    return {"field": ".".join(str(p) for p in loc if p != "body"), "reason": err.get("msg", "invalid")}


# The framework's own refusals, each with a stable type and a title of its own.
_HTTP_PROBLEMS = {
    # FastAPI's "There was an error parsing the body": not UTF-8, or JSON nested past the parser.
    400: ("malformed-request", "The request could not be read", "The body is not well-formed UTF-8 JSON."),
    404: ("not-found", "Not found", "Nothing here."),
    405: ("method-not-allowed", "Method not allowed", "This path does not take this method."),
}


def _http_problem(request: Request, exc: StarletteHTTPException) -> Response:
    slug, title, detail = _HTTP_PROBLEMS.get(exc.status_code, ("http-error", "", ""))
    said = str(exc.detail) if isinstance(exc.detail, str) else "Error"
    body = {
        "type": PROBLEM_BASE + slug,
        "title": title or said,
        "status": exc.status_code,
        # The framework's words for the body's parse error say less than ours; elsewhere they stand.
        "detail": detail if exc.status_code == 400 or not isinstance(exc.detail, str) else said,
    }
    return problem_response(exc.status_code, body, headers=getattr(exc, "headers", None), request=request)


def _domain_problem(request: Request, exc: RempartError) -> Response:
    return problem_response(exc.status, exc.problem(), headers=exc.headers or None, request=request)


def _unexpected_problem(request: Request, exc: Exception) -> Response:
    # The type name only: messages of library exceptions can carry SQL or values.
    route = request.scope.get("route")
    log.error("unhandled_error", error_type=type(exc).__name__, route=getattr(route, "path", "?"))
    body = {
        "type": PROBLEM_BASE + "internal-error",
        "title": "Internal error",
        "status": 500,
        "detail": "The request could not be completed. Nothing was changed.",
    }
    return problem_response(500, body, request=request)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The access log's sealer runs while the app serves (each app process has one; they take
    turns), and the detection engine commits its last containment records when the app stops."""
    runtime: Runtime = app.state.runtime
    sealer = runtime.new_sealer()
    if sealer is not None:
        sealer.start()
        log.info("audit_sealer_started", interval=sealer.interval)
    app.state.audit_sealer = sealer
    # The 72-hour clock's alerts, raised while the app serves (not under tests: they move the clock).
    watch = DeadlineWatch(runtime.sessions) if runtime.settings.environment != "test" else None
    if watch is not None:
        watch.start()
    try:
        yield
    finally:
        if watch is not None:
            watch.stop()
        if sealer is not None:
            sealer.stop()
        runtime.close_detection()


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="Rempart",
        version=__version__,
        description="Third-party payment for complementary health insurers.",
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.runtime = runtime
    app.add_exception_handler(RequestValidationError, _validation_problem)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_problem)  # type: ignore[arg-type]
    app.add_exception_handler(RempartError, _domain_problem)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_problem)

    @app.api_route("/healthz", methods=["GET", "HEAD"], include_in_schema=False)
    def healthz(session: SessionDep) -> dict[str, str]:
        session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    settings = runtime.settings
    metrics = Metrics(token=settings.metrics_token)
    metrics.register(PlatformCollector(runtime.sessions))
    app.state.metrics = metrics
    app.include_router(metrics_router)
    for router in _routers():
        app.include_router(router)
    app.include_router(docs_router(public=PUBLIC))
    # Each problem's type, /problems/<slug>, resolves to its page on this deployment: public too.
    app.include_router(problem_pages(public=PUBLIC, http_problems=_HTTP_PROBLEMS))
    app.openapi = lambda: truthful_openapi(app)  # type: ignore[method-assign]
    app.add_middleware(AllowedMethods)  # inside the security headers: its answers carry them too

    app.add_middleware(RequestCapacity, max_in_flight=settings.max_in_flight, threads=settings.server_threads)
    # Outside the capacity limit: the busy 503s are counted and carry a request id too.
    app.add_middleware(HttpMetrics, metrics=metrics)
    app.add_middleware(SecurityHeaders, https=settings.public_origin.startswith("https://"))
    app.add_middleware(RequestId)
    if settings.trusted_proxy_list:
        # Outermost: everything inside sees the caller's address, not the load balancer's.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list)
    return app


def _routers() -> list[APIRouter]:
    """Every domain's routers, in one place so that nothing is mounted by accident.

    In order of traffic: FastAPI tries routes one after the other, a few microseconds each, and
    the professional's day (rights checks first) is nearly all of it. No two domains' routes match
    the same request (``tests/test_app.py``), so the order changes nothing else.
    """
    api = [
        eligibility,
        pricing,
        approvals,
        claims,
        payments,
        identity,
        insurers,
        insurers_platform,
        member_exports,
        detection,
        audit,
        attestations,
        incidents,
        fhir_meta,
        fhir_eligibility,
        fhir_claims,
        fhir_reconciliation,
    ]
    pages = [counter_pages, quote_pages, approval_pages, claim_pages, payment_pages, detection_pages]
    back_office = [
        product_pages, member_pages, export_pages, review_pages, approval_review_pages, payment_run_pages,
        access_log_pages, breach_notice_pages,
    ]  # fmt: skip
    beneficiary = [card_pages, my_rights_pages, my_access_log_pages, my_incident_pages]
    console = [console_pages, break_glass_pages, console_incident_pages]
    pages = [*pages, *back_office, *beneficiary, *console, page_shell]
    return api + pages
