"""No answer leaves whose access event did not commit, on SQLite and PostgreSQL.

For every route that discloses a beneficiary's data (the rights check and its batch, the quote, the
prior approval asked, read, decided or cancelled, the claim billed, corrected, cancelled, listed or
read by the practice or by the insurer's staff, the payment run, the remittance read), the commit of
the transaction that carries its access event is refused once: the answer is a 5xx problem that says
nothing of the beneficiary (no NIR, name, amount, id) and no access event is kept. The same request
then succeeds, which shows that the route does disclose when the log takes its event. The practice's
list of remittances is not among them: it shows totals only and names no patient, so it writes no
access event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import httpx
from fastapi import FastAPI
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from rempart.audit import care as access
from rempart.audit.models import AccessEvent
from rempart.identity.permissions import Role
from rempart.members.models import BeneficiaryRole
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.e2e.scan import identities_in
from tests.e2e.test_professional_day import load_population, new_insurer, staff
from tests.factories import TODAY
from tests.support.practice_client import PracticeClient

# A stay whose insurer share (the remainder after the AMO, 560 000 cents) is above both review
# thresholds: its approval and its claim wait for a person at the insurer.
BIG_STAY = {
    "care_domain": "HOSP",
    "act_code": "GHS1234",
    "care_date": TODAY.isoformat(),
    "unit_price_cents": 2_000_000,
    "brss_cents": 1_800_000,
    "amo_rate_pct": 80,
}
SMALL_STAY = {**BIG_STAY, "unit_price_cents": 90_000, "brss_cents": 80_000}
HOSPITAL_COVER = {"care_domain": "HOSP", "brss_rate_pct": 400, "prior_approval_required": True}


class CommitRefused(Exception):
    """The database refused the commit (a full disk, a lost connection, a failover)."""


@contextmanager
def access_event_commits_refused() -> Iterator[None]:
    """While open, a session that wrote a care access event fails at its commit, whatever the route,
    before anything reaches the database. (The log writes through the driver's cursor, unseen by
    SQLAlchemy's statement events: the care domains' one writer marks the session instead.)"""
    write = access.record_access

    def marking(session: Session, *args: Any, **kwargs: Any) -> uuid.UUID:
        event_id = write(session, *args, **kwargs)
        session.info["wrote_access_event"] = True
        return event_id

    def before_commit(session: Session) -> None:
        if session.info.pop("wrote_access_event", False):
            raise CommitRefused

    def after_rollback(session: Session) -> None:
        session.info.pop("wrote_access_event", None)

    listeners: list[tuple[str, Callable[..., None]]] = [
        ("before_commit", before_commit),
        ("after_rollback", after_rollback),
    ]
    for name, listener in listeners:
        event.listen(Session, name, listener)
    try:
        with patch.object(access, "record_access", marking):
            yield
    finally:
        for name, listener in listeners:
            event.remove(Session, name, listener)


def access_events(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(AccessEvent)) or 0


def test_no_route_answers_personal_data_whose_access_event_did_not_commit(
    app: FastAPI, runtime: Runtime, population: list[MemberRecord]
) -> None:
    insurer = new_insurer(runtime)
    admin = staff(app, runtime, insurer, Role.INSURER_ADMIN, "admin@remparts.test")
    agent = staff(app, runtime, insurer, Role.CLAIMS_AGENT, "agent@remparts.test")
    base = f"/api/v1/insurers/{insurer.id}"
    product = admin.post(f"{base}/products", json={"code": "OPTIQUE", "name": "Séjour", "guarantees": [HOSPITAL_COVER]})
    assert product.status_code == 201, product.text
    load_population(admin, insurer, population)
    patient = next(
        r
        for r in population
        if r.role is BeneficiaryRole.HOLDER
        and r.contract_start <= TODAY
        and (r.contract_end is None or r.contract_end >= TODAY)
    )
    hospital = PracticeClient.register(app, runtime, profession=Profession.HOSPITAL, practice_name="Clinique du Parc")
    hospital.token()  # credentials first: their own security events are not the point here
    card = {
        "amc_number": insurer.amc_number,
        "member_number": patient.member_number,
        "nir": patient.nir,
        "birth_date": patient.birth_date.isoformat(),
        "care_domains": ["HOSP"],
    }
    allowed = {TODAY + timedelta(days=k) for k in range(-30, 400)}
    allowed |= {r.contract_start for r in population} | {r.contract_end for r in population if r.contract_end}
    refused_routes: list[str] = []

    def disclosed(name: str, send: Callable[[], httpx.Response], expected: int = 200) -> dict[str, Any]:
        """Refused once at the commit of its access event (nothing leaves, nothing is kept), then answered."""
        before = access_events(runtime)
        with access_event_commits_refused():
            refused = send()
        assert refused.status_code >= 500, (name, refused.status_code, refused.text)
        assert refused.headers["content-type"] == "application/problem+json", name
        problem = refused.json()
        assert set(problem) == {"type", "title", "status", "detail"}, (name, problem)
        assert problem["status"] == refused.status_code, name
        assert not identities_in(refused.content, population, allowed_dates=allowed), name
        assert access_events(runtime) == before, f"{name}: an access event was kept"
        answered = send()
        assert answered.status_code == expected, (name, answered.text)
        assert access_events(runtime) > before, f"{name}: answered without an access event"
        refused_routes.append(name)
        result: dict[str, Any] = answered.json()
        return result

    # The rights check, alone and in a batch.
    check = disclosed("rights check", lambda: hospital.post("/api/v1/rights-checks", json=card))
    check_id = check["check_id"]
    disclosed("rights check batch", lambda: hospital.post("/api/v1/rights-checks/batch", json={"checks": [card]}))

    # The quote.
    quote = disclosed(
        "quote", lambda: hospital.post("/api/v1/quotes", json={"check_id": check_id, "lines": [BIG_STAY]})
    )
    assert quote["lines"][0]["insurer_cents"] == 560_000

    # A prior approval asked (it waits for a person), read, listed and granted by the insurer's agent.
    asked = disclosed(
        "prior approval request",
        lambda: hospital.post(
            "/api/v1/prior-approvals",
            json={"check_id": check_id, "care_domain": "HOSP", "lines": [BIG_STAY]},
            headers={"Idempotency-Key": "stay-1"},
        ),
        201,
    )
    assert asked["status"] == "pending"
    approval_path = f"/api/v1/prior-approvals/{asked['approval_id']}"
    disclosed("prior approval read", lambda: hospital.get(approval_path))
    waiting = disclosed("pending approvals (insurer)", lambda: agent.get(f"{base}/prior-approvals"))
    assert [a["approval_id"] for a in waiting["prior_approvals"]] == [asked["approval_id"]]
    decision = f"{base}/prior-approvals/{asked['approval_id']}/decision"
    granted = disclosed("approval decision (insurer)", lambda: agent.post(decision, json={"decision": "grant"}))
    assert granted["status"] == "granted"

    # The claim: billed (it waits for review), listed and read by the practice and the insurer, accepted.
    claimed = disclosed(
        "claim",
        lambda: hospital.post(
            "/api/v1/claims",
            json={"check_id": check_id, "approval_number": asked["approval_number"], "lines": [BIG_STAY]},
            headers={"Idempotency-Key": "bill-1"},
        ),
        201,
    )
    assert claimed["status"] == "pending_review", claimed
    claim_path = f"/api/v1/claims/{claimed['claim_id']}"
    disclosed("claims list", lambda: hospital.get("/api/v1/claims"))
    disclosed("claim read", lambda: hospital.get(claim_path))
    disclosed("claims list (insurer)", lambda: agent.get(f"{base}/claims?status=pending_review"))
    disclosed("claim read (insurer)", lambda: agent.get(f"{base}/claims/{claimed['claim_id']}"))
    review = f"{base}/claims/{claimed['claim_id']}/review"
    reviewed = disclosed("claim review (insurer)", lambda: agent.post(review, json={"decision": "accept"}))
    assert reviewed["status"] == "accepted"

    # The insurer pays; the practice reads its remittance.
    run_body = {"cutoff_date": TODAY.isoformat()}
    run = disclosed("payment run (insurer)", lambda: admin.post(f"{base}/payment-runs", json=run_body), 201)
    assert run["claim_count"] == 1
    (remittance,) = hospital.get("/api/v1/remittances").json()["remittances"]
    disclosed("remittance read", lambda: hospital.get(f"/api/v1/remittances/{remittance['remittance_id']}"))

    # A claim billed without approval (rejected), corrected, then cancelled; an approval cancelled.
    rejected = hospital.post(
        "/api/v1/claims", json={"check_id": check_id, "lines": [SMALL_STAY]}, headers={"Idempotency-Key": "bill-2"}
    ).json()
    assert rejected["status"] == "rejected"
    corrected = disclosed(
        "claim correction",
        lambda: hospital.post(
            f"/api/v1/claims/{rejected['claim_id']}/corrections",
            json={"check_id": check_id, "lines": [SMALL_STAY]},
            headers={"Idempotency-Key": "bill-3"},
        ),
        201,
    )
    cancel_claim = f"/api/v1/claims/{corrected['claim_id']}/cancel"
    assert disclosed("claim cancel", lambda: hospital.post(cancel_claim))["status"] == "cancelled"
    small = hospital.post(
        "/api/v1/prior-approvals",
        json={"check_id": check_id, "care_domain": "HOSP", "lines": [SMALL_STAY]},
        headers={"Idempotency-Key": "stay-2"},
    ).json()
    cancel_approval = f"/api/v1/prior-approvals/{small['approval_id']}/cancel"
    assert disclosed("prior approval cancel", lambda: hospital.post(cancel_approval))["status"] == "cancelled"

    assert len(refused_routes) == 18, refused_routes
