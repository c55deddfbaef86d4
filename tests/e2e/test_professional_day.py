"""The professional's day over HTTP, on SQLite and PostgreSQL: an insurer loads its product and its
members through its API; practice software (signed client assertion, DPoP-bound token) checks a
patient's rights, gets a quote, a prior approval, bills a claim; the insurer runs a payment run; the
practice reads its remittance."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

from fastapi import FastAPI

from rempart.identity.permissions import Role
from rempart.insurers.models import Insurer
from rempart.insurers.service import create_insurer
from rempart.members.models import BeneficiaryRole
from rempart.members.synth import synth_members, write_file
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.factories import TODAY
from tests.support.clock import FakeClock
from tests.support.portal import PortalUser
from tests.support.practice_client import PracticeClient

OPTICS = {
    "care_domain": "OPTI",
    "brss_rate_pct": 200,
    "flat_amount_cents": 15_000,
    "yearly_ceiling_cents": 30_000,
    "sante_100_class_a": True,
    "class_b_ceiling_cents": 30_000,
    "prior_approval_required": True,
}
FRAMES = {
    "care_domain": "OPTI",
    "act_code": "2210546",
    "care_date": TODAY.isoformat(),
    "quantity": 1,
    "unit_price_cents": 25_000,
    "brss_cents": 5,
    "amo_rate_pct": 60,
    "sante_100_class": "B",
}


def new_insurer(runtime: Runtime) -> Insurer:
    with runtime.sessions.begin() as session:
        return create_insurer(session=session, keys=runtime.keys, amc_number="88450101", name="Mutuelle des Remparts")


def staff(app: FastAPI, runtime: Runtime, insurer: Insurer, role: Role, login: str) -> PortalUser:
    return PortalUser.invited(app, runtime, login=login, roles={role}, insurer_id=insurer.id)


def load_population(admin: PortalUser, insurer: Insurer, population: list[MemberRecord]) -> None:
    records = list(synth_members(count=12, seed=11, product_codes=["OPTIQUE"], today=TODAY))
    population.extend(records)
    buffer = io.StringIO()
    write_file(iter(records), buffer, fmt="csv")
    response = admin.post(
        f"/api/v1/insurers/{insurer.id}/members-imports",
        files={"file": ("members.csv", buffer.getvalue().encode(), "text/csv")},
    )
    assert response.status_code == 202, response.text
    job = admin.get(f"/api/v1/insurers/{insurer.id}/members-imports/{response.json()['job_id']}").json()
    assert job["status"] == "done"
    assert job["rows_done"] == job["rows_total"] == len(records)
    assert job["rejected"] == 0, job["errors"][:3]


def test_check_quote_approval_claim_payment_run_and_remittance(
    app: FastAPI, runtime: Runtime, clock: FakeClock, population: list[MemberRecord]
) -> None:
    insurer = new_insurer(runtime)
    admin = staff(app, runtime, insurer, Role.INSURER_ADMIN, "admin@remparts.test")
    base = f"/api/v1/insurers/{insurer.id}"

    # The insurer describes its product, then imports its members through its API.
    product = admin.post(
        f"{base}/products",
        json={"code": "OPTIQUE", "name": "Optique confort", "guarantees": [OPTICS, {"care_domain": "PHAR"}]},
    )
    assert product.status_code == 201, product.text
    load_population(admin, insurer, population)
    patient = next(
        r
        for r in population
        if r.role is BeneficiaryRole.HOLDER
        and r.contract_start <= TODAY
        and (r.contract_end is None or r.contract_end >= TODAY)
    )

    optician = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN, practice_name="Optique du Port")

    # Rights check: card, NIR, date of birth. The answer is coverage only.
    check = optician.post(
        "/api/v1/rights-checks",
        json={
            "amc_number": insurer.amc_number,
            "member_number": patient.member_number,
            "nir": patient.nir,
            "birth_date": patient.birth_date.isoformat(),
        },
    )
    assert check.status_code == 200, check.text
    rights = check.json()
    assert rights["status"] == "covered"
    (optics,) = rights["domains"]
    assert optics["care_domain"] == "OPTI"
    assert optics["remaining_ceiling_cents"] == 30_000
    assert optics["prior_approval_required"] is True
    check_id = rights["check_id"]

    # Quote: the insurer's share and the patient's remainder, line by line.
    quote = optician.post("/api/v1/quotes", json={"check_id": check_id, "lines": [FRAMES]})
    assert quote.status_code == 200, quote.text
    (line,) = quote.json()["lines"]
    assert (line["amo_cents"], line["insurer_cents"], line["remainder_cents"]) == (3, 15_007, 9_990)
    assert quote.json()["ceilings"][0]["remaining_after_cents"] == 30_000 - 15_007

    # Prior approval, asked twice with the same key: one approval.
    approval_body = {"check_id": check_id, "care_domain": "OPTI", "lines": [FRAMES]}
    approval = optician.post("/api/v1/prior-approvals", json=approval_body, headers={"Idempotency-Key": "pec-1"})
    again = optician.post("/api/v1/prior-approvals", json=approval_body, headers={"Idempotency-Key": "pec-1"})
    assert approval.status_code == 201, approval.text
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == approval.json()
    assert approval.json()["status"] == "granted"
    assert approval.json()["granted_cents"] == 15_007
    number = approval.json()["approval_number"]
    assert optician.get(f"/api/v1/prior-approvals/{approval.json()['approval_id']}").json()["approval_number"] == number

    # The claim, once the frames are delivered.
    clock.advance(days=3)
    delivered = {**FRAMES, "care_date": (TODAY + timedelta(days=3)).isoformat()}
    missing_key = optician.post("/api/v1/claims", json={"check_id": check_id, "lines": [delivered]})
    assert missing_key.status_code == 400
    assert missing_key.json()["type"].endswith("/idempotency-key-required")
    claim = optician.post(
        "/api/v1/claims",
        json={"check_id": check_id, "approval_number": number, "lines": [delivered]},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert claim.status_code == 201, claim.text
    assert (claim.json()["status"], claim.json()["insurer_cents"]) == ("accepted", 15_007)
    claim_id = claim.json()["claim_id"]
    listed = optician.get("/api/v1/claims").json()["claims"]
    assert [c["claim_id"] for c in listed] == [claim_id]

    # The insurer pays (its staff signs in again: three days have passed).
    assert admin.sign_in().status_code == 200
    run = admin.post(f"{base}/payment-runs", json={"cutoff_date": (TODAY + timedelta(days=3)).isoformat()})
    assert run.status_code == 201, run.text
    assert (run.json()["claim_count"], run.json()["total_cents"], run.json()["remittance_count"]) == (1, 15_007, 1)
    assert optician.get(f"/api/v1/claims/{claim_id}").json()["status"] == "paid"

    # The practice reads its remittance and the claim it pays.
    remittances = optician.get("/api/v1/remittances").json()["remittances"]
    assert [(r["amc_number"], r["total_cents"]) for r in remittances] == [(insurer.amc_number, 15_007)]
    detail = optician.get(f"/api/v1/remittances/{remittances[0]['remittance_id']}")
    assert detail.status_code == 200
    assert [(li["claim_id"], li["amount_cents"]) for li in detail.json()["lines"]] == [(claim_id, 15_007)]

    # Another practice learns nothing of any of it.
    stranger = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN, practice_name="Autre Optique")
    for path in (
        f"/api/v1/claims/{claim_id}",
        f"/api/v1/remittances/{remittances[0]['remittance_id']}",
        f"/api/v1/prior-approvals/{approval.json()['approval_id']}",
    ):
        assert stranger.get(path).status_code == 404
    assert stranger.post("/api/v1/quotes", json={"check_id": check_id, "lines": [FRAMES]}).status_code == 404
    assert stranger.get("/api/v1/remittances").json() == {"remittances": []}


def test_corrections_cancellations_and_a_decision_by_the_insurer(
    app: FastAPI, runtime: Runtime, population: list[MemberRecord]
) -> None:
    insurer = new_insurer(runtime)
    admin = staff(app, runtime, insurer, Role.INSURER_ADMIN, "admin@remparts.test")
    agent = staff(app, runtime, insurer, Role.CLAIMS_AGENT, "agent@remparts.test")
    base = f"/api/v1/insurers/{insurer.id}"
    hospital_cover = {"care_domain": "HOSP", "brss_rate_pct": 400, "prior_approval_required": True}
    assert (
        admin.post(
            f"{base}/products",
            json={"code": "OPTIQUE", "name": "Hospitalisation", "guarantees": [OPTICS, hospital_cover]},
        ).status_code
        == 201
    )
    load_population(admin, insurer, population)
    patient = next(
        r
        for r in population
        if r.role is BeneficiaryRole.HOLDER
        and r.contract_start <= TODAY
        and (r.contract_end is None or r.contract_end >= TODAY)
    )
    hospital = PracticeClient.register(app, runtime, profession=Profession.HOSPITAL, practice_name="Clinique du Parc")
    check = hospital.post(
        "/api/v1/rights-checks",
        json={
            "amc_number": insurer.amc_number,
            "member_number": patient.member_number,
            "nir": patient.nir,
            "birth_date": patient.birth_date.isoformat(),
            "care_domains": ["HOSP"],
        },
    ).json()
    stay = {
        "care_domain": "HOSP",
        "act_code": "GHS1234",
        "care_date": TODAY.isoformat(),
        "unit_price_cents": 900_000,
        "brss_cents": 800_000,
        "amo_rate_pct": 80,
    }

    # A stay this large waits for a person at the insurer, who grants it.
    asked = hospital.post(
        "/api/v1/prior-approvals",
        json={"check_id": check["check_id"], "care_domain": "HOSP", "lines": [stay]},
        headers={"Idempotency-Key": "stay-1"},
    ).json()
    assert (asked["status"], asked["reason_code"]) == ("pending", "manual-review")
    waiting = agent.get(f"{base}/prior-approvals").json()["prior_approvals"]
    assert [a["approval_id"] for a in waiting] == [asked["approval_id"]]
    granted = agent.post(f"{base}/prior-approvals/{asked['approval_id']}/decision", json={"decision": "grant"})
    assert granted.status_code == 200, granted.text
    assert granted.json()["status"] == "granted"

    # Billed without the approval number: rejected; corrected with it.
    rejected = hospital.post(
        "/api/v1/claims", json={"check_id": check["check_id"], "lines": [stay]}, headers={"Idempotency-Key": "bill-1"}
    ).json()
    assert (rejected["status"], rejected["reason_code"]) == ("rejected", "approval-missing")
    corrected = hospital.post(
        f"/api/v1/claims/{rejected['claim_id']}/corrections",
        json={"check_id": check["check_id"], "approval_number": asked["approval_number"], "lines": [stay]},
        headers={"Idempotency-Key": "bill-2"},
    )
    assert corrected.status_code == 201, corrected.text
    assert corrected.json()["replaces_claim_id"] == rejected["claim_id"]
    assert corrected.json()["status"] in ("accepted", "pending_review")
    assert hospital.get(f"/api/v1/claims/{rejected['claim_id']}").json()["status"] == "superseded"

    # Cancelled: the approval is free again, and can itself be cancelled.
    cancelled = hospital.post(f"/api/v1/claims/{corrected.json()['claim_id']}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    approval = hospital.post(f"/api/v1/prior-approvals/{asked['approval_id']}/cancel")
    assert approval.status_code == 200, approval.text
    assert approval.json()["status"] == "cancelled"
    assert hospital.post(f"/api/v1/prior-approvals/{asked['approval_id']}/cancel").json()["status"] == "cancelled"
