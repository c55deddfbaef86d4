"""The FHIR facade's wire: its CapabilityStatement and code systems are valid R4 resources in
``application/fhir+json``, every error is an OperationOutcome with the status of the problem, and a
body that is not a valid resource is refused naming the path at fault, never the value sent."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.operationoutcome import OperationOutcome

from rempart.claims.models import ClaimReason
from rempart.fhir.parse import FhirBodyUnreadable, FhirResourceInvalid, read_resource
from rempart.web.fhir_wire import FHIR_JSON


def test_the_capability_statement_is_a_valid_r4_resource_naming_how_to_authenticate(app: FastAPI) -> None:
    answer = TestClient(app).get("/fhir/metadata")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(FHIR_JSON)
    statement = CapabilityStatement.model_validate(answer.json())
    assert statement.fhirVersion == "4.0.1"
    assert statement.format == ["application/fhir+json"]
    rest = statement.rest[0]
    assert "private_key_jwt" in rest.security.description
    assert "DPoP" in rest.security.description
    assert {r.type for r in rest.resource} >= {"CoverageEligibilityRequest", "Claim", "ClaimResponse"}


def test_the_claim_reason_codes_are_published_at_their_url(app: FastAPI) -> None:
    answer = TestClient(app).get("/fhir/CodeSystem/claim-reason")

    system = CodeSystem.model_validate(answer.json())
    assert system.url == "https://rempart.example/fhir/CodeSystem/claim-reason"
    assert {c.code for c in system.concept} == {r.value for r in ClaimReason}


@pytest.mark.parametrize(
    ("path", "headers", "status", "issue"),
    [
        ("/fhir/CodeSystem/nope", {}, 404, "not-found"),
        ("/fhir/Nothing", {}, 404, "not-found"),
        ("/fhir/metadata?_format=xml", {}, 406, "not-supported"),
        ("/fhir/metadata", {"accept": "application/fhir+xml"}, 406, "not-supported"),
    ],
)
def test_every_error_is_an_operation_outcome(
    app: FastAPI, path: str, headers: dict[str, str], status: int, issue: str
) -> None:
    answer = TestClient(app).get(path, headers=headers)

    assert answer.status_code == status
    assert answer.headers["content-type"].startswith(FHIR_JSON)
    outcome = OperationOutcome.model_validate(answer.json())
    assert outcome.issue[0].code == issue
    assert outcome.issue[0].severity == "error"


def test_json_is_served_to_whoever_accepts_it(app: FastAPI) -> None:
    client = TestClient(app)
    for accept in ("application/fhir+json", "application/json", "*/*", "text/html, */*;q=0.8"):
        assert client.get("/fhir/metadata", headers={"accept": accept}).status_code == 200, accept
    assert client.get("/fhir/metadata?_format=json").status_code == 200


def test_a_body_that_is_not_a_resource_is_refused_naming_the_path_not_the_value() -> None:
    with pytest.raises(FhirBodyUnreadable):
        read_resource(b"{not json", Claim)
    with pytest.raises(FhirResourceInvalid) as wrong_type:
        read_resource(b'{"resourceType": "Patient"}', Claim)
    with pytest.raises(FhirResourceInvalid) as invalid:
        read_resource(b'{"resourceType": "Claim", "status": "active", "item": [{"sequence": "1850-OPTIQUE"}]}', Claim)

    assert wrong_type.value.extra["errors"] == [{"field": "resourceType", "reason": "must be Claim"}]
    fields = {e["field"] for e in invalid.value.extra["errors"]}
    assert "Claim.item[0].sequence" in fields
    assert "Claim.patient" in fields
    assert "1850-OPTIQUE" not in str(invalid.value.extra)
