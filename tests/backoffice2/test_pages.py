"""The insurer's back office, part 2, over HTTP: the claims review queue and a claim's decision,
prior approvals to decide, payment runs with a second staff member's approval, breach notices.
Each page for its roles and a 403 page for others; another insurer's records answer like missing
ones; French by default, English on request."""

from __future__ import annotations

import html
import re
import uuid

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from rempart.claims.models import Claim, ClaimStatus
from rempart.identity.permissions import Role
from rempart.payments import approval
from rempart.payments.approval_models import PaymentRunRequest, RunRequestStatus
from rempart.payments.models import PaymentRun, Remittance
from rempart.runtime import Runtime
from tests.backoffice2.conftest import Staff, billed, staff
from tests.factories import make_insurer
from tests.portal.conftest import World
from tests.support.practice_client import PracticeClient


def text(response: object) -> str:
    return html.unescape(response.text)  # type: ignore[attr-defined]


@pytest.fixture
def agent(app: FastAPI, runtime: Runtime, world: World) -> Staff:
    return staff(app, runtime, world.insurer.id, "agent@remparts.test", Role.CLAIMS_AGENT)


@pytest.fixture
def admin(app: FastAPI, runtime: Runtime, world: World) -> Staff:
    return staff(app, runtime, world.insurer.id, "admin@remparts.test", Role.INSURER_ADMIN)


@pytest.fixture
def admin2(app: FastAPI, runtime: Runtime, world: World) -> Staff:
    return staff(app, runtime, world.insurer.id, "tresorier@remparts.test", Role.INSURER_ADMIN)


@pytest.fixture
def outsider(app: FastAPI, runtime: Runtime, world: World) -> Staff:
    """A claims agent and administrator of another insurer."""
    other = make_insurer(runtime, amc_number="77450202", name="Mutuelle d'Ailleurs")
    return staff(app, runtime, other.id, "agent@ailleurs.test", Role.CLAIMS_AGENT, Role.INSURER_ADMIN)


def status_of(runtime: Runtime, claim_id: uuid.UUID) -> ClaimStatus:
    with runtime.sessions() as session:
        return session.scalars(select(Claim.status).where(Claim.id == claim_id)).one()


# -- the claims review -----------------------------------------------------------------------------


def test_the_queue_shows_pending_claims_in_words_and_the_agent_accepts_one(
    runtime: Runtime, world: World, agent: Staff, pharmacy: PracticeClient
) -> None:
    first = billed(world, runtime, pharmacy)
    queue = agent.page("/insurer/claims")
    assert queue.status_code == 200
    assert "Factures à examiner" in text(queue)
    assert f"/insurer/claims/{first}" in queue.text
    assert "Montant au-dessus du seuil d'examen" in text(queue)  # the reason in words
    assert "Pharmacie du Port" in text(queue)

    detail = agent.page(f"/insurer/claims/{first}")
    assert detail.status_code == 200
    assert "Accepter la facture" in text(detail)
    assert "Lignes de soins" in text(detail)
    answer = agent.form(f"/insurer/claims/{first}/review", {"decision": "accept"})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/insurer/claims/{first}?decided=accepted"
    after = agent.page(answer.headers["location"])
    assert "Vous avez accepté cette facture" in text(after)
    assert "Accepter la facture" not in text(after)  # decided: no form any more
    assert status_of(runtime, first) is ClaimStatus.ACCEPTED


def test_a_rejection_needs_a_reason_from_the_list(
    runtime: Runtime, world: World, agent: Staff, pharmacy: PracticeClient
) -> None:
    claim = billed(world, runtime, pharmacy)
    agent.page(f"/insurer/claims/{claim}")
    refused = agent.form(f"/insurer/claims/{claim}/review", {"decision": "reject", "reject_reason": "whatever"})
    assert refused.status_code == 422
    assert "Choisissez pourquoi vous rejetez la facture." in text(refused)
    assert status_of(runtime, claim) is ClaimStatus.PENDING_REVIEW
    other = agent.form(f"/insurer/claims/{claim}/review", {"decision": "reject", "reject_reason": "other"})
    assert other.status_code == 422
    assert "Dites en quelques mots" in text(other)

    done = agent.form(
        f"/insurer/claims/{claim}/review",
        {"decision": "reject", "reject_reason": "documents-missing", "comment": "Ordonnance absente"},
    )
    assert done.status_code == 303
    assert "Vous avez rejeté cette facture" in text(agent.page(done.headers["location"]))
    assert status_of(runtime, claim) is ClaimStatus.REJECTED
    # Deciding again: the form is gone, and a replayed post is told it was decided meanwhile.
    again = agent.form(f"/insurer/claims/{claim}/review", {"decision": "accept"})
    assert again.status_code == 422
    assert "décidée entre-temps" in text(again)


def test_the_queue_filters_by_amount_reason_practice_and_attestation(
    runtime: Runtime, world: World, agent: Staff, pharmacy: PracticeClient
) -> None:
    claim = billed(world, runtime, pharmacy)
    assert f"/insurer/claims/{claim}" in agent.page("/insurer/claims?min_euros=0&max_euros=100000").text
    assert f"/insurer/claims/{claim}" not in agent.page("/insurer/claims?min_euros=99999").text
    assert f"/insurer/claims/{claim}" in agent.page("/insurer/claims?reason=manual-review").text
    assert f"/insurer/claims/{claim}" not in agent.page("/insurer/claims?reason=duplicate-claim").text
    practice = pharmacy.practice_id
    assert f"/insurer/claims/{claim}" in agent.page(f"/insurer/claims?practice={practice}").text
    assert f"/insurer/claims/{claim}" not in agent.page(f"/insurer/claims?practice={uuid.uuid4()}").text
    assert f"/insurer/claims/{claim}" not in agent.page("/insurer/claims?attestation=yes").text
    wrong = agent.page("/insurer/claims?min_euros=beaucoup")
    assert wrong.status_code == 422
    assert "Écrivez un montant en euros" in text(wrong)


def test_another_insurers_claim_reads_like_a_missing_one(
    runtime: Runtime, world: World, agent: Staff, outsider: Staff, pharmacy: PracticeClient
) -> None:
    claim = billed(world, runtime, pharmacy)
    nowhere = uuid.uuid4()
    theirs = outsider.page(f"/insurer/claims/{claim}")
    missing = outsider.page(f"/insurer/claims/{nowhere}")
    assert theirs.status_code == missing.status_code == 404
    # The same page, word for word, but for the id in the address.
    assert text(theirs).replace(str(claim), "ID") == text(missing).replace(str(nowhere), "ID")
    assert "Cette page n'existe pas" in text(theirs)
    assert f"/insurer/claims/{claim}" not in outsider.page("/insurer/claims?status=").text
    decided = outsider.form(f"/insurer/claims/{claim}/review", {"decision": "accept"})
    assert decided.status_code == 404
    assert status_of(runtime, claim) is ClaimStatus.PENDING_REVIEW


# -- who may see what ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allowed", "refused"),
    [
        ("/insurer/claims", {Role.CLAIMS_AGENT, Role.INSURER_ADMIN}, {Role.DPO}),
        ("/insurer/approvals", {Role.CLAIMS_AGENT, Role.INSURER_ADMIN}, {Role.DPO}),
        ("/insurer/payment-runs", {Role.INSURER_ADMIN}, {Role.CLAIMS_AGENT, Role.DPO}),
        ("/insurer/payment-runs/preview", {Role.INSURER_ADMIN}, {Role.CLAIMS_AGENT}),
        ("/insurer/incidents", {Role.INSURER_ADMIN, Role.DPO}, {Role.CLAIMS_AGENT}),
    ],
)
def test_each_page_opens_to_its_roles_and_refuses_the_others(
    *, app: FastAPI, runtime: Runtime, world: World, path: str, allowed: set[Role], refused: set[Role]
) -> None:
    for role in sorted(allowed | refused):
        member = staff(app, runtime, world.insurer.id, f"{role.value}@remparts.test", role)
        answer = member.page(path)
        if role in allowed:
            assert answer.status_code == 200, (path, role, answer.text[:300])
        else:
            assert answer.status_code == 403, (path, role)
            assert "Votre rôle ne le permet pas" in text(answer)
    # A professional of a practice is no insurer's staff.
    assert world.counter.page(path).status_code == 403


def test_pages_speak_english_on_request(runtime: Runtime, world: World, admin: Staff, pharmacy: PracticeClient) -> None:
    billed(world, runtime, pharmacy)
    admin.english()
    assert "Claims review" in admin.page("/insurer/claims").text
    assert "Prior approvals to decide" in text(admin.page("/insurer/approvals"))
    assert "Preview the run" in admin.page("/insurer/payment-runs").text
    assert "No breach concerns your members." in admin.page("/insurer/incidents").text
    runs = admin.page("/insurer/payment-runs")
    assert "Factures" not in runs.text


# -- payment runs and their second approval -------------------------------------------------------------


def runs_of(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(PaymentRun)) or 0


def test_the_threshold_is_fifty_thousand_euros() -> None:
    assert approval.SECOND_APPROVAL_CENTS == 5_000_000


def test_a_small_run_is_previewed_then_made_at_once_with_its_remittance_csv(
    runtime: Runtime, world: World, admin: Staff, pharmacy: PracticeClient
) -> None:
    claim = billed(world, runtime, pharmacy, review=False)
    preview = admin.page("/insurer/payment-runs/preview")
    assert preview.status_code == 200
    assert "Aperçu du paiement" in text(preview)
    assert "Pharmacie du Port" in text(preview)
    assert str(claim)[:8] in preview.text
    assert runs_of(runtime) == 0  # a preview pays nothing
    key = re.search(r'name="idempotency_key" value="([0-9a-f-]{36})"', preview.text)
    assert key is not None  # the preview's own key: the form sent twice makes one run
    sent = {"cutoff": world.clock().date().isoformat(), "idempotency_key": key.group(1)}
    made = admin.form("/insurer/payment-runs", sent)
    twice = admin.form("/insurer/payment-runs", sent)
    assert made.status_code == 303
    assert made.headers["location"].startswith("/insurer/payment-runs/")
    assert twice.headers["location"] == made.headers["location"]
    assert runs_of(runtime) == 1
    nothing = admin.form("/insurer/payment-runs", {"cutoff": world.clock().date().isoformat()})
    assert nothing.headers["location"] == "/insurer/payment-runs?note=nothing"  # nothing due: no empty run
    assert "Rien n'est dû jusqu'à ce jour" in text(admin.page(nothing.headers["location"]))
    assert runs_of(runtime) == 1
    run = admin.page(made.headers["location"])
    assert "RSP-" in run.text
    assert "Pharmacie du Port" in text(run)
    csv = admin.page(made.headers["location"] + "/remittances.csv")
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert str(claim) in csv.text
    assert "remittance_number" in csv.text
    assert status_of(runtime, claim) is ClaimStatus.PAID


def test_a_big_run_needs_a_second_person_and_happens_once(
    *,
    runtime: Runtime,
    world: World,
    admin: Staff,
    admin2: Staff,
    monkeypatch: pytest.MonkeyPatch,
    pharmacy: PracticeClient,
) -> None:
    monkeypatch.setattr(approval, "SECOND_APPROVAL_CENTS", 1)  # every run is "big"
    claim = billed(world, runtime, pharmacy, review=False)
    assert "un second membre du personnel doit l'approuver" in text(admin.page("/insurer/payment-runs/preview"))
    asked = admin.form("/insurer/payment-runs", {"cutoff": world.clock().date().isoformat()})
    assert asked.status_code == 303
    assert asked.headers["location"] == "/insurer/payment-runs?note=asked"
    assert runs_of(runtime) == 0
    assert status_of(runtime, claim) is ClaimStatus.ACCEPTED
    with runtime.sessions() as session:
        request_id = session.scalars(select(PaymentRunRequest.id)).one()

    # The one who asked cannot approve, nor refuse: nothing is paid.
    page = admin.page("/insurer/payment-runs")
    assert f"/requests/{request_id}/approve" not in page.text
    own = admin.form(f"/insurer/payment-runs/requests/{request_id}/approve")
    assert own.status_code == 403
    assert "un second membre du personnel doit l'approuver" in text(own)
    assert admin.form(f"/insurer/payment-runs/requests/{request_id}/refuse").status_code == 403
    assert runs_of(runtime) == 0

    # Another insurer's staff: not found.
    # A second administrator approves: the run is made, once.
    assert f"/requests/{request_id}/approve" in admin2.page("/insurer/payment-runs").text
    approved = admin2.form(f"/insurer/payment-runs/requests/{request_id}/approve")
    assert approved.status_code == 303
    again = admin2.form(f"/insurer/payment-runs/requests/{request_id}/approve")
    assert again.status_code == 303
    assert again.headers["location"].endswith("note=already")
    assert runs_of(runtime) == 1
    assert status_of(runtime, claim) is ClaimStatus.PAID
    with runtime.sessions() as session:
        request = session.scalars(select(PaymentRunRequest)).one()
        assert request.status is RunRequestStatus.APPROVED
        assert request.run_id is not None
        assert request.decided_by != request.requested_by
        assert session.scalar(select(func.count()).select_from(Remittance)) == 1
    assert "RSP-" in admin2.page(approved.headers["location"]).text


def test_a_request_lapses_when_the_claims_changed_and_another_insurer_cannot_touch_it(
    *,
    runtime: Runtime,
    world: World,
    admin: Staff,
    admin2: Staff,
    outsider: Staff,
    monkeypatch: pytest.MonkeyPatch,
    pharmacy: PracticeClient,
) -> None:
    monkeypatch.setattr(approval, "SECOND_APPROVAL_CENTS", 1)
    billed(world, runtime, pharmacy, review=False)
    admin.page("/insurer/payment-runs")
    admin.form("/insurer/payment-runs", {"cutoff": world.clock().date().isoformat()})
    with runtime.sessions() as session:
        request_id = session.scalars(select(PaymentRunRequest.id)).one()
    assert outsider.form(f"/insurer/payment-runs/requests/{request_id}/approve").status_code == 404
    billed(world, runtime, pharmacy, review=False, index=1)  # accepted after the request: more to pay than was asked
    lapsed = admin2.form(f"/insurer/payment-runs/requests/{request_id}/approve")
    assert lapsed.headers["location"].endswith("note=lapsed")
    assert runs_of(runtime) == 0


# -- prior approvals and breach notices ------------------------------------------------------------------


def test_the_approvals_page_is_empty_without_requests(agent: Staff) -> None:
    page = agent.page("/insurer/approvals")
    assert page.status_code == 200
    assert "Aucun accord préalable n'attend de décision." in text(page)


def test_the_breach_notices_page_without_incident_and_a_missing_one(admin: Staff) -> None:
    assert "Aucune violation ne concerne vos adhérents." in text(admin.page("/insurer/incidents"))
    assert admin.page(f"/insurer/incidents/{uuid.uuid4()}").status_code == 404
    assert admin.page(f"/insurer/incidents/{uuid.uuid4()}/bundle").status_code == 404
