"""The security console's routes: alerts, containments and kill switches, with identity's roles."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from rempart.audit.models import AccessEvent
from rempart.detection.actor import Actor, Attempt
from rempart.detection.engine import DetectionEngine
from rempart.detection.errors import AccessSuspended, ChannelDisconnected, SlowDown
from rempart.detection.models import KillChannel, SubjectKind
from rempart.identity.models import AccessToken, Account, AccountStatus, ApiClient, ClientStatus, SecurityEvent
from rempart.identity.permissions import Role
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.detection.conftest import ManualClock
from tests.factories import make_insurer
from tests.support.portal import PortalUser
from tests.support.practice_client import PracticeClient


@pytest.fixture
def operator(app: Any, runtime: Runtime) -> PortalUser:
    return PortalUser.invited(app, runtime, login="vigie@rempart.test", roles={Role.SECURITY_OPERATOR})


@pytest.fixture
def pharmacy(app: Any, runtime: Runtime) -> PracticeClient:
    return PracticeClient.register(app, runtime, profession=Profession.PHARMACIST)


def software(practice: PracticeClient) -> Actor:
    return Actor(
        channel=KillChannel.PRACTICE_API,
        practice_id=practice.practice_id,
        profession=practice.profession.value,
        client_id=practice.client_id,
        professional_id=practice.professional_id,
        address="192.0.2.10",
    )


def hammer(engine: DetectionEngine, actor: Actor, clock: ManualClock, *, insurer: uuid.UUID | None = None) -> None:
    """Replay checks until the client is suspended."""
    for _ in range(60):
        try:
            engine.observe(actor, hit=True, beneficiary_id=uuid.uuid4(), insurer_id=insurer)
        except AccessSuspended:
            break
        except Exception:  # noqa: BLE001 (slowed down or refused: the bot goes on)
            pass
        clock.advance(1)
    engine.drain()


def test_a_suspended_client_loses_its_tokens_and_the_operators_see_why(
    app: Any, runtime: Runtime, operator: PortalUser, pharmacy: PracticeClient, clock: ManualClock
) -> None:
    insurer = make_insurer(runtime)
    pharmacy.token()  # the stolen client holds a live token
    engine: DetectionEngine = app.state.detection
    hammer(engine, software(pharmacy), clock, insurer=insurer.id)

    with runtime.sessions() as session:
        client = session.get(ApiClient, pharmacy.client_id)
        assert client is not None
        assert client.status is ClientStatus.SUSPENDED
        assert session.scalars(select(AccessToken).where(AccessToken.client_id == pharmacy.client_id)).all() == []
        steps = session.scalars(select(AccessEvent.reference).where(AccessEvent.operation == "containment")).all()
    assert "client:suspended:refused_requests" in steps
    refused = pharmacy.request_token()  # no new token either, and the practice is told why
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/client-suspended")
    assert "contact the Rempart security team" in refused.json()["detail"]

    listed = operator.get("/api/v1/alerts", params={"severity": "high", "subject_kind": "client"})
    assert listed.status_code == 200, listed.text
    alerts = listed.json()["alerts"]
    assert len(alerts) == 1
    assert alerts[0]["subject_id"] == str(pharmacy.client_id)
    assert alerts[0]["insurer_ids"] == [str(insurer.id)]
    assert alerts[0]["status"] == "open"
    text = listed.text
    assert "nir" not in text.lower()

    contained = operator.get("/api/v1/containments").json()
    assert {(c["subject_kind"], c["subject_id"], c["level"]) for c in contained} >= {
        ("client", str(pharmacy.client_id), "suspended")
    }
    events = operator.get(f"/api/v1/containments/client/{pharmacy.client_id}/events").json()
    assert {"slowed", "step_up_required", "suspended", "alert_raised"} <= {e["kind"] for e in events}


def test_alerts_are_acknowledged_assigned_linked_and_closed(
    app: Any, runtime: Runtime, operator: PortalUser, pharmacy: PracticeClient, clock: ManualClock
) -> None:
    hammer(app.state.detection, software(pharmacy), clock)
    alert = operator.get("/api/v1/alerts", params={"severity": "high"}).json()["alerts"][0]
    path = f"/api/v1/alerts/{alert['id']}"

    acknowledged = operator.post(f"{path}/acknowledge")
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["status"] == "acknowledged"
    assert acknowledged.json()["acknowledged_by"] == str(operator.account_id)

    with runtime.sessions() as session:
        someone = session.scalar(select(Account.id).where(Account.login != "vigie@rempart.test"))
    refused = operator.post(f"{path}/assign", json={"assignee_id": str(someone or uuid.uuid4())})
    assert refused.status_code == 422
    assigned = operator.post(f"{path}/assign", json={"assignee_id": str(operator.account_id)})
    assert assigned.json()["assignee_id"] == str(operator.account_id)

    incident = uuid.uuid4()
    linked = operator.post(f"{path}/incident", json={"incident_id": str(incident)})
    assert linked.json()["incident_id"] == str(incident)
    other = operator.post(f"{path}/incident", json={"incident_id": str(uuid.uuid4())})
    assert other.status_code == 409
    by_incident = operator.get("/api/v1/alerts", params={"incident_id": str(incident)}).json()["alerts"]
    assert [a["id"] for a in by_incident] == [alert["id"]]

    closed = operator.post(f"{path}/close")
    assert closed.json()["status"] == "closed"
    assert operator.post(f"{path}/acknowledge").status_code == 409
    assert operator.get("/api/v1/alerts", params={"status": "open", "severity": "high"}).json()["alerts"] == []
    assert operator.get(f"/api/v1/alerts/{uuid.uuid4()}").status_code == 404


def test_only_security_operators_read_the_console_and_insurers_see_their_own(
    app: Any, runtime: Runtime, operator: PortalUser, pharmacy: PracticeClient, clock: ManualClock
) -> None:
    ours, theirs = make_insurer(runtime), make_insurer(runtime, amc_number="77450102", name="Autre")
    hammer(app.state.detection, software(pharmacy), clock, insurer=ours.id)
    assert pharmacy.request_token().status_code == 403  # the client is suspended by now
    other = PracticeClient.register(app, runtime)
    assert other.get("/api/v1/alerts").status_code == 403

    dpo = PortalUser.invited(app, runtime, login="dpo@mutuelle.test", roles={Role.DPO}, insurer_id=ours.id)
    seen = dpo.get(f"/api/v1/insurers/{ours.id}/alerts")
    assert seen.status_code == 200, seen.text
    assert [a["subject_id"] for a in seen.json()["alerts"]] == [str(pharmacy.client_id)]
    assert dpo.get(f"/api/v1/insurers/{theirs.id}/alerts").status_code == 404
    assert dpo.get("/api/v1/alerts").status_code == 403

    stranger = PortalUser.invited(app, runtime, login="dpo@autre.test", roles={Role.DPO}, insurer_id=theirs.id)
    assert stranger.get(f"/api/v1/insurers/{theirs.id}/alerts").json()["alerts"] == []


def test_an_operator_lifts_a_suspended_account_with_a_reason(
    app: Any, runtime: Runtime, operator: PortalUser, pharmacy: PracticeClient, clock: ManualClock
) -> None:
    pharmacist = PortalUser.invited(
        app,
        runtime,
        login="officine@pharmacie.test",
        roles={Role.PROFESSIONAL},
        practice_id=pharmacy.practice_id,
        professional_id=pharmacy.professional_id,
    )
    actor = Actor(
        channel=KillChannel.PROFESSIONAL_PORTAL,
        practice_id=pharmacy.practice_id,
        profession="pharmacist",
        account_id=pharmacist.account_id,
        professional_id=pharmacy.professional_id,
    )
    engine: DetectionEngine = app.state.detection
    hammer(engine, actor, clock)
    with runtime.sessions() as session:
        account = session.get(Account, pharmacist.account_id)
        assert account is not None
        assert account.status is AccountStatus.SUSPENDED
    assert pharmacist.get("/api/v1/auth/whoami").status_code == 401  # the session is gone

    path = f"/api/v1/containments/account/{pharmacist.account_id}/lift"
    assert operator.post(path, json={"reason": "ok"}).status_code == 422
    lifted = operator.post(path, json={"reason": "False positive: inventory day, confirmed by phone"})
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["level"] == "normal"
    assert lifted.json()["lift_reason"].startswith("False positive")
    assert operator.post(path, json={"reason": "again, twice"}).status_code == 404
    with runtime.sessions() as session:
        account = session.get(Account, pharmacist.account_id)
        assert account is not None
        assert account.status is AccountStatus.ACTIVE
    clock.advance(timedelta(minutes=1))
    engine.observe(actor, hit=True, beneficiary_id=uuid.uuid4())  # counters start afresh
    events = operator.get(f"/api/v1/containments/account/{pharmacist.account_id}/events").json()
    lift = next(e for e in events if e["kind"] == "lifted")
    assert lift["operator_id"] == str(operator.account_id)


def test_kill_switches_through_the_console(
    app: Any, runtime: Runtime, operator: PortalUser, pharmacy: PracticeClient, clock: ManualClock
) -> None:
    engine: DetectionEngine = app.state.detection
    actor = software(pharmacy)
    engine.guard(actor)

    refused = operator.post("/api/v1/kill-switches", json={"scope": "channel", "target": "fax", "reason": "test it"})
    assert refused.status_code == 422
    created = operator.post(
        "/api/v1/kill-switches",
        json={"scope": "channel", "target": "practice_api", "reason": "Stolen client keys being replayed"},
    )
    assert created.status_code == 201, created.text
    switch = created.json()
    assert switch["active"] is True
    again = operator.post(
        "/api/v1/kill-switches", json={"scope": "channel", "target": "practice_api", "reason": "twice over"}
    )
    assert again.status_code == 409

    with pytest.raises(ChannelDisconnected) as cut:
        engine.guard(actor)
    problem = cut.value.problem()
    assert problem["status"] == 503
    assert problem["offline_attestation"] is True
    assert problem["attestation_keys"] == "/.well-known/rempart/attestation-keys"
    portal = Actor(channel=KillChannel.PROFESSIONAL_PORTAL, practice_id=pharmacy.practice_id, account_id=uuid.uuid4())
    engine.guard(portal)  # another channel goes on

    listed = operator.get("/api/v1/kill-switches").json()
    assert [s["id"] for s in listed] == [switch["id"]]
    cleared = operator.post(f"/api/v1/kill-switches/{switch['id']}/clear", json={"reason": "Keys rotated, all clear"})
    assert cleared.status_code == 200
    assert cleared.json()["active"] is False
    engine.guard(actor)
    assert operator.get("/api/v1/kill-switches").json() == []

    pharmacy_switch = operator.post(
        "/api/v1/kill-switches",
        json={"scope": "profession", "target": "pharmacist", "reason": "Pharmacy software vendor compromised"},
    )
    assert pharmacy_switch.status_code == 201
    with pytest.raises(ChannelDisconnected):
        engine.guard(actor)
    optician = Actor(channel=KillChannel.PRACTICE_API, profession="optician", client_id=uuid.uuid4())
    engine.guard(optician)


def test_a_probing_client_is_told_the_same_thing_whatever_the_date(
    app: Any, runtime: Runtime, pharmacy: PracticeClient, clock: ManualClock
) -> None:
    engine: DetectionEngine = app.state.detection
    actor = software(pharmacy)
    answers = []
    for day in range(1, 12):
        attempt = Attempt("88450101", f"M{day:03d}", "184127512345632", date(1984, 12, day))
        try:
            engine.observe(actor, hit=False, attempt=attempt)
            answers.append("miss")
        except SlowDown as exc:
            answers.append(exc.slug)
        except Exception as exc:  # noqa: BLE001
            answers.append(getattr(exc, "slug", type(exc).__name__))
        clock.advance(25)
    assert answers[:3] == ["miss", "miss", "checks-refused"]
    engine.drain()
    with runtime.sessions() as session:
        contained = session.scalars(select(AccessEvent.reference).where(AccessEvent.operation == "containment")).all()
    assert "client:step_up:misses_1h" in contained
    assert all(r.split(":")[0] in {k.value for k in SubjectKind} for r in contained)


def security_events(runtime: Runtime, **owner: uuid.UUID) -> list[str]:
    column = SecurityEvent.client_id if "client_id" in owner else SecurityEvent.account_id
    with runtime.sessions() as session:
        rows = session.scalars(select(SecurityEvent).where(column == next(iter(owner.values())))).all()
    # The ladder's events for this account or client itself, in order (not its professional's steps;
    # enrolment, logins and the like are not what this is about).
    return [
        r.kind.value
        for r in sorted(rows, key=lambda r: r.at)
        if r.kind.value in _LADDER and json.loads(r.detail).get("subject", "") != "professional"
    ]


_LADDER = {"checks_slowed", "step_up_required", "account_suspended", "client_suspended", "containment_lifted"}


def containment_steps(runtime: Runtime, subject_id: uuid.UUID) -> list[str]:
    with runtime.sessions() as session:
        rows = session.scalars(
            select(AccessEvent)
            .where(AccessEvent.operation == "containment", AccessEvent.actor_id == subject_id)
            .order_by(AccessEvent.id)
        ).all()
    return [str(r.reference).split(":")[1] for r in rows]


def test_each_step_of_a_client_is_a_security_event_and_an_access_event_and_lifting_reactivates_it(
    app: Any, runtime: Runtime, operator: PortalUser, pharmacy: PracticeClient, clock: ManualClock
) -> None:
    engine: DetectionEngine = app.state.detection
    hammer(engine, software(pharmacy), clock)
    assert pharmacy.request_token().json()["type"].endswith("/client-suspended")

    lifted = operator.post(
        f"/api/v1/containments/client/{pharmacy.client_id}/lift",
        json={"reason": "Practice confirmed a software bug looping on checks; key rotated"},
    )
    assert lifted.status_code == 200, lifted.text
    with runtime.sessions() as session:
        client = session.get(ApiClient, pharmacy.client_id)
        assert client is not None
        assert client.status is ClientStatus.ACTIVE  # the same client and key work again
    clock.advance(timedelta(minutes=1))
    assert pharmacy.token(fresh=True)
    assert pharmacy.get("/api/v1/remittances").status_code == 200

    assert security_events(runtime, client_id=pharmacy.client_id) == [
        "checks_slowed",
        "step_up_required",
        "client_suspended",
        "containment_lifted",
    ]
    assert containment_steps(runtime, pharmacy.client_id) == ["slow", "step_up", "suspended", "normal"]


def test_each_step_of_an_account_is_in_its_security_events_and_the_access_log(
    app: Any, runtime: Runtime, operator: PortalUser, pharmacy: PracticeClient, clock: ManualClock
) -> None:
    pharmacist = PortalUser.invited(
        app,
        runtime,
        login="comptoir@pharmacie.test",
        roles={Role.PROFESSIONAL},
        practice_id=pharmacy.practice_id,
        professional_id=pharmacy.professional_id,
    )
    assert pharmacist.account_id is not None
    actor = Actor(
        channel=KillChannel.PROFESSIONAL_PORTAL,
        practice_id=pharmacy.practice_id,
        profession="pharmacist",
        account_id=pharmacist.account_id,
        professional_id=pharmacy.professional_id,
    )
    hammer(app.state.detection, actor, clock)
    lifted = operator.post(
        f"/api/v1/containments/account/{pharmacist.account_id}/lift",
        json={"reason": "Confirmed with the pharmacist by phone"},
    )
    assert lifted.status_code == 200, lifted.text
    assert security_events(runtime, account_id=pharmacist.account_id) == [
        "checks_slowed",
        "step_up_required",
        "account_suspended",
        "containment_lifted",
    ]
    assert containment_steps(runtime, pharmacist.account_id) == ["slow", "step_up", "suspended", "normal"]
    # The owner sees them too, with the reason only (no personal data).
    assert pharmacist.sign_in().status_code == 200
    own = pharmacist.get("/api/v1/me/security-events")
    assert own.status_code == 200, own.text
    assert {"checks_slowed", "step_up_required", "account_suspended", "containment_lifted"} <= {
        e["kind"] for e in own.json()
    }


def test_a_token_of_a_suspended_client_opens_nothing(app: Any, runtime: Runtime, pharmacy: PracticeClient) -> None:
    """Suspension deletes the client's tokens; one issued in the same instant is refused anyway."""
    pharmacy.token()
    with runtime.sessions.begin() as session:
        client = session.get(ApiClient, pharmacy.client_id)
        assert client is not None
        client.status = ClientStatus.SUSPENDED
    refused = pharmacy.get("/api/v1/remittances")
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["type"].endswith("/client-suspended")
    assert problem["offline_attestation"] is True
