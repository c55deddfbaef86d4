"""Claims, prior approvals and quotes through the FHIR facade: Claims shaped like HL7's published R4
examples (an optician's glasses under a prior approval, a pharmacist's medicines), adapted to French
identifiers, answer ClaimResponses that are valid R4 and say what the native API says for the same
lines on a twin patient — amounts, statuses, reason codes — with the same access events, channel
aside; replays, conflicts, cancellations and bad bodies behave as natively, as OperationOutcomes."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy import select

from rempart.audit.models import AccessEvent
from rempart.fhir.claims import router as claims_router
from rempart.fhir.claims_mapping import (
    CARE_DOMAIN,
    EXT_AMO_RATE,
    EXT_REGULATED_PRICE,
    EXT_REIMBURSEMENT_BASE,
    EXT_SANTE_100_CLASS,
    EXT_STATUS,
    EXT_UNDER_ATTESTATION,
    SUPPORTING_INFO,
)
from rempart.fhir.identifiers import INS_NIR, MEMBER_NUMBER, RIGHTS_CHECK, RPPS
from rempart.members.models import BeneficiaryRole
from rempart.members.validation import MemberRecord
from rempart.pricing.engine import CareLine
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.attestations.test_service import issue
from tests.eligibility.world import World, build_world, class_a_glasses, frames, medicine
from tests.factories import TODAY
from tests.support.clock import FakeClock
from tests.support.practice_client import PracticeClient

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    """The app with the facade's claims router (mounted here until ``rempart.app`` mounts it)."""
    if "/fhir/Claim" not in {getattr(route, "path", None) for route in app.routes}:
        app.include_router(claims_router)
    return app


@pytest.fixture
def world(runtime: Runtime, population: list[MemberRecord]) -> World:
    built = build_world(runtime)
    population.extend(built.records)
    return built


# -- what practice software sends ------------------------------------------------------------------


def eur(cents: int) -> dict[str, Any]:
    return {"value": float(Decimal(cents).scaleb(-2)), "currency": "EUR"}


def native_line(line: CareLine) -> dict[str, Any]:
    return {k: (v.isoformat() if k == "care_date" else v) for k, v in asdict(line).items() if v is not None}


def fhir_item(sequence: int, line: CareLine) -> dict[str, Any]:
    extension: list[dict[str, Any]] = [
        {"url": EXT_REIMBURSEMENT_BASE, "valueMoney": eur(line.brss_cents)},
        {"url": EXT_AMO_RATE, "valueUnsignedInt": line.amo_rate_pct},
    ]
    if line.sante_100_class is not None:
        extension.append({"url": EXT_SANTE_100_CLASS, "valueCode": line.sante_100_class.value})
    if line.regulated_price_cents is not None:
        extension.append({"url": EXT_REGULATED_PRICE, "valueMoney": eur(line.regulated_price_cents)})
    return {
        "sequence": sequence,
        "extension": extension,
        "careTeamSequence": [1],
        "category": {"coding": [{"system": CARE_DOMAIN, "code": line.care_domain.value}]},
        "productOrService": {
            "coding": [{"system": "https://rempart.example/fhir/CodeSystem/act", "code": line.act_code}]
        },
        "servicedDate": line.care_date.isoformat(),
        "quantity": {"value": line.quantity},
        "unitPrice": eur(line.unit_price_cents),
        "net": eur(line.unit_price_cents * line.quantity),
    }


def fhir_claim(
    *,
    use: str,
    check_id: str,
    rpps: str,
    record: MemberRecord,
    lines: list[CareLine],
    kind: str,
    pre_auth: str | None = None,
) -> dict[str, Any]:
    """A Claim as HL7's R4 examples write one (claim-example-vision-glasses, claim-example-pharmacy-
    medication): contained Patient, the professional, the insurance, the lines; here with the INS-NIR,
    the RPPS and the rights check instead of HL7's sample identifiers."""
    insurance: dict[str, Any] = {
        "sequence": 1,
        "focal": True,
        "coverage": {"type": "Coverage", "identifier": {"system": MEMBER_NUMBER, "value": record.member_number}},
    }
    if pre_auth is not None:
        insurance["preAuthRef"] = [pre_auth]
    return {
        "resourceType": "Claim",
        "id": "660150",
        "contained": [
            {
                "resourceType": "Patient",
                "id": "patient",
                "identifier": [{"system": INS_NIR, "value": record.nir}],
                "birthDate": record.birth_date.isoformat(),
            },
            {"resourceType": "Practitioner", "id": "optician", "identifier": [{"system": RPPS, "value": rpps}]},
        ],
        "identifier": [{"system": "http://logiciel.example/facture", "value": "F-660150"}],
        "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": kind}]},
        "use": use,
        "patient": {"reference": "#patient"},
        "created": TODAY.isoformat(),
        "provider": {"reference": "#optician"},
        "priority": {"coding": [{"code": "normal"}]},
        "careTeam": [{"sequence": 1, "provider": {"reference": "#optician"}}],
        "supportingInfo": [
            {
                "sequence": 1,
                "category": {"coding": [{"system": SUPPORTING_INFO, "code": "rights-check"}]},
                "valueReference": {
                    "type": "CoverageEligibilityResponse",
                    "identifier": {"system": RIGHTS_CHECK, "value": check_id},
                },
            }
        ],
        "insurance": [insurance],
        "item": [fhir_item(n, line) for n, line in enumerate(lines, start=1)],
    }


def post_fhir(practice: PracticeClient, path: str, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = dict(FHIR_JSON)
    if key is not None:
        headers["Idempotency-Key"] = key
    return practice.post(path, json=body, headers=headers)


def rights_check(practice: PracticeClient, world: World, record: MemberRecord) -> str:
    answer = practice.post(
        "/api/v1/rights-checks",
        json={
            "amc_number": world.insurer.amc_number,
            "member_number": record.member_number,
            "nir": record.nir,
            "birth_date": record.birth_date.isoformat(),
            "birth_rank": record.birth_rank,
        },
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["check_id"])


def claim_response(answer: httpx.Response) -> dict[str, Any]:
    """The answer, checked a valid R4 ClaimResponse, as JSON."""
    assert answer.headers["content-type"].startswith("application/fhir+json"), answer.text
    ClaimResponse.model_validate(answer.json())
    body: dict[str, Any] = answer.json()
    assert "identifier" not in body["patient"]
    assert "reference" not in body["patient"]
    return body


def outcome_of(answer: httpx.Response) -> OperationOutcome:
    assert answer.headers["content-type"].startswith("application/fhir+json"), answer.text
    return OperationOutcome.model_validate(answer.json())


def cents(money: dict[str, Any]) -> int:
    assert money["currency"] == "EUR"
    return int(Decimal(str(money["value"])) * 100)


def split(adjudication: list[dict[str, Any]]) -> dict[str, int]:
    return {entry["category"]["coding"][0]["code"]: cents(entry["amount"]) for entry in adjudication}


def native_split(line: dict[str, Any], insurer_key: str = "insurer_cents") -> dict[str, int]:
    return {
        "submitted": line["price_cents"],
        "amo": line["amo_cents"],
        "benefit": line[insurer_key],
        "copay": line["remainder_cents"],
    }


def status_of(body: dict[str, Any]) -> str:
    return next(str(e["valueCode"]) for e in body["extension"] if e["url"] == EXT_STATUS)


def reasons(body: dict[str, Any]) -> list[str]:
    return [c["code"] for a in body.get("adjudication", []) for c in a.get("reason", {}).get("coding", [])]


def events_of(runtime: Runtime, practice: PracticeClient) -> list[tuple[str, ...]]:
    """The practice's access events past its rights checks, as the log keeps them (ids aside)."""
    with runtime.sessions() as session:
        events = session.scalars(
            select(AccessEvent)
            .where(AccessEvent.practice_id == practice.practice_id, AccessEvent.operation != "rights_check")
            .order_by(AccessEvent.occurred_at, AccessEvent.id)
        ).all()
    return [
        (e.operation, e.outcome.value, e.fields, e.purpose.value, e.actor_kind.value, e.channel.value) for e in events
    ]


def twins(world: World, product: str = "CONFORT") -> tuple[MemberRecord, MemberRecord]:
    first, second = world.patients(product=product, role=BeneficiaryRole.HOLDER)[:2]
    return first, second


# -- the optician: a prior approval, the claim under it, reads and cancellations --------------------


def test_an_opticians_glasses_under_a_prior_approval_answer_as_the_native_api_does(
    app: FastAPI, runtime: Runtime, world: World, clock: FakeClock
) -> None:
    fhir_side = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN, practice_name="Optique FHIR")
    native_side = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN, practice_name="Optique API")
    patient, twin = twins(world)
    check, twin_check = rights_check(fhir_side, world, patient), rights_check(native_side, world, twin)
    lines = [frames(), class_a_glasses()]

    def claim(use: str, pre_auth: str | None = None, on: list[CareLine] = lines) -> dict[str, Any]:
        return fhir_claim(
            use=use, check_id=check, rpps=fhir_side.rpps, record=patient, lines=on, kind="vision", pre_auth=pre_auth
        )

    # The prior approval.
    asked = post_fhir(fhir_side, "/fhir/Claim", claim("preauthorization"), key="pec-1")
    native = native_side.post(
        "/api/v1/prior-approvals",
        json={"check_id": twin_check, "care_domain": "OPTI", "lines": [native_line(li) for li in lines]},
        headers={"Idempotency-Key": "pec-1"},
    )
    assert (asked.status_code, native.status_code) == (201, 201), asked.text
    approval, native_approval = claim_response(asked), native.json()
    assert approval["use"] == "preauthorization"
    assert status_of(approval) == native_approval["status"] == "granted"
    assert approval["outcome"] == "complete"
    assert approval["preAuthRef"].startswith("OPTI-")
    assert approval["preAuthPeriod"]["end"] == native_approval["expires_on"]
    assert reasons(approval) == []
    assert [split(item["adjudication"]) for item in approval["item"]] == [
        {**native_split(line, "granted_cents"), "eligible": li.brss_cents * li.quantity}
        for line, li in zip(native_approval["lines"], lines, strict=True)
    ]
    totals = split(approval["total"])
    assert (totals["benefit"], totals["requested"]) == (
        native_approval["granted_cents"],
        native_approval["requested_cents"],
    )
    assert asked.headers["content-location"].endswith(f"/fhir/ClaimResponse/{approval['id']}")

    # The claim once the glasses are delivered, citing the approval number.
    clock.advance(days=3)
    delivered = [CareLine(**{**asdict(li), "care_date": TODAY + timedelta(days=3)}) for li in lines]
    billed = post_fhir(fhir_side, "/fhir/Claim", claim("claim", approval["preAuthRef"], delivered), key="fac-1")
    native = native_side.post(
        "/api/v1/claims",
        json={
            "check_id": twin_check,
            "approval_number": native_approval["approval_number"],
            "lines": [native_line(li) for li in delivered],
        },
        headers={"Idempotency-Key": "fac-1"},
    )
    assert (billed.status_code, native.status_code) == (201, 201), billed.text
    claimed, native_claim = claim_response(billed), native.json()
    assert status_of(claimed) == native_claim["status"] == "accepted"
    assert claimed["outcome"] == "complete"
    assert claimed["identifier"][0]["value"] == claimed["id"]
    assert reasons(claimed) == []
    assert [split(item["adjudication"]) for item in claimed["item"]] == [
        {**native_split(line), "eligible": li.brss_cents * li.quantity}
        for line, li in zip(native_claim["lines"], delivered, strict=True)
    ]
    assert split(claimed["total"]) == native_split(native_claim)

    # Sent again with the same key: the first answer.
    again = post_fhir(fhir_side, "/fhir/Claim", claim("claim", approval["preAuthRef"], delivered), key="fac-1")
    native_again = native_side.post(
        "/api/v1/claims",
        json={
            "check_id": twin_check,
            "approval_number": native_approval["approval_number"],
            "lines": [native_line(li) for li in delivered],
        },
        headers={"Idempotency-Key": "fac-1"},
    )
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (200, "true")
    assert claim_response(again) == claimed
    assert native_again.status_code == 200

    # Read back: the claim's and the approval's current ClaimResponse.
    read = fhir_side.get(f"/fhir/ClaimResponse/{claimed['id']}")
    assert read.status_code == 200
    assert claim_response(read) == claimed
    read_approval = claim_response(fhir_side.get(f"/fhir/ClaimResponse/{approval['id']}"))
    assert read_approval["preAuthRef"] == approval["preAuthRef"]
    assert native_side.get(f"/api/v1/claims/{native_claim['claim_id']}").status_code == 200
    assert native_side.get(f"/api/v1/prior-approvals/{native_approval['approval_id']}").status_code == 200

    # Cancelled, twice: the claim, then the approval it gave back.
    for _ in range(2):
        cancelled = fhir_side.post(f"/fhir/Claim/{claimed['id']}/$cancel")
        native = native_side.post(f"/api/v1/claims/{native_claim['claim_id']}/cancel")
        assert (cancelled.status_code, native.status_code) == (200, 200), cancelled.text
        body = claim_response(cancelled)
        assert (body["status"], status_of(body)) == ("cancelled", native.json()["status"])
        assert len(body["item"]) == len(native.json()["lines"]) == len(lines)
    for _ in range(2):
        withdrawn = fhir_side.post(f"/fhir/Claim/{approval['id']}/$cancel")
        native = native_side.post(f"/api/v1/prior-approvals/{native_approval['approval_id']}/cancel")
        assert (withdrawn.status_code, native.status_code) == (200, 200), withdrawn.text
        body = claim_response(withdrawn)
        assert (body["status"], status_of(body), body["use"]) == (
            "cancelled",
            native.json()["status"],
            "preauthorization",
        )

    # The access log holds the same events for both, under the facade's own channel.
    fhir_events, native_events = events_of(runtime, fhir_side), events_of(runtime, native_side)
    assert {e[-1] for e in fhir_events} == {"fhir"}
    assert {e[-1] for e in native_events} == {"pro_api"}
    assert [e[:-1] for e in fhir_events] == [e[:-1] for e in native_events]
    assert len(fhir_events) == 9

    # Another practice learns nothing: its reads and cancellations find nothing.
    stranger = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN, practice_name="Autre Optique")
    for answer in (
        stranger.get(f"/fhir/ClaimResponse/{claimed['id']}"),
        stranger.get(f"/fhir/ClaimResponse/{approval['id']}"),
        stranger.get("/fhir/ClaimResponse/not-a-uuid"),
        stranger.post(f"/fhir/Claim/{claimed['id']}/$cancel"),
        stranger.post(f"/fhir/Claim/{uuid.uuid4()}/$cancel"),
    ):
        assert answer.status_code == 404
        assert outcome_of(answer).issue[0].code == "not-found"


# -- the pharmacist: a quote, a claim, replays and conflicts ---------------------------------------


def test_a_pharmacists_medicines_quoted_and_billed_as_natively(app: FastAPI, runtime: Runtime, world: World) -> None:
    fhir_side = PracticeClient.register(app, runtime, profession=Profession.PHARMACIST)
    native_side = PracticeClient.register(app, runtime, profession=Profession.PHARMACIST, practice_name="Pharmacie API")
    patient, twin = twins(world, "ESSENTIEL")
    check, twin_check = rights_check(fhir_side, world, patient), rights_check(native_side, world, twin)
    lines = [medicine(price=1_250), CareLine(**{**asdict(medicine(price=480, amo_rate=30)), "quantity": 3})]
    natively = [native_line(li) for li in lines]

    def claim(use: str, on: list[CareLine] = lines) -> dict[str, Any]:
        return fhir_claim(use=use, check_id=check, rpps=fhir_side.rpps, record=patient, lines=on, kind="pharmacy")

    # A quote: nothing stored, no key needed.
    quoted = fhir_side.post("/fhir/Claim", json=claim("predetermination"), headers=FHIR_JSON)
    native = native_side.post("/api/v1/quotes", json={"check_id": twin_check, "lines": natively})
    assert (quoted.status_code, native.status_code) == (200, 200), quoted.text
    quote = claim_response(quoted)
    assert (quote["use"], quote["outcome"]) == ("predetermination", "complete")
    assert "id" not in quote
    assert split(quote["total"]) == native_split(native.json())
    assert [split(i["adjudication"]) for i in quote["item"]] == [
        {**native_split(line), "eligible": li.brss_cents * li.quantity}
        for line, li in zip(native.json()["lines"], lines, strict=True)
    ]

    # The claim needs a key, as natively.
    missing = fhir_side.post("/fhir/Claim", json=claim("claim"), headers=FHIR_JSON)
    assert missing.status_code == 400
    assert outcome_of(missing).issue[0].details.coding[0].code == "idempotency-key-required"

    billed = post_fhir(fhir_side, "/fhir/Claim", claim("claim"), key="fac-42")
    native = native_side.post(
        "/api/v1/claims", json={"check_id": twin_check, "lines": natively}, headers={"Idempotency-Key": "fac-42"}
    )
    assert (billed.status_code, native.status_code) == (201, 201), billed.text
    claimed = claim_response(billed)
    assert status_of(claimed) == native.json()["status"] == "accepted"
    assert split(claimed["total"]) == native_split(native.json())
    assert claimed["type"]["coding"][0]["code"] == "pharmacy"

    # Same key, same Claim: the same ClaimResponse; same key, other lines: the native conflict.
    again = post_fhir(fhir_side, "/fhir/Claim", claim("claim"), key="fac-42")
    assert (again.status_code, claim_response(again)) == (200, claimed)
    native_again = native_side.post(
        "/api/v1/claims", json={"check_id": twin_check, "lines": natively}, headers={"Idempotency-Key": "fac-42"}
    )
    assert native_again.status_code == 200
    other = post_fhir(fhir_side, "/fhir/Claim", claim("claim", lines[:1]), key="fac-42")
    native_other = native_side.post(
        "/api/v1/claims", json={"check_id": twin_check, "lines": natively[:1]}, headers={"Idempotency-Key": "fac-42"}
    )
    assert other.status_code == native_other.status_code == 422
    assert outcome_of(other).issue[0].details.coding[0].code == "idempotency-key-reused"

    # The same medicines billed again under a new key: rejected as a duplicate, with its reason code.
    duplicate = post_fhir(fhir_side, "/fhir/Claim", claim("claim"), key="fac-43")
    native_duplicate = native_side.post(
        "/api/v1/claims", json={"check_id": twin_check, "lines": natively}, headers={"Idempotency-Key": "fac-43"}
    )
    assert duplicate.status_code == 201
    rejected = claim_response(duplicate)
    assert status_of(rejected) == native_duplicate.json()["status"] == "rejected"
    assert rejected["outcome"] == "error"
    assert reasons(rejected) == [native_duplicate.json()["reason_code"]] == ["duplicate-claim"]
    assert rejected["error"][0]["code"]["coding"][0] == {
        "system": "https://rempart.example/fhir/CodeSystem/claim-reason",
        "code": "duplicate-claim",
    }

    fhir_events, native_events = events_of(runtime, fhir_side), events_of(runtime, native_side)
    assert [e[:-1] for e in fhir_events] == [e[:-1] for e in native_events]
    assert {e[-1] for e in fhir_events} == {"fhir"}


# -- bad bodies ------------------------------------------------------------------------------------


def test_a_claim_that_does_not_translate_is_refused_naming_the_elements_at_fault(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    pharmacist = PracticeClient.register(app, runtime, profession=Profession.PHARMACIST)
    patient, _ = twins(world)
    check = rights_check(pharmacist, world, patient)
    good = fhir_claim(
        use="claim", check_id=check, rpps=pharmacist.rpps, record=patient, lines=[medicine()], kind="pharmacy"
    )

    def refused(body: dict[str, Any]) -> set[str]:
        answer = post_fhir(pharmacist, "/fhir/Claim", body, key=uuid.uuid4().hex)
        assert answer.status_code == 422, answer.text
        outcome = outcome_of(answer)
        assert patient.nir not in answer.text
        return {path for issue in outcome.issue for path in issue.expression or []}

    item = good["item"][0]
    assert refused({**good, "supportingInfo": []}) == {"Claim.supportingInfo"}
    assert refused({**good, "item": [{**item, "unitPrice": {"value": 12.5, "currency": "USD"}}]}) == {
        "Claim.item[0].unitPrice"
    }
    assert refused({**good, "item": [{**item, "unitPrice": {"value": 12.505, "currency": "EUR"}}]}) == {
        "Claim.item[0].unitPrice"
    }
    lowercase = {**item, "productOrService": {"coding": [{"code": "not a code"}]}}
    assert refused({**good, "item": [lowercase]}) == {"Claim.item[0].productOrService"}
    assert refused({**good, "item": [{**item, "extension": []}]}) == {
        f"Claim.item[0].extension('{EXT_REIMBURSEMENT_BASE}')",
        f"Claim.item[0].extension('{EXT_AMO_RATE}')",
    }
    assert refused({**good, "item": [{**item, "sequence": 2}]}) == {"Claim.item[0].sequence"}
    someone_else = {**good, "provider": {"identifier": {"system": RPPS, "value": pharmacist.add_professional()}}}
    assert refused(someone_else) == {"Claim.provider"}
    assert refused({**good, "provider": None}) == {"Claim.provider"}
    without_priority = {k: v for k, v in good.items() if k != "priority"}
    assert refused(without_priority) == {"Claim.priority"}
    assert refused({**good, "use": "preauthorization"}) == {"Claim.item[0].category"}  # PHAR needs no approval

    as_form = pharmacist.post(
        "/fhir/Claim", content=b"{}", headers={"Content-Type": "text/plain", "Idempotency-Key": "k"}
    )
    assert as_form.status_code == 415
    assert outcome_of(as_form).issue[0].code == "not-supported"
    # Nothing was billed by any of it.
    assert pharmacist.get("/api/v1/claims").json() == {"claims": []}


# -- decisions that are not a plain yes ------------------------------------------------------------


def test_a_refused_and_a_partial_prior_approval_say_why_under_the_approval_reasons(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    fhir_side = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN, practice_name="Optique FHIR")
    native_side = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN, practice_name="Optique API")
    patient, twin = twins(world)
    check, twin_check = rights_check(fhir_side, world, patient), rights_check(native_side, world, twin)
    cases = {
        # Class A glasses above their regulated price: refused.
        "refused": ([class_a_glasses(price=5_000, regulated=3_000)], "error", "price-over-regulated-limit"),
        # Two class B frames: CONFORT's yearly optics ceiling (300 €) caps the second.
        "partially_granted": ([frames(), frames()], "partial", "ceiling-partly-used"),
    }
    for status, (lines, outcome, reason) in cases.items():
        body = fhir_claim(
            use="preauthorization", check_id=check, rpps=fhir_side.rpps, record=patient, lines=lines, kind="vision"
        )
        asked = post_fhir(fhir_side, "/fhir/Claim", body, key=f"pec-{status}")
        native = native_side.post(
            "/api/v1/prior-approvals",
            json={"check_id": twin_check, "care_domain": "OPTI", "lines": [native_line(li) for li in lines]},
            headers={"Idempotency-Key": f"pec-{status}"},
        )
        assert asked.status_code == native.status_code == 201, asked.text
        approval = claim_response(asked)
        assert status_of(approval) == native.json()["status"] == status
        assert approval["outcome"] == outcome
        assert reasons(approval) == [native.json()["reason_code"]] == [reason]
        assert approval["adjudication"][0]["reason"]["coding"][0]["system"] == (
            "https://rempart.example/fhir/CodeSystem/approval-reason"
        )
        assert split(approval["total"])["benefit"] == native.json()["granted_cents"]
        assert split(approval["total"])["requested"] == native.json()["requested_cents"]
        assert [split(i["adjudication"])["benefit"] for i in approval["item"]] == [
            line["granted_cents"] for line in native.json()["lines"]
        ]
        if status == "refused":
            # A refused approval cannot be cancelled: the native conflict, as an OperationOutcome.
            cancelled = fhir_side.post(f"/fhir/Claim/{approval['id']}/$cancel")
            native_cancel = native_side.post(f"/api/v1/prior-approvals/{native.json()['approval_id']}/cancel")
            assert cancelled.status_code == native_cancel.status_code == 409
            assert outcome_of(cancelled).issue[0].code == "conflict"


def test_a_claim_under_an_offline_attestation_cites_it_instead_of_a_rights_check(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    pharmacist = PracticeClient.register(app, runtime, profession=Profession.PHARMACIST)
    patient, _ = twins(world)
    issued = issue(world, patient)
    body = fhir_claim(
        use="claim", check_id="unused", rpps=pharmacist.rpps, record=patient, lines=[medicine()], kind="pharmacy"
    )
    body["supportingInfo"] = [
        {
            "sequence": 1,
            "category": {"coding": [{"system": SUPPORTING_INFO, "code": "offline-attestation"}]},
            "valueString": issued.token,
        }
    ]

    billed = post_fhir(pharmacist, "/fhir/Claim", body, key="offline-1")

    assert billed.status_code == 201, billed.text
    claimed = claim_response(billed)
    assert status_of(claimed) == "accepted"
    assert {e["url"]: e.get("valueBoolean") for e in claimed["extension"]}[EXT_UNDER_ATTESTATION] is True
    native = pharmacist.get(f"/api/v1/claims/{claimed['id']}").json()
    assert (native["under_attestation"], native["insurer_cents"]) == (True, split(claimed["total"])["benefit"])
    # A quote or a prior approval is made with the platform on: it cites a rights check.
    body["use"] = "predetermination"
    quoted = pharmacist.post("/fhir/Claim", json=body, headers=FHIR_JSON)
    assert quoted.status_code == 422
    assert {p for i in outcome_of(quoted).issue for p in i.expression or []} == {"Claim.supportingInfo"}
