"""Rights checks through the FHIR facade: a CoverageEligibilityRequest shaped like HL7's published
R4 example (French identifiers, contained Patient, Coverage and Organization) is answered with a
valid CoverageEligibilityResponse that says exactly what the native API says for the same patient,
and nobody's identity; every kind of miss is the same OperationOutcome, byte for byte; bad input is
a 422 naming the FHIRPath at fault, never the value; the access log records the check as the
native one, under the channel ``fhir``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fhir.resources.R4B.coverageeligibilityrequest import CoverageEligibilityRequest
from fhir.resources.R4B.coverageeligibilityresponse import CoverageEligibilityResponse
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy import select

from rempart.audit.models import AccessEvent, Channel, Outcome
from rempart.eligibility.models import RightsCheck
from rempart.eligibility.service import DomainRights, NoMatchingRights, RightsAnswer
from rempart.fhir.eligibility import (
    BENEFIT_TYPES,
    CARE_DOMAINS,
    HL7_BENEFIT_TYPES,
    SANTE_100_CLASS_A,
    THIRD_PARTY_PAYMENT,
    eligibility_response,
    router,
)
from rempart.fhir.identifiers import AMC_NUMBER, INS_NIR, MEMBER_NUMBER, RIGHTS_CHECK, RPPS
from rempart.insurers.models import CareDomain
from rempart.members.validation import MemberRecord
from rempart.pricing.engine import Formula
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from rempart.web.fhir_wire import FHIR_JSON, outcome
from tests.e2e.scan import identities_in
from tests.eligibility.world import World, build_world
from tests.factories import TODAY
from tests.support.clock import FakeClock
from tests.support.practice_client import PracticeClient

PATH = "/fhir/CoverageEligibilityRequest"
NATIVE = "/api/v1/rights-checks"


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    """The app, with the eligibility resource mounted if ``rempart.app`` does not mount it yet."""
    if PATH not in {getattr(route, "path", "") for route in app.routes}:
        app.include_router(router)
    return app


@pytest.fixture
def world(runtime: Runtime, population: list[MemberRecord]) -> World:
    built = build_world(runtime, members=20)
    population.extend(built.records)
    return built


@pytest.fixture
def fhir_seen() -> list[httpx.Response]:
    return []


@pytest.fixture(autouse=True)
def no_identity_in_fhir_responses(fhir_seen: list[httpx.Response], population: list[MemberRecord]) -> Iterator[None]:
    """The e2e recorder leaves ``/fhir`` out: every FHIR answer of the test is searched here, for the
    population's NIRs, names and dates of birth, and for FHIR's own identity elements."""
    yield
    allowed = {TODAY + timedelta(days=k) for k in range(-30, 400)}
    allowed |= {r.contract_start for r in population} | {r.contract_end for r in population if r.contract_end}
    leaks = []
    for answer in fhir_seen:
        leaks += identities_in(answer.content, population, allowed_dates=allowed)
        for element in ('"birthDate"', '"name"', '"gender"', '"address"', '"telecom"'):
            if element in answer.text:
                leaks.append(f"{element} in an answer")
        for system in (INS_NIR, MEMBER_NUMBER):
            if f'"system":"{system}"' in answer.text.replace(" ", ""):
                leaks.append(f"an identifier under {system} in an answer")
    assert not leaks, leaks


def fhir_request(
    world: World,
    record: MemberRecord,
    *,
    domains: tuple[str, ...] = (),
    purpose: tuple[str, ...] = ("validation", "benefits"),
    care_date: date | None = None,
    rpps: str = "10000000007",
    **card: Any,
) -> dict[str, Any]:
    """HL7's R4 example CoverageEligibilityRequest (coverageeligibilityrequest-example-2), adapted:
    the patient, their cover and the insurer contained, under the INS, member-number and AMC
    systems; the care domains as item categories. ``card`` overrides what the patient hands over."""
    said = {
        "nir": record.nir,
        "birth_date": record.birth_date.isoformat(),
        "birth_rank": record.birth_rank,
        "member_number": record.member_number,
        "amc_number": world.insurer.amc_number,
    }
    said.update(card)
    request: dict[str, Any] = {
        "resourceType": "CoverageEligibilityRequest",
        "id": "52346",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Demande de droits</div>'},
        "contained": [
            {
                "resourceType": "Patient",
                "id": "patient",
                "identifier": [{"use": "official", "system": INS_NIR, "value": said["nir"]}],
                "birthDate": said["birth_date"],
                "multipleBirthInteger": said["birth_rank"],
            },
            {
                "resourceType": "Organization",
                "id": "amc",
                "identifier": [{"system": AMC_NUMBER, "value": said["amc_number"]}],
            },
            {
                "resourceType": "Coverage",
                "id": "coverage",
                "status": "active",
                "identifier": [{"system": MEMBER_NUMBER, "value": said["member_number"]}],
                "beneficiary": {"reference": "#patient"},
                "payor": [{"reference": "#amc"}],
            },
        ],
        "identifier": [{"system": "https://logiciel-officine.example/demandes", "value": "52346"}],
        "status": "active",
        "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]},
        "purpose": list(purpose),
        "patient": {"reference": "#patient"},
        "created": TODAY.isoformat(),
        "provider": {"identifier": {"system": RPPS, "value": rpps}},
        "insurer": {"reference": "#amc"},
        "insurance": [{"focal": True, "coverage": {"reference": "#coverage"}}],
    }
    if care_date is not None:
        request["servicedDate"] = care_date.isoformat()
    if domains:
        request["item"] = [{"category": {"coding": [{"system": CARE_DOMAINS, "code": d}]}} for d in domains]
    return request


def native_request(world: World, record: MemberRecord, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "amc_number": world.insurer.amc_number,
        "member_number": record.member_number,
        "nir": record.nir,
        "birth_date": record.birth_date.isoformat(),
        "birth_rank": record.birth_rank,
    }
    fields.update(overrides)
    return fields


def post_fhir(practice: PracticeClient, resource: Any, seen: list[httpx.Response], **headers: str) -> httpx.Response:
    content = resource if isinstance(resource, bytes) else json.dumps(resource).encode()
    answer = practice.post(PATH, content=content, headers={"content-type": FHIR_JSON, **headers})
    seen.append(answer)
    return answer


def _cents(money: dict[str, Any]) -> int:
    assert money["currency"] == "EUR"
    return int(Decimal(str(money["value"])) * 100)


def native_view(answer: dict[str, Any]) -> dict[str, Any]:
    """What a FHIR answer says, written as the native API's answer (its check id and expiry apart)."""
    coverage = next(r for r in answer.get("contained", []) if r["resourceType"] == "Coverage")
    insurance = answer["insurance"][0]
    domains = []
    for item in insurance["item"]:
        [coding] = item["category"]["coding"]
        assert coding["system"] == CARE_DOMAINS
        covered = not item["excluded"]
        benefits = {b["type"]["coding"][0]["code"]: b for b in item.get("benefit", [])}
        flags = {e["url"]: e["valueBoolean"] for e in item.get("extension", [])}
        ceiling = benefits.get("benefit")
        class_b = benefits.get("class-b-ceiling")
        formula = (
            {
                "brss_rate_pct": benefits["brss-rate"]["allowedUnsignedInt"],
                "flat_amount_cents": _cents(benefits["flat-amount"]["allowedMoney"]),
                "yearly_ceiling_cents": _cents(ceiling["allowedMoney"]) if ceiling else None,
                "sante_100_class_a": flags[SANTE_100_CLASS_A],
                "class_b_ceiling_cents": _cents(class_b["allowedMoney"]) if class_b else None,
            }
            if covered
            else None
        )
        domains.append(
            {
                "care_domain": coding["code"],
                "covered": covered,
                "formula": formula,
                "remaining_ceiling_cents": _cents(ceiling["allowedMoney"]) - _cents(ceiling["usedMoney"])
                if ceiling
                else None,
                "third_party_payment": flags.get(THIRD_PARTY_PAYMENT, False),
                "prior_approval_required": item.get("authorizationRequired", False),
            }
        )
    return {
        "status": "covered" if insurance["inforce"] else "not_covered",
        "care_date": answer["servicedDate"],
        "valid_from": insurance["benefitPeriod"]["start"],
        "valid_to": insurance["benefitPeriod"].get("end"),
        "amc_number": answer["insurer"]["identifier"]["value"],
        "product_code": coverage["class"][0]["value"],
        "domains": domains,
    }


@pytest.mark.parametrize(
    ("profession", "domains"),
    [
        (Profession.OPTICIAN, ("OPTI",)),
        (Profession.HOSPITAL, ("HOSP", "CONS")),
        (Profession.HOSPITAL, ()),  # no item: every domain of the profession, as the native API does
        (Profession.PHARMACIST, ("PHAR",)),
    ],
)
def test_an_hl7_shaped_request_is_answered_as_the_native_api_answers(
    *,
    app: FastAPI,
    runtime: Runtime,
    world: World,
    fhir_seen: list[httpx.Response],
    clock: FakeClock,
    profession: Profession,
    domains: tuple[str, ...],
) -> None:
    practice = PracticeClient.register(app, runtime, profession=profession)
    for record in world.patients()[:3]:
        clock.advance(minutes=20)  # an optician's pace: three patients in a few minutes is a burst
        native = practice.post(NATIVE, json=native_request(world, record, care_domains=list(domains)))
        answer = post_fhir(practice, fhir_request(world, record, domains=domains, rpps=practice.rpps), fhir_seen)

        assert native.status_code == 200, native.text
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith(FHIR_JSON)
        response = CoverageEligibilityResponse.model_validate(answer.json())
        expected = native.json()
        check_id, expires_at = expected.pop("check_id"), expected.pop("expires_at")
        assert native_view(answer.json()) == expected
        [identifier] = response.identifier
        assert identifier.system == RIGHTS_CHECK
        assert identifier.value != check_id
        assert identifier.period.end == datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
        assert response.status == "active"
        assert response.outcome == "complete"
        assert response.purpose == ["validation", "benefits"]
        assert response.request.identifier.value == "52346"
        assert response.patient.display
        assert response.patient.reference is None
        assert response.insurer.identifier.system == AMC_NUMBER
        # The check id is one to cite, like the native one: it is stored for this practice.
        with runtime.sessions() as session:
            check = session.scalars(select(RightsCheck).where(RightsCheck.id == uuid.UUID(identifier.value))).one()
        assert check.practice_id == practice.practice_id


def test_the_ceilings_and_prior_approval_read_in_fhir_words(
    app: FastAPI, runtime: Runtime, world: World, fhir_seen: list[httpx.Response]
) -> None:
    optician = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN)
    record = world.patient(product="CONFORT")

    answer = post_fhir(optician, fhir_request(world, record, domains=("OPTI",)), fhir_seen)

    [item] = answer.json()["insurance"][0]["item"]
    assert item["authorizationRequired"] is True
    benefits = {b["type"]["coding"][0]["system"] + "#" + b["type"]["coding"][0]["code"]: b for b in item["benefit"]}
    assert benefits[f"{BENEFIT_TYPES}#brss-rate"]["allowedUnsignedInt"] == 200
    assert _cents(benefits[f"{BENEFIT_TYPES}#flat-amount"]["allowedMoney"]) == 15_000
    assert _cents(benefits[f"{HL7_BENEFIT_TYPES}#benefit"]["allowedMoney"]) == 30_000
    assert _cents(benefits[f"{BENEFIT_TYPES}#class-b-ceiling"]["allowedMoney"]) == 30_000
    assert item["description"].startswith("200 % BRSS + 150.00 €, yearly ceiling 300.00 €")


def test_a_domain_the_contract_does_not_cover_is_excluded() -> None:
    answer = RightsAnswer(
        check_id=uuid.uuid4(),
        insurer_id=uuid.uuid4(),
        beneficiary_id=uuid.uuid4(),
        contract_id=uuid.uuid4(),
        practice_id=uuid.uuid4(),
        professional_id=uuid.uuid4(),
        created_at=datetime(2026, 11, 22, 9, 30).astimezone(),
        amc_number="88450101",
        product_code="ESSENTIEL",
        care_date=TODAY,
        valid_from=date(2026, 1, 1),
        valid_to=None,
        domains=(
            DomainRights(CareDomain.HOSP, covered=False),
            DomainRights(CareDomain.CONS, covered=True, formula=Formula(100), third_party_payment=True),
        ),
        expires_at=datetime(2027, 2, 20, 9, 30).astimezone(),
    )
    request = CoverageEligibilityRequest.model_validate(
        {
            "resourceType": "CoverageEligibilityRequest",
            "status": "active",
            "purpose": ["benefits"],
            "patient": {"reference": "#p"},
            "created": "2026-11-22",
            "insurer": {"display": "AMC"},
        }
    )

    response = eligibility_response(request, answer)
    seen = native_view(json.loads(response.model_dump_json(exclude_none=True)))

    assert seen["status"] == "covered"
    assert seen["valid_to"] is None
    assert seen["domains"][0] == {
        "care_domain": "HOSP",
        "covered": False,
        "formula": None,
        "remaining_ceiling_cents": None,
        "third_party_payment": False,
        "prior_approval_required": False,
    }
    assert seen["domains"][1]["formula"]["brss_rate_pct"] == 100
    assert seen["domains"][1]["third_party_payment"] is True


def test_every_kind_of_miss_is_the_same_operation_outcome(
    app: FastAPI, runtime: Runtime, world: World, fhir_seen: list[httpx.Response]
) -> None:
    patient = world.patient()
    other = world.patients()[1]
    recent = next(r for r in world.patients() if r.contract_start > TODAY - timedelta(days=700))
    misses = {
        "unknown insurer": fhir_request(world, patient, amc_number="99999999"),
        "unknown card": fhir_request(world, patient, member_number="0999999999"),
        "wrong NIR": fhir_request(world, patient, nir=other.nir),
        "wrong date of birth": fhir_request(
            world, patient, birth_date=(patient.birth_date - timedelta(days=1)).isoformat()
        ),
        "wrong birth rank": fhir_request(world, patient, birth_rank=patient.birth_rank + 1),
        "ended contract": fhir_request(world, world.ended()),
        "not covered on the date": fhir_request(world, recent, care_date=recent.contract_start - timedelta(days=1)),
    }
    # One pharmacy per kind of miss: a run of misses from one practice is what detection slows down.
    answers = {
        name: post_fhir(PracticeClient.register(app, runtime, profession=Profession.PHARMACIST), sent, fhir_seen)
        for name, sent in misses.items()
    }

    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(misses, 404)
    assert len({a.content for a in answers.values()}) == 1
    assert {a.headers["content-type"] for a in answers.values()} == {FHIR_JSON}
    said = OperationOutcome.model_validate(answers["wrong NIR"].json())
    assert said.issue[0].code == "not-found"
    assert said.issue[0].details.coding[0].code == "no-matching-rights"
    # The very problem the native API answers, as an OperationOutcome.
    assert (
        answers["unknown card"].content
        == outcome(404, NoMatchingRights().problem()).model_dump_json(exclude_none=True).encode()
    )


def _without(resource: dict[str, Any], *path: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(resource))
    node = copy
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return copy


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("broken NIR", "CoverageEligibilityRequest.contained[0].identifier[0].value"),
        ("no NIR", "CoverageEligibilityRequest.contained[0].identifier"),
        ("partial birth date", "CoverageEligibilityRequest.contained[0].birthDate"),
        ("patient not contained", "CoverageEligibilityRequest.patient"),
        ("no member number", "CoverageEligibilityRequest.contained[2].identifier"),
        ("no AMC number", "CoverageEligibilityRequest.contained[2].payor[0]"),
        ("discovery", "CoverageEligibilityRequest.purpose"),
        ("unknown care domain", "CoverageEligibilityRequest.item[0].category"),
        ("no created", "CoverageEligibilityRequest.created"),
    ],
)
def test_bad_input_names_the_element_at_fault_never_its_value(
    *, app: FastAPI, runtime: Runtime, world: World, fhir_seen: list[httpx.Response], change: str, field: str
) -> None:
    practice = PracticeClient.register(app, runtime, profession=Profession.PHARMACIST)
    patient = world.patient()
    broken = patient.nir[:-2] + ("00" if patient.nir[-2:] != "00" else "01")
    good = fhir_request(world, patient, domains=("PHAR",))
    sent = {
        "broken NIR": lambda: fhir_request(world, patient, nir=broken),
        "no NIR": lambda: _without(good, "contained", 0, "identifier"),
        "partial birth date": lambda: fhir_request(world, patient, birth_date=patient.birth_date.isoformat()[:7]),
        "patient not contained": lambda: {**good, "patient": {"reference": "Patient/1"}},
        "no member number": lambda: _without(good, "contained", 2, "identifier"),
        "no AMC number": lambda: {
            **_without(good, "contained", 1, "identifier"),
            "insurer": {"display": "la mutuelle"},
        },
        "discovery": lambda: fhir_request(world, patient, purpose=("discovery",)),
        "unknown care domain": lambda: fhir_request(world, patient, domains=("SPA",)),
        "no created": lambda: _without(good, "created"),
    }[change]()

    answer = post_fhir(practice, sent, fhir_seen)

    assert answer.status_code == 422, answer.text
    said = OperationOutcome.model_validate(answer.json())
    assert [expr for issue in said.issue for expr in issue.expression or []] == [field]
    assert said.issue[0].code == "invalid"
    assert broken not in answer.text
    assert patient.birth_date.isoformat()[:7] not in answer.text


def test_the_media_type_the_profession_and_the_format_are_checked(
    app: FastAPI, runtime: Runtime, world: World, fhir_seen: list[httpx.Response]
) -> None:
    pharmacy = PracticeClient.register(app, runtime, profession=Profession.PHARMACIST)
    resource = fhir_request(world, world.patient(), domains=("OPTI",))

    outside = post_fhir(pharmacy, resource, fhir_seen)
    as_form = pharmacy.post(PATH, content=json.dumps(resource), headers={"content-type": "application/json-patch"})
    as_xml = post_fhir(pharmacy, resource, fhir_seen, accept="application/fhir+xml")
    anonymous = pharmacy.client.post(PATH, content=json.dumps(resource), headers={"content-type": FHIR_JSON})

    assert (outside.status_code, outside.json()["issue"][0]["code"]) == (403, "forbidden")
    assert as_form.status_code == 415
    assert as_xml.status_code == 406
    assert anonymous.status_code == 401
    assert OperationOutcome.model_validate(anonymous.json()).issue[0].code == "login"


def _event(runtime: Runtime, practice: PracticeClient, channel: Channel) -> AccessEvent:
    with runtime.sessions() as session:
        return session.scalars(
            select(AccessEvent)
            .where(AccessEvent.practice_id == practice.practice_id, AccessEvent.channel == channel)
            .order_by(AccessEvent.id.desc())
            .limit(1)
        ).one()


_SAME = (
    "operation", "purpose", "actor_kind", "actor_id", "practice_id", "professional_id", "profession", "device",
    "address", "insurer_id", "beneficiary_id", "fields", "outcome",
)  # fmt: skip


@pytest.mark.parametrize("hit", [True, False], ids=["hit", "miss"])
def test_the_access_log_records_a_fhir_check_as_a_native_one_under_the_fhir_channel(
    app: FastAPI, runtime: Runtime, world: World, fhir_seen: list[httpx.Response], hit: bool
) -> None:
    practice = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN)
    record = world.patient()
    card = {} if hit else {"birth_date": (record.birth_date - timedelta(days=3)).isoformat()}
    native = practice.post(NATIVE, json=native_request(world, record, **card))
    answer = post_fhir(practice, fhir_request(world, record, **card), fhir_seen)
    assert (native.status_code, answer.status_code) == ((200, 200) if hit else (404, 404))

    by_api = _event(runtime, practice, Channel.PRO_API)
    by_fhir = _event(runtime, practice, Channel.FHIR)

    assert by_fhir.channel is Channel.FHIR
    assert {name: getattr(by_fhir, name) for name in _SAME} == {name: getattr(by_api, name) for name in _SAME}
    assert by_fhir.outcome is (Outcome.DISCLOSED if hit else Outcome.MISS)
    if hit:
        assert by_fhir.beneficiary_id is not None  # the patient's own access log shows the check
        assert by_fhir.reference == answer.json()["identifier"][0]["value"]
    else:
        assert by_fhir.reference == by_api.reference == "identity-mismatch"
