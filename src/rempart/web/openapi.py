"""The OpenAPI document as the API really behaves (issue 19).

FastAPI's generated schema knows the bodies and the parameters it parses, not what the routes'
dependencies do around them: who may call (a DPoP-bound token or a portal session), which headers
the credentials ride in, that ``Idempotency-Key`` is required, that every refusal is an RFC 9457
problem (an OperationOutcome on ``/fhir``). ``truthful_openapi`` post-processes the generated
document with what each route's dependencies tell, read generically: this module is request
plumbing and imports no domain, so it knows the dependencies by their qualified names
(``tests/web/test_openapi.py`` checks that each name still exists).

    app.openapi = lambda: truthful_openapi(app)
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from rempart.errors import PROBLEM_BASE, PROBLEM_JSON

FHIR_JSON = "application/fhir+json"

# The dependencies that say who may call a route, by qualified name (no import of a domain).
AUTHENTICATED = "rempart.identity.deps.authenticated"
PUBLIC = "rempart.identity.deps.public_route"
PERMISSION_CHECK = "rempart.identity.deps.PermissionCheck"
PRACTICE_CALLER = "rempart.identity.deps.practice_caller"
STAFF_CALLER = "rempart.identity.deps.staff_caller"
RECENT_PASSKEY = "rempart.identity.deps.recent_passkey"
GUARDS = frozenset({"rempart.detection.deps.guarded_practice", "rempart.detection.deps.guarded_staff"})
DEPENDENCY_NAMES = frozenset({AUTHENTICATED, PUBLIC, PERMISSION_CHECK, PRACTICE_CALLER, STAFF_CALLER, RECENT_PASSKEY})
# Permissions are ``scope:resource:action``; practice software's tokens hold the ``care`` scope only.
TOKEN_SCOPE = "care:"  # noqa: S105  (a permission scope, not a secret)
# An insurer's API client (a nightly job) holds, through its scopes, these permissions at most,
# and only on its insurer's routes (``identity.permissions.SCOPE_PERMISSIONS``, checked by the test).
INSURER_CLIENT_PERMISSIONS = frozenset(
    {
        "insurer:member:import",
        "insurer:claim:read",
        "insurer:claim:review",
        "insurer:payment-run:manage",
        "insurer:access-log:read",
    }
)
INSURER_API_PREFIX = "/api/v1/insurers/"
ACTING_RPPS_HEADER = "X-Acting-RPPS"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
SESSION_COOKIE = "__Host-rempart_session"
SESSION_COOKIE_PLAIN = "rempart_session"
TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105  (a path, not a secret)

# Where the key is optional (a payment run: the same cut-off day is harmless to ask twice).
_OPTIONAL_IDEMPOTENCY = frozenset({("post", "/api/v1/insurers/{insurer_id}/payment-runs")})
_FRAMEWORK_422 = frozenset({"HTTPValidationError", "ValidationError"})
_BODY_METHODS = frozenset({"post", "put", "patch", "delete"})


def _types(*slugs: str) -> list[str]:
    return [PROBLEM_BASE + slug for slug in slugs]


# The not-found types of a resource, by the path segment that names it.
_NOT_FOUND_BY_SEGMENT = {
    "claims": ("claim-not-found",),
    "prior-approvals": ("prior-approval-not-found",),
    "remittances": ("remittance-not-found",),
    "payment-runs": ("payment-run-not-found",),
    "member-exports": ("member-export-not-found",),
    "incidents": ("incident-not-found",),
    "ClaimResponse": ("claim-response-not-found",),
}
# What a body may cite that is not found (a rights check, a prior approval), by the same segment.
_CITED_BY_SEGMENT = {
    "quotes": ("rights-check-not-found",),
    "prior-approvals": ("rights-check-not-found",),
    "claims": ("rights-check-not-found", "prior-approval-not-found"),
    "Claim": ("rights-check-not-found", "prior-approval-not-found"),
}
# The conflicts of a resource's state changes, by the same segment.
_CONFLICTS_BY_SEGMENT = {
    "claims": ("claim-closed", "claim-not-pending-review", "rights-check-expired"),
    "Claim": ("claim-closed", "rights-check-expired"),
    "prior-approvals": ("prior-approval-not-cancellable", "prior-approval-not-pending", "rights-check-expired"),
    "quotes": ("rights-check-expired",),
    "member-exports": ("member-export-decided", "member-export-not-downloadable", "member-export-lapsed"),
    "payment-runs": ("nothing-due",),
    "payment-run-requests": ("conflict",),
    "alerts": ("conflict",),  # an alert already acknowledged, closed or linked
    "kill-switches": ("conflict",),  # a switch already in that position
    "keys": ("conflict",),  # a client's key already rotated meanwhile
    "passkeys": ("conflict",),  # the last passkey of an account is never removed
    "practices": ("conflict",),  # a FINESS number already registered
    "products": ("conflict",),  # a code already taken; a product in use emptied or retired without successor
    "staff-invitations": ("conflict",),  # a login already invited
}
# What a professional may not send, whatever the patient: care outside the profession's domains.
_FORBIDDEN_BY_SEGMENT = dict.fromkeys(
    ("rights-checks", "quotes", "prior-approvals", "claims", "Claim", "CoverageEligibilityRequest"),
    ("care-domain-outside-profession",),
)
# Who may not reach what, whoever asks: a break-glass grant not approved, expired or one's own.
_REFUSED_BY_SEGMENT = {"break-glass": ("break-glass-refused",)}
# What a body may be refused for besides its fields, by the same segment.
_INVALID_BY_SEGMENT = {
    "members-imports": ("import-file-unreadable",),
}
# What a professional's lines of care may be refused for: care is quoted and billed once given
# (care to come asks for a prior approval).
_CARE_INVALID_BY_SEGMENT = dict.fromkeys(("quotes", "claims", "Claim"), ("care-date-in-future",))

# What a route refuses of its own, by path: the routes reached without credentials, and those
# whose refusals no segment says.
_OWN_PROBLEMS: dict[str, tuple[tuple[int, str, tuple[str, ...]], ...]] = {
    "/api/v1/auth/login/options": ((429, "Too many attempts", ("too-many-attempts",)),),
    "/api/v1/auth/enrolment/options": ((401, "Enrolment refused", ("enrolment-refused",)),),
    "/api/v1/platform/insurers": ((409, "An insurer already has this AMC number", ("conflict",)),),
    "/api/v1/insurers/{insurer_id}/member-exports/{export_id}/file": (
        (
            409,
            "The export cannot be downloaded (not approved, or already downloaded)",
            ("member-export-not-downloadable",),
        ),
    ),
    "/fhir/CoverageEligibilityRequest": (
        (404, "No matching rights: the same answer for every kind of miss", ("no-matching-rights",)),
    ),
    "/fhir/Claim/{claim_id}/$cancel": (
        (404, "No such claim or prior approval of this practice", ("claim-response-not-found",)),
        (409, "A prior approval already decided cannot be cancelled", ("prior-approval-not-cancellable",)),
    ),
    "/fhir/PaymentReconciliation": ((400, "The search is not valid", ("fhir-search-invalid",)),),
    TOKEN_PATH: (
        (400, "The token request is not valid", ("invalid-token-request",)),
        (
            401,
            "The client is not authenticated",
            ("invalid-client", "client-revoked", "client-expired", "invalid-dpop-proof"),
        ),
        (403, "The client is suspended", ("client-suspended",)),
        (429, "Too many attempts", ("too-many-attempts",)),
    ),
    "/api/v1/auth/login/verify": (
        (400, "The passkey ceremony failed", ("passkey-ceremony-failed",)),
        (401, "Sign-in failed", ("login-failed",)),
        (429, "Too many attempts", ("too-many-attempts",)),
    ),
    "/api/v1/auth/enrolment/verify": (
        (400, "The passkey ceremony failed", ("passkey-ceremony-failed",)),
        (401, "Enrolment refused", ("enrolment-refused",)),
        (429, "Too many attempts", ("too-many-attempts",)),
    ),
    "/api/v1/auth/recovery": (
        (401, "Recovery failed", ("recovery-failed",)),
        (429, "Too many attempts", ("too-many-attempts",)),
    ),
}

DPOP_DESCRIPTION = (
    "Practice software, and an insurer's API client on the routes its scopes grant: an access "
    f"token from `POST {TOKEN_PATH}`, obtained with a `private_key_jwt` client assertion (RFC 7523) "
    "and bound to a DPoP key (RFC 9449). Send it as `Authorization: DPoP <token>`, with a fresh "
    "`DPoP` proof (a JWT signed by the bound key over the method, the URL and the token's hash, "
    "never reused) on every request; practice software also names the acting professional's RPPS "
    f"in `{ACTING_RPPS_HEADER}`."
)


def _session_description(cookie: str) -> str:
    return (
        f"People (professionals, insurer staff, security operators, beneficiaries): the `{cookie}` "
        "cookie set by a passkey sign-in (`POST /api/v1/auth/login/verify`); `Secure`, `HttpOnly`, "
        "`SameSite=Strict`, 15 minutes idle, 12 hours at most. Every state-changing request "
        "(anything but GET, HEAD, OPTIONS) also carries the session's CSRF token in the "
        "`X-CSRF-Token` header (or a form's `csrf_token` field), and, when the browser sends an "
        "`Origin`, it must be Rempart's: otherwise 403 `csrf-refused`. Sensitive actions also "
        "need a passkey check in the last five minutes (401 `step-up-required`)."
    )


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem. The `type` is stable; the other members are for people.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {
            "type": "string",
            "format": "uri-reference",
            "description": "relative to the request's URL (RFC 9457 3.1.1): a page saying what it means",
            "examples": [PROBLEM_BASE + "validation-failed"],
        },
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "the fields at fault (validation problems), never their values",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
        "retry_after": {"type": "number", "description": "seconds to wait (also in `Retry-After`)"},
    },
    "additionalProperties": True,
}

OPERATION_OUTCOME_SCHEMA: dict[str, Any] = {
    "title": "OperationOutcome",
    "description": "FHIR R4 OperationOutcome: the problem's type in each issue's `details.coding`.",
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"enum": ["fatal", "error", "warning", "information"]},
                    "code": {"type": "string"},
                    "details": {"type": "object"},
                    "diagnostics": {"type": "string"},
                    "expression": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}

FHIR_RESOURCE_SCHEMA: dict[str, Any] = {
    "title": "FhirResource",
    "description": "A FHIR R4 resource in JSON (the operation names which).",
    "type": "object",
    "required": ["resourceType"],
    "properties": {"resourceType": {"type": "string"}},
    "additionalProperties": True,
}

_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/v1/rights-checks"): {
        "request": {
            "amc_number": "12345678",
            "member_number": "M000123",
            "nir": "1 84 12 75 108 042 31",
            "birth_date": "1984-12-03",
            "care_domains": ["PHAR"],
        },
        "response": {
            "check_id": "0b7f2a4e-6c1d-4e0f-9a53-2f1d8c3b9e41",
            "status": "covered",
            "care_date": "2026-03-02",
            "valid_from": "2026-01-01",
            "valid_to": "2026-12-31",
            "amc_number": "12345678",
            "product_code": "CONFORT-2",
            "domains": [
                {
                    "care_domain": "PHAR",
                    "covered": True,
                    "formula": {
                        "brss_rate_pct": 100,
                        "flat_amount_cents": 0,
                        "yearly_ceiling_cents": None,
                        "sante_100_class_a": False,
                        "class_b_ceiling_cents": None,
                    },
                    "remaining_ceiling_cents": None,
                    "third_party_payment": True,
                    "prior_approval_required": False,
                }
            ],
            "expires_at": "2026-03-02T23:59:59Z",
        },
    },
}


@dataclass(frozen=True)
class RouteNeeds:
    """What a route's dependencies demand of a caller, read from its dependency tree."""

    public: bool
    authenticated: bool
    permissions: tuple[str, ...]
    practice: bool
    staff: bool
    step_up: bool
    guarded: bool

    @property
    def token_allowed(self) -> bool:
        """Practice software's DPoP token can reach it: a practice route, or care permissions only."""
        if self.staff:
            return False
        return self.practice or (bool(self.permissions) and all(p.startswith(TOKEN_SCOPE) for p in self.permissions))

    def insurer_client_allowed(self, path: str) -> bool:
        """An insurer's API client's DPoP token can reach it, given the scope that grants it."""
        granted = bool(self.permissions) and set(self.permissions) <= INSURER_CLIENT_PERMISSIONS
        return self.staff and path.startswith(INSURER_API_PREFIX) and granted


def _name(call: Callable[..., Any] | None) -> str:
    if call is None:
        return ""
    target: Any = call if hasattr(call, "__qualname__") else type(call)
    return f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}"


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    for dep in dependant.dependencies:
        yield dep.call
        yield from _calls(dep)


def api_routes(app: FastAPI) -> Iterator[Any]:
    """The app's API routes in the schema, as mounted: FastAPI keeps included routers as branches,
    whose routes carry the including routers' dependencies and prefixes in a route context."""
    contexts = getattr(routing, "iter_route_contexts", None)
    found: Iterator[Any] = contexts(app.routes) if contexts is not None else iter(app.routes)
    for route in found:
        original = getattr(route, "original_route", route)
        if isinstance(original, APIRoute) and route.include_in_schema:
            yield route


def route_needs(route: Any) -> RouteNeeds:
    names: set[str] = set()
    permissions: list[str] = []
    for call in _calls(route.dependant):
        name = _name(call)
        names.add(name)
        if name == PERMISSION_CHECK:
            permissions.extend(str(p) for p in getattr(call, "permissions", ()))
    return RouteNeeds(
        public=PUBLIC in names,
        authenticated=AUTHENTICATED in names,
        permissions=tuple(permissions),
        practice=PRACTICE_CALLER in names,
        staff=STAFF_CALLER in names,
        step_up=RECENT_PASSKEY in names,
        guarded=bool(GUARDS & names),
    )


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
_WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "how to authenticate: `DPoP`", "schema": {"type": "string"}}}


def _header(name: str, *, required: bool, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "description": description, "schema": schema}


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s and not s.startswith("{")]


class _Operation:
    """One operation of the document, and what its route's dependencies add to it."""

    def __init__(self, op: dict[str, Any], *, method: str, path: str, needs: RouteNeeds) -> None:
        self.op = op
        self.method = method
        self.path = path
        self.needs = needs
        self.fhir = path == "/fhir" or path.startswith("/fhir/")
        self.responses: dict[str, Any] = op.setdefault("responses", {})
        params: list[dict[str, Any]] = op.get("parameters", [])
        self.has_path = any(p.get("in") == "path" for p in params)
        self.has_body = "requestBody" in op or (self.fhir and method in {"post", "put"})
        self.has_input = bool(params) or self.has_body
        self.idempotent = any(p.get("in") == "header" and p.get("name") == IDEMPOTENCY_HEADER for p in params)
        self.segments = _segments(path)

    @property
    def media_type(self) -> str:
        return FHIR_JSON if self.fhir else PROBLEM_JSON

    def problem(self, code: int, description: str, types: list[str]) -> dict[str, Any]:
        listed = "\n".join(f"- `{t}`" for t in types)
        if self.fhir:
            schema = {"$ref": "#/components/schemas/OperationOutcome"}
            text = f"{description}. An OperationOutcome; the problem type is in its issue's `details.coding`"
            media: dict[str, Any] = {"schema": schema}
        else:
            text = f"{description}. Problem types"
            media = {"schema": {"$ref": "#/components/schemas/Problem"}}
            if types:
                media["example"] = {"type": types[0], "title": description, "status": code}
        return {"description": f"{text}:\n{listed}" if types else description, "content": {self.media_type: media}}

    def add(self, code: int, description: str, types: list[str], headers: dict[str, Any] | None = None) -> None:
        key = str(code)
        fresh = self.problem(code, description, types)
        existing = self.responses.get(key)
        if existing is None:
            self.responses[key] = fresh
        else:
            # The route's own description and examples stay; the body is the problem's.
            content = existing.get("content") or {}
            examples = {k: v for media in content.values() for k, v in media.items() if k in {"example", "examples"}}
            existing["content"] = fresh["content"]
            if examples:
                existing["content"][self.media_type].pop("example", None)
                existing["content"][self.media_type].update(examples)
            said = existing.get("description", "")
            if types and not all(t in said for t in types):
                existing["description"] = f"{said}\n\n{fresh['description']}" if said else fresh["description"]
        if headers:
            self.responses[key].setdefault("headers", {}).update(headers)

    def parameter(self, parameter: dict[str, Any]) -> None:
        params: list[dict[str, Any]] = self.op.setdefault("parameters", [])
        for existing in params:
            if existing.get("in") == "header" and existing.get("name", "").lower() == parameter["name"].lower():
                existing.update(parameter)
                return
        params.append(parameter)

    # -- what the dependencies add ----------------------------------------------------------------

    def credentials(self) -> None:
        needs = self.needs
        if needs.public or not needs.authenticated:
            if needs.public and self.method in _BODY_METHODS:
                self.add(403, "A browser's request from another site", _types("csrf-refused"))
            return
        token = needs.token_allowed
        insurer_client = needs.insurer_client_allowed(self.path)
        dpop = token or insurer_client
        self.op["security"] = [{"dpop": []}, {"portalSession": []}] if dpop else [{"portalSession": []}]
        unauthenticated = ["unauthenticated"]
        forbidden = ["permission-denied", "csrf-refused"]
        if dpop:
            self.parameter(
                _header(
                    "DPoP",
                    required=False,
                    description="with the `dpop` scheme, required: a fresh DPoP proof (RFC 9449) for this request",
                    schema={"type": "string"},
                )
            )
            unauthenticated += [
                "invalid-token",
                "token-expired",
                "invalid-dpop-proof",
                "client-revoked",
                "client-expired",
            ]
            forbidden.append("client-suspended")
        if insurer_client:
            self.op["description"] = (
                self.op.get("description", "") + "\n\nAlso open to the insurer's API clients whose scopes grant it "
                "(a DPoP-bound token, no `X-Acting-RPPS`)."
            ).strip()
        if token:
            self.parameter(
                _header(
                    ACTING_RPPS_HEADER,
                    required=False,
                    description="with the `dpop` scheme, required: the RPPS of the professional the software acts for",
                    schema={"type": "string", "pattern": "^[0-9]{11}$"},
                )
            )
            forbidden += ["acting-professional-refused", "practice-suspended"]
        if needs.step_up:
            unauthenticated.append("step-up-required")
        if needs.guarded:
            forbidden += ["access-suspended", "checks-refused", "step-up-required"]
        self.add(401, "Not authenticated", _types(*unauthenticated), _WWW_AUTHENTICATE)
        self.add(403, "Not allowed", _types(*forbidden))
        if needs.staff and "{insurer_id}" in self.path:
            self.has_path = True  # another insurer's id answers "not found"

    def own_problems(self) -> None:
        for code, description, slugs in _OWN_PROBLEMS.get(self.path, ()):
            self.add(code, description, _types(*slugs), _RETRY_AFTER if code == 429 else None)

    def request_problems(self) -> None:
        found = [slug for s in self.segments for slug in _NOT_FOUND_BY_SEGMENT.get(s, ())] if self.has_path else []
        if self.has_body and self.needs.authenticated:
            found += [slug for s in self.segments for slug in _CITED_BY_SEGMENT.get(s, ()) if slug not in found]
        if self.has_path or found:
            self.add(404, "Not found, or not yours (the same answer)", _types("not-found", *found))
        if self.has_input:
            invalid = ["validation-failed", "idempotency-key-reused"] if self.idempotent else ["validation-failed"]
            if any(p.get("in") == "query" and p.get("name") == "cursor" for p in self.op.get("parameters", [])):
                invalid.append("cursor-invalid")
            if self.fhir and self.method in {"post", "put"}:
                invalid.append("fhir-resource-invalid")
            if self.method in _BODY_METHODS:
                invalid += self._by_segment(_INVALID_BY_SEGMENT)
                invalid += self._by_segment(_CARE_INVALID_BY_SEGMENT) if self.needs.practice else []
            self.add(422, "The request is not valid: the fields at fault, never their values", _types(*invalid))
        unreadable = ["fhir-body-unreadable"] if self.fhir else ["malformed-request"]
        if self.idempotent:
            self.add(
                400,
                "The body could not be read, or no Idempotency-Key",
                _types(*unreadable, "idempotency-key-required"),
            )
        elif self.has_body:
            self.add(400, "The body could not be read", _types(*unreadable))
        if self.fhir:
            if self.method in {"post", "put"}:
                self.add(415, "Only FHIR JSON is read", _types("fhir-media-unsupported"))
            self.add(406, "Only FHIR JSON is written", _types("fhir-format-unsupported"))

    def _by_segment(self, table: Mapping[str, tuple[str, ...]]) -> list[str]:
        return [slug for s in self.segments for slug in table.get(s, ())]

    def state_problems(self) -> None:
        """What a caller is refused for who they are or what the resource's state is."""
        if not self.needs.authenticated:
            return
        if self.method in _BODY_METHODS:
            forbidden = self._by_segment(_FORBIDDEN_BY_SEGMENT)
            if forbidden and self.needs.practice:
                self.add(403, "Not allowed", _types(*forbidden))
            conflicts = self._by_segment(_CONFLICTS_BY_SEGMENT)
            if conflicts:
                self.add(409, "Conflicts with the resource's state", _types(*conflicts))
        refused = self._by_segment(_REFUSED_BY_SEGMENT)
        if refused:
            self.add(403, "Not allowed", _types(*refused))

    def idempotency(self) -> None:
        if not self.idempotent:
            return
        required = (self.method, self.path) not in _OPTIONAL_IDEMPOTENCY
        self.parameter(
            _header(
                IDEMPOTENCY_HEADER,
                required=required,
                description=("required" if required else "optional")
                + ": a key of your choosing (a UUID is fine); the same key twice returns the first "
                "result (200, with `Idempotent-Replayed: true`), the same key for another request is refused",
                schema={"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9._:-]+$"},
            )
        )
        created = self.responses.get("201")
        if created is not None and "200" not in self.responses:
            replay = copy.deepcopy(created)
            replay["description"] = "The first result for this Idempotency-Key, replayed"
            replay["headers"] = {
                REPLAYED_HEADER: {"description": "`true`", "schema": {"type": "string", "const": "true"}}
            }
            self.responses["200"] = replay

    def availability(self) -> None:
        # A route that records who saw what refuses rather than answer unrecorded (fail closed).
        unlogged = ["access-log-unavailable"] if self.needs.authenticated else []
        if self.needs.guarded:
            self.add(429, "Slow down", _types("slow-down", "identity-locked"), _RETRY_AFTER)
            switched_off = ["channel-disconnected", "counter-store-unavailable", "server-busy", *unlogged]
            self.add(503, "The channel is switched off, or detection cannot count", _types(*switched_off), _RETRY_AFTER)
        else:
            self.add(503, "The server is busy", _types("server-busy", *unlogged), _RETRY_AFTER)
        self.add(500, "Unexpected error: nothing was changed", _types("internal-error"))

    def fhir_media(self) -> None:
        if not self.fhir:
            return
        for code, response in self.responses.items():
            content = response.get("content")
            if code.startswith("2") and content is not None:
                schema = next((m.get("schema") for m in content.values() if m.get("schema")), None)
                response["content"] = {FHIR_JSON: {"schema": schema or {"$ref": "#/components/schemas/FhirResource"}}}
        if self.method in {"post", "put"}:
            self.op["requestBody"] = {
                "required": True,
                "content": {FHIR_JSON: {"schema": {"$ref": "#/components/schemas/FhirResource"}}},
            }

    def declared_errors(self) -> None:
        """The refusals a route declared itself (its miss, say), given the problem's body."""
        for code, response in list(self.responses.items()):
            if not code.startswith(("4", "5")) or "schema" in (response.get("content") or {}).get(self.media_type, {}):
                continue
            shown = [m.get("example") for m in (response.get("content") or {}).values()]
            types = [e["type"] for e in shown if isinstance(e, dict) and isinstance(e.get("type"), str)]
            self.add(int(code), response.get("description", ""), types)

    def examples(self) -> None:
        example = _EXAMPLES.get((self.method, self.path))
        if example is None:
            return
        body = self.op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            body["example"] = example["request"]
        ok = self.responses.get("200", {}).get("content", {}).get("application/json")
        if ok is not None:
            ok["example"] = example["response"]


def _describe_operation(op: dict[str, Any], *, method: str, path: str, needs: RouteNeeds) -> None:
    operation = _Operation(op, method=method, path=path, needs=needs)
    operation.credentials()
    operation.own_problems()
    operation.request_problems()
    operation.state_problems()
    operation.idempotency()
    operation.availability()
    operation.declared_errors()
    operation.fhir_media()
    operation.examples()


def _replace_framework_422(node: Any) -> Any:
    """Every reference to FastAPI's own 422 body, pointed at the problem it really is."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.rsplit("/", 1)[-1] in _FRAMEWORK_422:
            return {"$ref": "#/components/schemas/Problem"}
        return {k: _replace_framework_422(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_framework_422(v) for v in node]
    return node


def _generated(app: FastAPI) -> dict[str, Any]:
    with warnings.catch_warnings():
        # A route on two methods (GET and HEAD) gets one operation id twice: renamed below.
        warnings.filterwarnings("ignore", message="Duplicate Operation ID", category=UserWarning)
        return get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
            servers=app.servers,
        )


def _session_cookie(app: FastAPI) -> str:
    runtime = getattr(app.state, "runtime", None)
    settings = getattr(runtime, "settings", None)
    secure = getattr(settings, "cookies_secure", True)
    return SESSION_COOKIE if secure else SESSION_COOKIE_PLAIN


def truthful_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, with what FastAPI cannot see written in; built once."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = _generated(app)
    cookie = _session_cookie(app)
    paths: dict[str, Any] = schema.get("paths", {})
    for route in api_routes(app):
        operations = paths.get(route.path_format, {})
        needs = route_needs(route)
        for method in sorted(m.lower() for m in route.methods):
            op = operations.get(method)
            if op is not None:
                _describe_operation(op, method=method, path=route.path_format, needs=needs)
    truthful: dict[str, Any] = _replace_framework_422(schema)
    schema = truthful
    seen: set[str] = set()
    for operations in schema.get("paths", {}).values():
        for method, op in operations.items():
            operation_id = op.get("operationId")
            if operation_id in seen:
                op["operationId"] = f"{operation_id}_{method}"
            seen.add(op.get("operationId", ""))
            for response in op.get("responses", {}).values():
                content = response.get("content", {})
                # FastAPI's declared 422 said application/json; the answer is problem+json.
                if "application/json" in content and content["application/json"].get("schema") == {
                    "$ref": "#/components/schemas/Problem"
                }:
                    content.setdefault(PROBLEM_JSON, content.pop("application/json"))
    components: dict[str, Any] = schema.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    for name in _FRAMEWORK_422:
        schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["OperationOutcome"] = OPERATION_OUTCOME_SCHEMA
    schemas["FhirResource"] = FHIR_RESOURCE_SCHEMA
    components["securitySchemes"] = {
        "dpop": {"type": "http", "scheme": "DPoP", "description": DPOP_DESCRIPTION},
        "portalSession": {
            "type": "apiKey",
            "in": "cookie",
            "name": cookie,
            "description": _session_description(cookie),
        },
    }
    app.openapi_schema = schema
    return schema
