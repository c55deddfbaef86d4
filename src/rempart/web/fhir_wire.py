"""The FHIR facade's wire: ``application/fhir+json`` in and out, and every error as an
``OperationOutcome`` (HL7 FHIR R4) carrying the problem's status, type and words.

Request plumbing only: it knows the media types and how a problem (RFC 9457, as the rest of the API
answers) reads as an OperationOutcome; the resources themselves are the ``rempart.fhir`` domain's.
The facade speaks JSON only: a request for XML (``_format=xml``, ``Accept: application/fhir+xml``)
gets a 406 OperationOutcome, not a JSON body it did not ask for.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fhir.resources.R4B.operationoutcome import OperationOutcome

FHIR_JSON = "application/fhir+json"
FHIR_PREFIX = "/fhir"
# What ``_format`` may say for JSON (FHIR R4 §3.1.0.1.6), and the media types a client may accept.
_JSON_FORMATS = frozenset({"json", "application/json", FHIR_JSON, "application/fhir+json; fhirversion=4.0"})
_XML_FORMATS = frozenset({"xml", "text/xml", "application/xml", "application/fhir+xml"})
_ACCEPTABLE = ("application/fhir+json", "application/json", "application/*", "*/*")
# The system of an issue's problem-type code. A problem's ``type`` is relative (``/problems/<slug>``),
# and a Coding's system must be an absolute URI: the slugs are a code system of the facade's own
# namespace, served at /fhir/CodeSystem/problem-type (``rempart.fhir.codes``).
PROBLEM_TYPES_SYSTEM = "https://rempart.example/fhir/CodeSystem/problem-type"

# OperationOutcome.issue.code (the IssueType value set) for each HTTP status the API answers with.
_ISSUE_CODE = {
    400: "structure",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    428: "required",
    429: "throttled",
    503: "transient",
}


def is_fhir_path(path: str) -> bool:
    return path == FHIR_PREFIX or path.startswith(FHIR_PREFIX + "/")


def asks_for_xml(request: Request) -> bool:
    """The caller wants XML only: ``_format`` says so, or ``Accept`` names no JSON type we serve."""
    wanted = request.query_params.get("_format", "").strip().lower()
    if wanted:
        return wanted in _XML_FORMATS or wanted not in _JSON_FORMATS
    accept = request.headers.get("accept", "").lower()
    if not accept:
        return False
    return not any(kind in accept for kind in _ACCEPTABLE)


def fhir_response(resource: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A resource (a ``fhir.resources`` model or its dict) as ``application/fhir+json``."""
    if hasattr(resource, "model_dump_json"):
        body = resource.model_dump_json(exclude_none=True)
    else:
        body = json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status_code=status_code, media_type=FHIR_JSON, headers=headers)


def outcome(status: int, problem: dict[str, Any]) -> OperationOutcome:
    """The problem as an OperationOutcome: one issue per field at fault (its FHIRPath in
    ``expression``), or one for the whole request; the problem's type as the issue's coding."""
    code = _ISSUE_CODE.get(status, "exception" if status >= 500 else "processing")
    severity = "fatal" if status >= 500 else "error"
    details: dict[str, Any] = {
        "coding": [{"system": PROBLEM_TYPES_SYSTEM, "code": _slug(problem)}],
        "text": str(problem.get("title", "")),
    }
    issues: list[dict[str, Any]] = []
    for error in problem.get("errors") or []:
        field = str(error.get("field", "")).strip()
        issue = {
            "severity": severity,
            "code": code,
            "details": details,
            "diagnostics": str(error.get("reason", "invalid")),
        }
        if field:
            issue["expression"] = [field]
        issues.append(issue)
    if not issues:
        issues.append(
            {"severity": severity, "code": code, "details": details, "diagnostics": str(problem.get("detail", ""))}
        )
    return OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": issues})


def outcome_response(status: int, problem: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return fhir_response(outcome(status, problem), status, headers)


def _slug(problem: dict[str, Any]) -> str:
    return str(problem.get("type", "")).rsplit("/", 1)[-1] or "error"
