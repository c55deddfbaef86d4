"""Fuzzing the FHIR facade's way in: whatever a body holds — any JSON value, bytes that are not
JSON, a valid Claim or CoverageEligibilityRequest with an element removed, added, retyped or
replaced, nesting deeper than a parser's stack — ``read_resource`` answers the resource or one of
its two refusals, never another exception and never the value sent; and over HTTP, with practice
software's real DPoP credentials, the facade never answers a 5xx: every refusal is a valid
OperationOutcome, every acceptance the resource the route promises.

Bounded (``EXAMPLES`` per test, no deadline); each test prints how many bodies it sent."""

from __future__ import annotations

import importlib
import importlib.util
import json
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.coverageeligibilityrequest import CoverageEligibilityRequest
from fhir.resources.R4B.coverageeligibilityresponse import CoverageEligibilityResponse
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rempart.errors import RempartError
from rempart.fhir.identifiers import AMC_NUMBER, INS_NIR, MEMBER_NUMBER, RIGHTS_CHECK, RPPS
from rempart.fhir.parse import FhirBodyUnreadable, FhirResourceInvalid, read_resource
from rempart.runtime import Runtime
from rempart.web.fhir_wire import FHIR_JSON
from tests.factories import TODAY
from tests.support.practice_client import PracticeClient

EXAMPLES = 400
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
# A value the fuzzer puts into bodies: no refusal may quote it back.
SENTINEL = "ZQXSENTINEL"
# Deeper than Python's recursion limit: a parser that recurses must refuse it, not crash.
DEEP_ARRAY = b'{"resourceType": "Claim", "item": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"


def nested_contained(resource_type: str, depth: int) -> bytes:
    inner: dict[str, Any] = {"resourceType": resource_type}
    outer = inner
    for _ in range(depth):
        outer = {"resourceType": resource_type, "contained": [outer]}
    return json.dumps(outer).encode()


# -- valid resources to mutate ----------------------------------------------------------------------

CLAIM: dict[str, Any] = {
    "resourceType": "Claim",
    "id": "fuzz",
    "contained": [
        {
            "resourceType": "Patient",
            "id": "patient",
            "identifier": [{"system": INS_NIR, "value": "180017512345678"}],
            "birthDate": "1980-01-01",
        },
        {"resourceType": "Practitioner", "id": "pro", "identifier": [{"system": RPPS, "value": "10000000007"}]},
    ],
    "status": "active",
    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "pharmacy"}]},
    "use": "claim",
    "patient": {"reference": "#patient"},
    "created": TODAY.isoformat(),
    "provider": {"reference": "#pro"},
    "priority": {"coding": [{"code": "normal"}]},
    "careTeam": [{"sequence": 1, "provider": {"reference": "#pro"}}],
    "supportingInfo": [
        {
            "sequence": 1,
            "category": {"coding": [{"code": "rights-check"}]},
            "valueReference": {"identifier": {"system": RIGHTS_CHECK, "value": str(uuid.UUID(int=1))}},
        }
    ],
    "insurance": [
        {
            "sequence": 1,
            "focal": True,
            "coverage": {"type": "Coverage", "identifier": {"system": MEMBER_NUMBER, "value": "M0001"}},
        }
    ],
    "item": [
        {
            "sequence": 1,
            "careTeamSequence": [1],
            "category": {"coding": [{"code": "PHAR"}]},
            "productOrService": {"coding": [{"code": "3400930000001"}]},
            "servicedDate": TODAY.isoformat(),
            "quantity": {"value": 1},
            "unitPrice": {"value": 10.0, "currency": "EUR"},
            "net": {"value": 10.0, "currency": "EUR"},
        }
    ],
    "total": {"value": 10.0, "currency": "EUR"},
}

ELIGIBILITY: dict[str, Any] = {
    "resourceType": "CoverageEligibilityRequest",
    "contained": [
        {
            "resourceType": "Patient",
            "id": "patient",
            "identifier": [{"system": INS_NIR, "value": "180017512345678"}],
            "birthDate": "1980-01-01",
            "multipleBirthInteger": 1,
        },
        {"resourceType": "Organization", "id": "amc", "identifier": [{"system": AMC_NUMBER, "value": "88450101"}]},
        {
            "resourceType": "Coverage",
            "id": "coverage",
            "status": "active",
            "identifier": [{"system": MEMBER_NUMBER, "value": "M0001"}],
            "beneficiary": {"reference": "#patient"},
            "payor": [{"reference": "#amc"}],
        },
    ],
    "status": "active",
    "purpose": ["validation", "benefits"],
    "patient": {"reference": "#patient"},
    "created": TODAY.isoformat(),
    "provider": {"identifier": {"system": RPPS, "value": "10000000007"}},
    "insurer": {"reference": "#amc"},
    "insurance": [{"focal": True, "coverage": {"reference": "#coverage"}}],
    "item": [{"category": {"coding": [{"code": "PHAR"}]}}],
}

SEEDS: dict[str, tuple[dict[str, Any], type[Any]]] = {
    "Claim": (CLAIM, Claim),
    "CoverageEligibilityRequest": (ELIGIBILITY, CoverageEligibilityRequest),
}


def test_the_seeds_are_valid_r4_resources() -> None:
    for seed, model in SEEDS.values():
        assert read_resource(json.dumps(seed).encode(), model) is not None


# -- strategies -----------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["", SENTINEL, "2026-02-30", "1e309", "#patient", "Claim", "EUR", "\x00", "\ud7ff"])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*here, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*here, index))
    return found


def _replaced(value: Any, path: tuple[Any, ...], change: Callable[[Any], Any]) -> Any:
    """``value`` with what is at ``path`` given to ``change`` (its answer ``_REMOVE`` removes it)."""
    if not path:
        return change(value)
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    head, rest = path[0], path[1:]
    inner = _replaced(copy[head], rest, change)
    if inner is _REMOVE:
        del copy[head]
    else:
        copy[head] = inner
    return copy


_REMOVE = object()


@st.composite
def mutated(draw: st.DrawFn, seed: dict[str, Any]) -> Any:
    """The seed after one to four changes: an element removed, replaced, retyped, one added, or
    a list emptied or repeated."""
    resource: Any = seed
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(resource)
        path = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(["remove", "replace", "sentinel", "add", "stringify", "repeat"]))
        if how == "remove" and path:
            resource = _replaced(resource, path, lambda _old: _REMOVE)
        elif how == "replace":
            new = draw(json_values)
            resource = _replaced(resource, path, lambda _old, new=new: new)
        elif how == "sentinel":
            resource = _replaced(resource, path, lambda _old: SENTINEL)
        elif how == "add":
            key, new = draw(st.text(max_size=12)), draw(json_values)
            resource = _replaced(
                resource, path, lambda old, key=key, new=new: {**old, key: new} if isinstance(old, dict) else old
            )
        elif how == "stringify":
            resource = _replaced(resource, path, lambda old: json.dumps(old) if not isinstance(old, str) else [old])
        elif how == "repeat":
            resource = _replaced(resource, path, lambda old: [old, old] if not isinstance(old, list) else old * 2)
    return resource


def encoded(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


bodies = st.one_of(
    json_values.map(encoded),
    st.binary(max_size=200),
    mutated(CLAIM).map(encoded),
    mutated(ELIGIBILITY).map(encoded),
    st.sampled_from([b"", b"null", b"[]", b"{}", b'{"resourceType": null}', b"\xff\xfe{", b"NaN"]),
)


# -- (1) the parser -------------------------------------------------------------------------------


def refusal_of(body: bytes, model: type[Any]) -> RempartError | None:
    try:
        read_resource(body, model)
    except (FhirBodyUnreadable, FhirResourceInvalid) as refused:
        return refused
    return None


def check_refusal(refused: RempartError | None) -> None:
    if refused is None:
        return
    problem = json.dumps(refused.problem())
    assert SENTINEL not in problem, problem  # names the path, never the value
    for error in refused.extra.get("errors", []):
        assert isinstance(error["field"], str)
        assert isinstance(error["reason"], str)


@pytest.mark.parametrize("resource_type", sorted(SEEDS))
def test_the_parser_answers_a_resource_or_its_refusal_whatever_the_body(
    resource_type: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed, model = SEEDS[resource_type]
    sent: list[bytes] = []
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(body=st.one_of(bodies, mutated(seed).map(encoded)))
    def parse(body: bytes) -> None:
        sent.append(body)
        refused = refusal_of(body, model)
        outcomes[type(refused).__name__ if refused else "valid"] += 1
        check_refusal(refused)

    parse()
    with capsys.disabled():
        print(f"\n[fuzz] read_resource({resource_type}): {len(sent)} bodies, {dict(outcomes)}")
    assert len(sent) >= EXAMPLES // 2


@pytest.mark.parametrize("resource_type", sorted(SEEDS))
@pytest.mark.parametrize("depth", ["array", "contained"])
def test_nesting_deeper_than_the_stack_is_refused_not_a_crash(resource_type: str, depth: str) -> None:
    """JSON's decoder and pydantic's validator both recurse: a body nested past Python's recursion
    limit (well within the 256 KiB a body may weigh) must be a refusal, not a RecursionError."""
    _seed, model = SEEDS[resource_type]
    body = (
        DEEP_ARRAY.replace(b"Claim", resource_type.encode())
        if depth == "array"
        else nested_contained(resource_type, 300)
    )

    check_refusal(refusal_of(body, model))


# -- (2) over HTTP --------------------------------------------------------------------------------

ROUTERS = ("rempart.fhir.claims", "rempart.fhir.eligibility")
ANSWERS: dict[str, type[Any]] = {"Claim": ClaimResponse, "CoverageEligibilityRequest": CoverageEligibilityResponse}


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    """The app, with the facade's claims and eligibility routers where they exist and ``rempart.app``
    does not mount them yet; where they do not exist, the posts meet the facade's 404/405."""
    served = {getattr(route, "path", None) for route in app.routes}
    for name in ROUTERS:
        if importlib.util.find_spec(name) is None:
            continue
        router = importlib.import_module(name).router
        if not {getattr(route, "path", None) for route in router.routes} & served:
            app.include_router(router)
    return app


@pytest.mark.parametrize("resource_type", sorted(SEEDS))
def test_the_facade_never_fails_whatever_the_body_and_answers_operation_outcomes(
    app: FastAPI, runtime: Runtime, resource_type: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed, _model = SEEDS[resource_type]
    practice = PracticeClient.register(app, runtime)
    practice.token()
    path = f"/fhir/{resource_type}"
    statuses: Counter[int] = Counter()

    @FUZZ
    @given(body=st.one_of(bodies, mutated(seed).map(encoded), mutated(seed).map(encoded)))
    @example(body=encoded(seed))
    def post(body: bytes) -> None:
        answer = practice.post(
            path, content=body, headers={"content-type": FHIR_JSON, "Idempotency-Key": uuid.uuid4().hex}
        )
        statuses[answer.status_code] += 1
        assert answer.status_code < 500, answer.text
        assert answer.headers["content-type"].startswith(FHIR_JSON), answer.headers
        data = answer.json()
        if answer.status_code < 300:
            ANSWERS[resource_type].model_validate(data)
        else:
            outcome = OperationOutcome.model_validate(data)
            assert outcome.issue
            assert SENTINEL not in answer.text

    post()
    with capsys.disabled():
        print(f"\n[fuzz] POST {path}: {statuses.total()} requests, statuses {dict(sorted(statuses.items()))}")
    assert statuses.total() >= EXAMPLES // 2


@pytest.mark.parametrize("resource_type", sorted(SEEDS))
def test_a_body_nested_past_the_stack_is_an_operation_outcome_over_http(
    app: FastAPI, runtime: Runtime, resource_type: str
) -> None:
    practice = PracticeClient.register(app, runtime)
    deep = DEEP_ARRAY.replace(b"Claim", resource_type.encode())

    for body in (deep, nested_contained(resource_type, 300)):
        answer = practice.post(
            f"/fhir/{resource_type}",
            content=body,
            headers={"content-type": FHIR_JSON, "Idempotency-Key": uuid.uuid4().hex},
        )

        assert answer.status_code < 500, answer.text
        assert OperationOutcome.model_validate(answer.json()).issue


@pytest.mark.parametrize("resource_type", sorted(SEEDS))
def test_a_contained_resource_of_an_unknown_type_is_refused_not_a_crash(resource_type: str) -> None:
    """What the fuzzer found first: fhir.resources looks the contained type up and raises a KeyError."""
    seed, model = SEEDS[resource_type]
    body = {**seed, "contained": [{"resourceType": SENTINEL, "id": "patient"}]}

    check_refusal(refusal_of(encoded(body), model))
