"""Prior approvals decided from the back office, and the breach notices of an incident that concerns
the insurer's members: its clock, its counts, what is missing, the bundle and the insurer's steps;
another insurer's staff read "not found" for both."""

from __future__ import annotations

import html
import io
import uuid
import zipfile
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from rempart.approvals.models import ApprovalStatus, PriorApproval
from rempart.approvals.service import ApprovalRequest, request_approval
from rempart.identity.permissions import Role
from rempart.incidents.facts import ScopeSet
from rempart.incidents.models import IncidentInsurer, LettersDecision
from rempart.incidents.service import do_add_scope, do_compute_facts, do_open_incident
from rempart.insurers.models import CareDomain
from rempart.pricing.engine import CareLine, Sante100Class
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.backoffice2.conftest import Staff, billed, rights_check, software_of, staff
from tests.factories import TODAY, make_insurer
from tests.portal.conftest import World
from tests.support.practice_client import PracticeClient


def text(response: object) -> str:
    return html.unescape(response.text)  # type: ignore[attr-defined]


@pytest.fixture
def agent(app: FastAPI, runtime: Runtime, world: World) -> Staff:
    return staff(app, runtime, world.insurer.id, "agent@remparts.test", Role.CLAIMS_AGENT)


@pytest.fixture
def dpo(app: FastAPI, runtime: Runtime, world: World) -> Staff:
    return staff(app, runtime, world.insurer.id, "dpo@remparts.test", Role.DPO)


@pytest.fixture
def outsider(app: FastAPI, runtime: Runtime) -> Staff:
    other = make_insurer(runtime, amc_number="77450202", name="Mutuelle d'Ailleurs")
    return staff(app, runtime, other.id, "dpo@ailleurs.test", Role.CLAIMS_AGENT, Role.INSURER_ADMIN, Role.DPO)


def pending_approval(world: World, runtime: Runtime) -> uuid.UUID:
    """Glasses the optician asks the insurer to approve, over a review threshold of one cent."""
    optician = world.counter.practice
    check_id = rights_check(world, optician)
    frames = CareLine(CareDomain.OPTI, "2210546", TODAY, 1, 25_000, 5, 60, Sante100Class.B)
    caller = software_of(optician)
    caller = type(caller)(**{**caller.__dict__, "profession": Profession.OPTICIAN})
    with runtime.sessions() as session:
        outcome = request_approval(
            session=session,
            caller=caller,
            request=ApprovalRequest(check_id=check_id, care_domain=CareDomain.OPTI, lines=(frames,)),
            idempotency_key=uuid.uuid4().hex,
            now=world.clock(),
            review_threshold_cents=1,
        )
        assert outcome.approval.status is ApprovalStatus.PENDING
        return outcome.approval.id


def test_an_agent_grants_a_pending_prior_approval(runtime: Runtime, world: World, agent: Staff) -> None:
    approval_id = pending_approval(world, runtime)
    page = agent.page("/insurer/approvals")
    assert page.status_code == 200
    assert "Optique du Port" in text(page)
    assert f"/insurer/approvals/{approval_id}/decision" in page.text
    granted = agent.form(f"/insurer/approvals/{approval_id}/decision", {"decision": "grant"})
    assert granted.status_code == 303
    assert "accordé : le cabinet le voit dès maintenant" in text(agent.page(granted.headers["location"]))
    again = agent.form(f"/insurer/approvals/{approval_id}/decision", {"decision": "refuse"})
    assert again.headers["location"].endswith("decided=already")
    with runtime.sessions() as session:
        status = session.scalars(select(PriorApproval.status).where(PriorApproval.id == approval_id)).one()
    assert status in {ApprovalStatus.GRANTED, ApprovalStatus.PARTIALLY_GRANTED}


def test_another_insurers_staff_cannot_decide_an_approval(
    runtime: Runtime, world: World, agent: Staff, outsider: Staff
) -> None:
    approval_id = pending_approval(world, runtime)
    assert f"/insurer/approvals/{approval_id}/" not in outsider.page("/insurer/approvals").text
    assert outsider.form(f"/insurer/approvals/{approval_id}/decision", {"decision": "refuse"}).status_code == 404
    assert f"/insurer/approvals/{approval_id}/decision" in agent.page("/insurer/approvals").text


def breach(world: World, runtime: Runtime, practice: PracticeClient) -> uuid.UUID:
    """An incident whose scope is the pharmacy's software, aware 50 hours ago, its facts computed."""
    now = world.clock()
    with runtime.sessions() as session:
        incident = do_open_incident(
            session,
            title="Clé API de pharmacie volée",
            nature=["confidentiality"],
            contact="dpo@rempart.test",
            operator_id=None,
            now=now,
            detected_at=now - timedelta(hours=51),
            aware_at=now - timedelta(hours=50),
        )
        incident_id = incident.id
        do_add_scope(
            session,
            incident_id=incident_id,
            scope=ScopeSet(
                since=now - timedelta(days=2), until=now + timedelta(hours=1), actor_ids=frozenset({practice.client_id})
            ),
            operator_id=None,
            now=now,
        )
        do_compute_facts(session, incident_id=incident_id, operator_id=None, now=now)
    return incident_id


def test_the_insurer_follows_a_breach_downloads_its_bundle_and_records_its_steps(
    runtime: Runtime, world: World, pharmacy: PracticeClient, dpo: Staff, outsider: Staff
) -> None:
    billed(world, runtime, pharmacy)  # the pharmacy's software checked a patient's rights
    incident_id = breach(world, runtime, pharmacy)

    listed = dpo.page("/insurer/incidents")
    assert listed.status_code == 200
    assert "Clé API de pharmacie volée" in text(listed)
    assert "48 heures écoulées" in text(listed)
    page = dpo.page(f"/insurer/incidents/{incident_id}")
    assert page.status_code == 200
    assert "22 h restantes" in text(page)
    assert "Votre notification à l'autorité de contrôle (art. 33)" in text(page)

    bundle = dpo.page(f"/insurer/incidents/{incident_id}/bundle")
    assert bundle.status_code == 200
    assert bundle.headers["content-type"] == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(bundle.content)).namelist()

    refused = dpo.form(f"/insurer/incidents/{incident_id}/art34", {})
    assert refused.status_code == 422
    assert "Choisissez si vous envoyez les courriers" in text(refused)
    assert dpo.form(f"/insurer/incidents/{incident_id}/art33").status_code == 303
    assert dpo.form(f"/insurer/incidents/{incident_id}/art34", {"letters": "send"}).status_code == 303
    after = dpo.page(f"/insurer/incidents/{incident_id}?done=art34")
    assert "Notifiée" in text(after)
    assert "Vous envoyez les courriers" in text(after)
    with runtime.sessions() as session:
        part = session.scalars(select(IncidentInsurer).where(IncidentInsurer.incident_id == incident_id)).first()
        assert part is not None
        assert part.authority_notified_at is not None
        assert part.letters is LettersDecision.SEND

    dpo.english()
    assert "72-hour clock" in dpo.page(f"/insurer/incidents/{incident_id}").text

    # Another insurer's staff: the same "not found" as for an incident that does not exist.
    assert "Clé API" not in text(outsider.page("/insurer/incidents"))
    for path in (f"/insurer/incidents/{incident_id}", f"/insurer/incidents/{incident_id}/bundle"):
        assert outsider.page(path).status_code == 404
    assert outsider.form(f"/insurer/incidents/{incident_id}/art33").status_code == 404
