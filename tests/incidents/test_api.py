"""The breach response over HTTP: the security console opens an incident from an alert, scopes it
to a stolen client, computes the facts; the insurer's DPO sees its own part only, downloads its
bundle (manifest hashes checked), records its notification and decision; the insured person asks
"was I affected, and what of mine was seen"; the clock raises its alerts at 48 h and 66 h."""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from rempart.audit.models import AccessEvent
from rempart.detection.models import Alert, AlertKind, Severity
from rempart.detection.service import raise_alert
from rempart.eligibility.service import RightsAnswer
from rempart.identity.permissions import Role
from rempart.incidents.clock import DeadlineWatch, clock_of, do_raise_deadline_alerts
from rempart.incidents.models import Incident
from rempart.incidents.service import do_open_incident
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.attestations.test_service import beneficiary_of
from tests.eligibility.world import World, build_world, practice_principal
from tests.factories import make_insurer
from tests.incidents.test_breach_drill import check
from tests.support.clock import FakeClock
from tests.support.portal import PortalUser


@pytest.fixture
def world(runtime: Runtime, population: list[MemberRecord]) -> World:
    built = build_world(runtime, members=10)
    population.extend(built.records)
    return built


def test_from_alert_to_bundle_to_the_persons_own_answer(
    app: FastAPI, app_runtime: Runtime, runtime: Runtime, world: World, clock: FakeClock
) -> None:
    operator = PortalUser.invited(app, app_runtime, login="vigie@rempart.test", roles={Role.SECURITY_OPERATOR})
    dpo = PortalUser.invited(app, app_runtime, login="dpo@remparts.test", roles={Role.DPO}, insurer_id=world.insurer.id)
    other = make_insurer(runtime, amc_number="77120303", name="Prévoyance du Littoral")
    stranger = PortalUser.invited(app, app_runtime, login="dpo@littoral.test", roles={Role.DPO}, insurer_id=other.id)

    # A stolen client reads three patients; a fourth patient is untouched.
    thief = practice_principal(runtime, Profession.PHARMACIST)
    seen, untouched = world.patients()[:3], world.patients()[3]
    for record in seen:
        assert isinstance(check(runtime, thief, world.insurer, record, clock()), RightsAnswer)
    with runtime.sessions() as session:
        alert = raise_alert(
            session, kind=AlertKind.SIGNAL, severity=Severity.HIGH, title="Distinct patients per hour", now=clock()
        )
        assert alert is not None
        alert_id = alert.id
        session.commit()

    opened = operator.post(
        "/api/v1/incidents",
        json={
            "title": "Stolen practice software key",
            "nature": ["confidentiality"],
            "contact": "Rempart security, securite@rempart.example",
            "alert_id": str(alert_id),
        },
    )
    assert opened.status_code == 201, opened.text
    incident = opened.json()
    assert incident["reference"].startswith("INC-")
    with runtime.sessions() as session:
        assert session.get_one(Alert, alert_id).incident_id is not None
    base = f"/api/v1/incidents/{incident['incident_id']}"
    bad = operator.post(f"{base}/scopes", json={"since": clock().isoformat(), "until": clock().isoformat()})
    assert bad.status_code == 422
    scoped = operator.post(
        f"{base}/scopes",
        json={
            "label": "stolen client",
            "since": (clock() - timedelta(hours=1)).isoformat(),
            "until": (clock() + timedelta(hours=1)).isoformat(),
            "actor_ids": [str(thief.client_id)],
        },
    )
    assert scoped.status_code == 201, scoped.text
    facts = operator.post(f"{base}/facts")
    assert facts.status_code == 200, facts.text
    assert facts.json()["people"] == 3
    (part,) = facts.json()["insurers"]
    assert (part["amc_number"], part["people"], part["records"]) == (world.insurer.amc_number, 3, 3)
    assert "processor's notice to the insurer" in part["missing"]

    # The insurer's DPO sees its part; another insurer's does not even see the incident.
    mine = dpo.get(f"/api/v1/insurers/{world.insurer.id}/incidents")
    assert mine.status_code == 200, mine.text
    assert [i["reference"] for i in mine.json()] == [incident["reference"]]
    assert stranger.get(f"/api/v1/insurers/{other.id}/incidents").json() == []
    assert stranger.get(f"/api/v1/insurers/{other.id}/incidents/{incident['incident_id']}").status_code == 404
    assert stranger.get(f"/api/v1/insurers/{world.insurer.id}/incidents").status_code == 404

    zipped = dpo.get(f"/api/v1/insurers/{world.insurer.id}/incidents/{incident['incident_id']}/bundle")
    assert zipped.status_code == 200, zipped.text
    assert zipped.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(zipped.content))
    manifest = json.loads(archive.read("MANIFEST.json"))
    assert manifest["incident"] == incident["reference"]
    names = set(archive.namelist()) - {"MANIFEST.json"}
    hashes = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert set(hashes) == names
    for name, digest in hashes.items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest
    letters = [n for n in names if n.startswith("letters/fr/") and n.endswith(".pdf")]
    assert len(letters) == 3
    with runtime.sessions() as session:
        exported = session.scalars(select(AccessEvent).where(AccessEvent.operation == "incident_letters")).all()
    assert [e.insurer_id for e in exported] == [world.insurer.id]

    done = operator.post(f"{base}/insurers/{world.insurer.id}/notice")
    assert done.json()["notice_sent_at"] is not None
    filed = dpo.post(
        f"/api/v1/insurers/{world.insurer.id}/incidents/{incident['incident_id']}/notifications",
        json={"step": "authority_notified"},
    )
    decided = dpo.post(
        f"/api/v1/insurers/{world.insurer.id}/incidents/{incident['incident_id']}/notifications",
        json={"step": "letters", "letters": "send"},
    )
    assert filed.status_code == decided.status_code == 200, (filed.text, decided.text)
    assert decided.json()["clock"]["stage"] == "done"
    assert decided.json()["missing"] == ["measures taken", "measures proposed"]

    # The person asks.
    person = PortalUser.invited(
        app, app_runtime, login="patient@exemple.test", roles={Role.BENEFICIARY},
        insurer_id=world.insurer.id, beneficiary_id=beneficiary_of(world, seen[0]).id,
    )  # fmt: skip
    answer = person.get("/api/v1/me/incidents")
    assert answer.status_code == 200, answer.text
    (affected,) = answer.json()
    assert affected["seen"] is True
    assert "coverage_status" in affected["fields"]
    assert affected["channels"] == ["pro_api"]
    spared = PortalUser.invited(
        app, app_runtime, login="voisin@exemple.test", roles={Role.BENEFICIARY},
        insurer_id=world.insurer.id, beneficiary_id=beneficiary_of(world, untouched).id,
    )  # fmt: skip
    assert spared.get("/api/v1/me/incidents").json() == []

    timeline = operator.get(base).json()["timeline"]
    kinds = [e["kind"] for e in timeline]
    assert kinds[0] == "opened"
    assert {"scope_added", "facts_computed", "exported", "notice_sent", "authority_notified"} <= set(kinds)


def test_the_clock_raises_its_alerts_at_48_and_66_hours(app_runtime: Runtime, clock: FakeClock) -> None:
    with app_runtime.sessions() as session:
        opened = do_open_incident(
            session,
            title="Phished claims agent",
            nature=["confidentiality"],
            contact="securite@rempart.example",
            operator_id=None,
            now=clock(),
        )
        ref, aware = opened.reference, opened.aware_at
    stages = []
    for hours in (47, 49, 50, 67, 73):
        with app_runtime.sessions() as session:
            do_raise_deadline_alerts(session, now=aware + timedelta(hours=hours))
            stages.append(
                sorted(a.title for a in session.scalars(select(Alert).where(Alert.kind == AlertKind.INCIDENT_DEADLINE)))
            )
    assert stages[0] == []
    assert stages[1] == stages[2] == [f"{ref}: 48 h since awareness, 24 h left to notify"]
    assert (
        stages[3]
        == stages[4]
        == sorted(
            [f"{ref}: 48 h since awareness, 24 h left to notify", f"{ref}: 66 h since awareness, 6 h left to notify"]
        )
    )
    with app_runtime.sessions() as session:
        (late,) = [clock_of(session.get_one(Incident, opened.id), aware + timedelta(hours=73))]
    assert late.stage == "late"


def test_the_apps_watch_raises_the_alert_without_anyone_reading(runtime: Runtime) -> None:
    now = datetime.now(UTC)
    with runtime.sessions() as session:
        do_open_incident(
            session,
            title="Integrity of a members file in doubt",
            nature=["integrity"],
            contact="securite@rempart.example",
            operator_id=None,
            detected_at=now - timedelta(hours=50),
            aware_at=now - timedelta(hours=49),
            now=now,
        )
    watch = DeadlineWatch(runtime.sessions, interval=0.05)
    watch.start()
    try:
        for _ in range(100):
            with runtime.sessions() as session:
                raised = session.scalars(select(Alert).where(Alert.kind == AlertKind.INCIDENT_DEADLINE)).all()
            if raised:
                break
            time.sleep(0.05)
    finally:
        watch.stop()
    assert [a.severity for a in raised] == [Severity.HIGH]
