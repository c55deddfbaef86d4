"""The insurer API over HTTP with staff passkey sessions: products, members imports, claims review,
payment runs — and another insurer's staff, or practice software, get nothing."""

from __future__ import annotations

import io
import uuid

import pytest
from fastapi import FastAPI

from rempart.identity.permissions import Role
from rempart.insurers.models import Insurer
from rempart.members.synth import synth_members, write_file
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.eligibility.world import World, build_world
from tests.factories import TODAY, make_insurer
from tests.support.portal import PortalUser
from tests.support.practice_client import PracticeClient

# A responsible product (the default) covers 100 % Santé class A wherever it covers optics.
OPTICS = {
    "care_domain": "OPTI",
    "brss_rate_pct": 200,
    "flat_amount_cents": 10_000,
    "yearly_ceiling_cents": 20_000,
    "sante_100_class_a": True,
}


@pytest.fixture
def world(runtime: Runtime, population: list[MemberRecord]) -> World:
    built = build_world(runtime, members=12)
    population.extend(built.records)
    return built


def staff(app: FastAPI, runtime: Runtime, insurer: Insurer, role: Role) -> PortalUser:
    return PortalUser.invited(
        app, runtime, login=f"{role.value}-{uuid.uuid4().hex[:6]}@test", roles={role}, insurer_id=insurer.id
    )


def test_an_insurer_admin_manages_products(app: FastAPI, runtime: Runtime, world: World) -> None:
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    base = f"/api/v1/insurers/{world.insurer.id}/products"

    created = admin.post(base, json={"code": "NOUVEAU", "name": "Nouvelle formule", "guarantees": [OPTICS]})
    duplicate = admin.post(base, json={"code": "NOUVEAU", "name": "Encore", "guarantees": [OPTICS]})
    changed = admin.request(
        "PUT", f"{base}/NOUVEAU", json={"name": "Formule revue", "guarantees": [{**OPTICS, "brss_rate_pct": 300}]}
    )

    assert created.status_code == 201, created.text
    assert duplicate.status_code == 409
    assert changed.status_code == 200, changed.text
    product = admin.get(f"{base}/NOUVEAU").json()
    assert product["name"] == "Formule revue"
    assert [(g["care_domain"], g["brss_rate_pct"]) for g in product["guarantees"]] == [("OPTI", 300)]
    assert {p["code"] for p in admin.get(base).json()["products"]} == {"ESSENTIEL", "CONFORT", "PREMIUM", "NOUVEAU"}
    assert admin.delete(f"{base}/NOUVEAU").status_code == 204
    assert admin.get(f"{base}/NOUVEAU").status_code == 404
    in_use = admin.delete(f"{base}/CONFORT")
    assert in_use.status_code == 409
    assert "contracts use this product" in in_use.json()["detail"]


def test_another_insurers_staff_and_practice_software_get_nothing(app: FastAPI, runtime: Runtime, world: World) -> None:
    other = make_insurer(runtime, amc_number="77120345", name="Prévoyance Vauban")
    stranger = staff(app, runtime, other, Role.INSURER_ADMIN)
    pharmacy = PracticeClient.register(app, runtime, profession=Profession.PHARMACIST)
    base = f"/api/v1/insurers/{world.insurer.id}"

    for path in ("/products", "/claims", "/payment-runs", "/members-imports", "/products/CONFORT"):
        assert stranger.get(base + path).status_code == 404, path
        assert pharmacy.get(base + path).status_code == 403, path
    assert stranger.post(f"{base}/payment-runs", json={"cutoff_date": TODAY.isoformat()}).status_code == 404


def test_a_members_file_is_refused_whole_when_unreadable_and_bad_rows_are_reported_without_values(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    base = f"/api/v1/insurers/{world.insurer.id}/members-imports"
    records = list(synth_members(count=3, seed=5, product_codes=["CONFORT"], today=TODAY, first_number=900))
    buffer = io.StringIO()
    write_file(iter(records), buffer, fmt="csv")
    lines = buffer.getvalue().splitlines()
    broken_nir = records[0].nir[:-2] + ("00" if records[0].nir[-2:] != "00" else "01")
    lines[1] = lines[1].replace(records[0].nir, broken_nir)

    unreadable = admin.post(base, files={"file": ("members.csv", b"\x00\x01binary", "text/csv")})
    job = admin.post(base, files={"file": ("members.csv", ("\n".join(lines) + "\n").encode(), "text/csv")})

    assert unreadable.status_code == 422
    assert unreadable.json()["type"].endswith("/import-file-unreadable")
    assert job.status_code == 202, job.text
    report = admin.get(f"{base}/{job.json()['job_id']}").json()
    assert report["status"] == "done"
    assert report["rows_done"] == report["rows_total"] == len(lines) - 1
    assert report["rejected"] >= 1
    assert report["errors"][0]["line"] == 2
    assert report["errors"][0]["field"] == "nir"
    assert broken_nir not in str(report)
    assert [j["job_id"] for j in admin.get(base).json()["jobs"]] == [job.json()["job_id"]]


def test_claims_agents_review_pending_claims_and_admins_run_payments(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    agent = staff(app, runtime, world.insurer, Role.CLAIMS_AGENT)
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    physician = PracticeClient.register(app, runtime, profession=Profession.PHYSICIAN)
    patient = world.patient(product="PREMIUM")
    check = physician.post(
        "/api/v1/rights-checks",
        json={
            "amc_number": world.insurer.amc_number,
            "member_number": patient.member_number,
            "nir": patient.nir,
            "birth_date": patient.birth_date.isoformat(),
            "birth_rank": patient.birth_rank,
        },
    ).json()
    # A specialist's surgery: 300 % BRSS leaves 3,600 € to the insurer, over the review threshold.
    surgery = {
        "care_domain": "CONS",
        "act_code": "QZFA036",
        "care_date": TODAY.isoformat(),
        "unit_price_cents": 500_000,
        "brss_cents": 200_000,
        "amo_rate_pct": 70,
    }
    claim = physician.post(
        "/api/v1/claims",
        json={"check_id": check["check_id"], "lines": [surgery]},
        headers={"Idempotency-Key": "surgery-1"},
    ).json()
    assert (claim["status"], claim["reason_code"]) == ("pending_review", "manual-review")
    base = f"/api/v1/insurers/{world.insurer.id}"

    queue = agent.get(f"{base}/claims", params={"status": "pending_review"}).json()["claims"]
    not_allowed = admin.post(f"{base}/claims/{claim['claim_id']}/review", json={"decision": "accept"})
    accepted = agent.post(f"{base}/claims/{claim['claim_id']}/review", json={"decision": "accept"})
    twice = agent.post(f"{base}/claims/{claim['claim_id']}/review", json={"decision": "reject"})

    assert [c["claim_id"] for c in queue] == [claim["claim_id"]]
    assert not_allowed.status_code == 403
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["status"], accepted.json()["insurer_cents"]) == ("accepted", 360_000)
    assert twice.status_code == 409
    run = admin.post(f"{base}/payment-runs", json={"cutoff_date": TODAY.isoformat()})
    assert run.status_code == 201, run.text
    assert (run.json()["claim_count"], run.json()["total_cents"]) == (1, 360_000)
    assert [r["payment_run_id"] for r in admin.get(f"{base}/payment-runs").json()["payment_runs"]] == [
        run.json()["payment_run_id"]
    ]
    detail = admin.get(f"{base}/payment-runs/{run.json()['payment_run_id']}").json()
    assert [r["total_cents"] for r in detail["remittances"]] == [360_000]
    assert physician.get(f"/api/v1/claims/{claim['claim_id']}").json()["status"] == "paid"
