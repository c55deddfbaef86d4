"""An operator's work in the console, over HTTP: a practice's billing software sweeps patients, the
ladder contains it and raises alerts; the alerts reach the console's live rows, the operator
acknowledges, takes, links to a new incident and closes one, lifts the containments with a reason;
break glass needs a second operator; the charts are valid SVG with the expected series."""

from __future__ import annotations

import html
import re
import uuid
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from rempart.audit.models import BreakGlassGrant, BreakGlassStatus
from rempart.detection import charts
from rempart.detection.engine import DetectionEngine
from rempart.detection.models import AlertKind, Severity, SubjectKind
from rempart.detection.service import raise_alert
from rempart.members.models import Beneficiary
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime
from tests.console.conftest import Operator, sign_up_operator
from tests.factories import load_members
from tests.factories import population as synth_population
from tests.portal.conftest import World
from tests.support.clock import FakeClock

PACE_SECONDS = 5
SWEEP = 60
_ALERT_ID = re.compile(r'data-alert-id="([0-9a-f-]{36})"')


def text_of(response: httpx.Response) -> str:
    return html.unescape(response.text)


def api_body(world: World, patient: MemberRecord) -> dict[str, Any]:
    fields: dict[str, Any] = world.card_fields(patient)
    fields["birth_rank"] = int(fields["birth_rank"])
    return fields


def sweep(world: World, runtime: Runtime, clock: FakeClock, population: list[MemberRecord]) -> list[int]:
    """The practice's billing software checks distinct patients at a sweep's pace until suspended."""
    records = synth_population(3 * SWEEP, seed=29, first_number=5000)
    load_members(runtime, world.insurer, records)
    population.extend(records)
    world.members.extend(records)
    patients = [r for r in world.patients() if r in records][:SWEEP]
    statuses = []
    for patient in patients:
        response = world.counter.practice.post("/api/v1/rights-checks", json=api_body(world, patient))
        statuses.append(response.status_code)
        if response.status_code == 403 and str(response.json().get("type", "")).endswith("/access-suspended"):
            break
        clock.advance(seconds=PACE_SECONDS)
    return statuses


@pytest.fixture
def swept(
    *,
    app: FastAPI,
    runtime: Runtime,
    world: World,
    clock: FakeClock,
    population: list[MemberRecord],
    operator: Operator,
) -> Operator:
    """The operator's console open on no alert; then a sweep, contained by the ladder."""
    assert "Aucune alerte pour l'instant" in text_of(operator.page("/console"))
    statuses = sweep(world, runtime, clock, population)
    assert statuses[-1] == 403, statuses  # suspended
    engine: DetectionEngine = app.state.detection
    engine.drain()
    return operator


def test_a_sweep_s_alerts_reach_the_open_console_and_the_operator_handles_one(
    app: FastAPI, world: World, clock: FakeClock, swept: Operator
) -> None:
    operator = swept
    # What console.js asks for: the rows newer than the newest the page showed (none yet).
    rows = operator.page("/console/alerts/rows")
    assert rows.status_code == 200
    assert '<template id="new-alert-rows">' in rows.text
    shown = text_of(rows)
    ids = _ALERT_ID.findall(rows.text)
    assert ids, shown
    assert "Confinement" in shown
    assert "Optique du Port" in shown
    assert "Logiciel de facturation" in shown or "Billing software" in shown or "Compte" in shown
    newest = rows.text.split('data-created="', 1)[1].split('"', 1)[0]
    nothing_newer = operator.page("/console/alerts/rows", params={"after": newest})
    assert _ALERT_ID.findall(nothing_newer.text) == []

    alert_id = ids[0]
    page = operator.page("/console")
    assert f'id="alert-{alert_id}"' in page.text
    assert 'data-poll="/console/alerts/rows"' in page.text

    acked = operator.form(f"/console/alerts/{alert_id}/acknowledge", follow_redirects=False)
    assert acked.status_code == 303
    assert acked.headers["location"] == f"/console?done=acknowledged#alert-{alert_id}"
    assigned = operator.form(f"/console/alerts/{alert_id}/assign")
    assert assigned.status_code == 200
    assert "Assignée à veille@rempart.test" in text_of(assigned)
    assert "L'alerte vous est assignée." in text_of(assigned)

    # An incident opened from the alert: the form carries it, the incident links it.
    form = operator.page(f"/console/incidents/new?alert={alert_id}")
    assert f'value="{alert_id}"' in form.text
    missing = operator.form("/console/incidents", {"alert_id": alert_id, "title": "", "contact": "", "nature": []})
    assert missing.status_code == 422
    assert "Donnez à l'incident un titre" in text_of(missing)
    opened = operator.form(
        "/console/incidents",
        {
            "alert_id": alert_id,
            "title": "Balayage par un logiciel de facturation",
            "contact": "dpo@rempart.test",
            "nature": ["confidentiality"],
            "description": "Un logiciel a vérifié des dizaines de patients.",
        },
        follow_redirects=False,
    )
    assert opened.status_code == 303, opened.text
    incident_path = opened.headers["location"]
    incident = operator.page(incident_path)
    shown = text_of(incident)
    assert "Balayage par un logiciel de facturation" in shown
    assert re.search(r"INC-\d{4}-\d{4}", shown)
    assert "min restantes" in shown
    assert "les mesures prises" in shown  # what is still missing
    assert "Pas encore de faits" in shown
    assert "Ouvert" in shown  # the timeline
    listed = text_of(operator.page("/console/incidents"))
    assert "Balayage par un logiciel de facturation" in listed
    assert "En cours" in listed
    console = operator.page("/console")
    assert f'href="{incident_path}"' in console.text  # the alert links its incident

    closed = operator.form(f"/console/alerts/{alert_id}/close")
    assert "L'alerte a été close." in text_of(closed)
    english = operator.english().page("/console")
    assert "Closed" in text_of(english)
    assert "Containment" in text_of(english)


def test_the_containments_show_the_ladder_in_words_and_lift_with_a_reason(
    app: FastAPI, world: World, swept: Operator
) -> None:
    operator = swept
    page = operator.page("/console/containments")
    shown = text_of(page)
    assert "Suspendu" in shown
    assert "Optique du Port" in shown
    actions = re.findall(r'action="(/console/containments/[a-z_]+/[0-9a-f-]{36}/lift)"', page.text)
    assert actions
    refused = operator.form(actions[0], {"reason": "no"})
    assert refused.status_code == 422
    assert "au moins 5 caractères" in text_of(refused)
    for action in actions:
        lifted = operator.form(action, {"reason": "Faux positif : inventaire annuel"}, follow_redirects=False)
        assert lifted.status_code == 303, lifted.text
    after = text_of(operator.page("/console/containments?done=lifted"))
    assert "Le confinement a été levé" in after
    assert "Rien n'est ralenti, mis en pause ni suspendu." in after
    assert "Faux positif : inventaire annuel" in after  # the ladder's history keeps the reason


def _beneficiary(runtime: Runtime, world: World) -> uuid.UUID:
    with runtime.sessions() as session:
        found = session.scalar(select(Beneficiary.id).where(Beneficiary.insurer_id == world.insurer.id).limit(1))
    assert found is not None
    return found


def _grant(runtime: Runtime, grant_id: str) -> BreakGlassGrant:
    with runtime.sessions() as session:
        grant = session.get(BreakGlassGrant, uuid.UUID(grant_id))
        assert grant is not None
        session.expunge(grant)
        return grant


def test_break_glass_needs_a_second_operator_the_one_who_asked_cannot_approve(
    app: FastAPI, runtime: Runtime, world: World, operator: Operator, second_operator: Operator
) -> None:
    fields = {
        "insurer_id": str(world.insurer.id),
        "beneficiary_id": str(_beneficiary(runtime, world)),
        "reason": "Vérifier l'identité d'une personne touchée par l'incident",
        "ticket": "INC-2026-0001",
        "minutes": "30",
    }
    operator.page("/console/break-glass")
    short = operator.form("/console/break-glass", {**fields, "reason": "court"})
    assert short.status_code == 422
    assert "motif de 10 à 500 caractères" in text_of(short)
    unknown = operator.form("/console/break-glass", {**fields, "beneficiary_id": str(uuid.uuid4())})
    assert unknown.status_code == 422
    assert "aucun bénéficiaire avec cet identifiant" in text_of(unknown)

    asked = operator.form("/console/break-glass", fields)
    assert asked.status_code == 200
    shown = text_of(asked)
    assert "Votre demande est enregistrée" in shown
    assert "En attente d'un second opérateur" in shown
    assert "Un second opérateur doit décider." in shown
    grant_id = asked.text.split('id="grant-', 1)[1].split('"', 1)[0]
    assert f"/console/break-glass/{grant_id}/approve" not in asked.text  # no button for one's own

    # Sent anyway, the same operator's approval is refused, and nothing changes.
    refused = operator.form(f"/console/break-glass/{grant_id}/approve")
    assert refused.status_code == 403
    assert _grant(runtime, grant_id).status is BreakGlassStatus.REQUESTED

    page = second_operator.page("/console/break-glass")
    assert f"/console/break-glass/{grant_id}/approve" in page.text
    approved = second_operator.form(f"/console/break-glass/{grant_id}/approve")
    assert approved.status_code == 200
    assert "Approuvé, en vigueur" in text_of(approved)
    grant = _grant(runtime, grant_id)
    assert grant.status is BreakGlassStatus.APPROVED
    assert grant.decided_by == second_operator.user.account_id
    again = second_operator.form(f"/console/break-glass/{grant_id}/refuse")
    assert again.status_code == 409

    ended = operator.form(f"/console/break-glass/{grant_id}/revoke")
    assert "Terminé avant l'heure" in text_of(ended)
    assert world.insurer.name in text_of(ended)


def test_the_break_glass_form_comes_filled_from_an_alert_about_a_beneficiary(
    runtime: Runtime, world: World, clock: FakeClock, operator: Operator
) -> None:
    beneficiary = _beneficiary(runtime, world)
    with runtime.sessions() as session:
        raise_alert(
            session,
            kind=AlertKind.BENEFICIARY_SPREAD,
            severity=Severity.MEDIUM,
            title="One beneficiary checked by many practices within a day",
            now=clock(),
            subject_kind=SubjectKind.BENEFICIARY,
            subject_id=beneficiary,
            signal="beneficiary_practices_24h",
            detail={"value": 9, "threshold": 6},
            insurer_ids=[world.insurer.id],
        )
        session.commit()
    row = text_of(operator.page("/console/alerts/rows"))
    assert "Un patient vérifié par beaucoup de cabinets en une journée" in row
    assert "Bénéficiaire (identité non affichée)" in row
    link = f"/console/break-glass?beneficiary={beneficiary}&insurer={world.insurer.id}"
    assert link in row
    page = operator.page(link)
    assert f'name="beneficiary_id" value="{beneficiary}"' in page.text
    assert f'<option value="{world.insurer.id}" selected>' in page.text


def test_break_glass_asks_for_a_fresh_passkey(
    app: FastAPI, runtime: Runtime, world: World, clock: FakeClock, operator: Operator
) -> None:
    operator.page("/console/break-glass")
    clock.advance(seconds=6 * 60)
    operator.page("/console/break-glass")  # still signed in: the session is not idle
    late = operator.form(
        "/console/break-glass",
        {
            "insurer_id": str(world.insurer.id),
            "beneficiary_id": str(_beneficiary(runtime, world)),
            "reason": "Vérifier l'identité d'une personne touchée",
            "ticket": "INC-1",
            "minutes": "30",
        },
    )
    assert late.status_code == 401  # step-up required: the page says what to do
    assert "Confirmez que c'est bien vous" in text_of(late)


def _svg(operator: Operator, name: str) -> ET.Element:
    response = operator.page(f"/console/charts/{name}.svg")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert "<script" not in response.text  # a static image: pygal's tooltips are left out
    return ET.fromstring(response.content)


def _texts(root: ET.Element) -> set[str]:
    return {t.strip() for t in root.itertext() if t.strip()}


def test_the_charts_are_svg_images_of_the_access_log_and_the_ladder(
    app: FastAPI, runtime: Runtime, world: World, clock: FakeClock
) -> None:
    # A Sunday morning's counter: a few patients, far apart (closer, detection would step in).
    patients = world.patients()[:5]
    for patient in patients[:3]:
        assert world.counter.practice.post("/api/v1/rights-checks", json=api_body(world, patient)).status_code == 200
        clock.advance(seconds=20 * 60)
    for n, patient in enumerate(patients[3:]):
        wrong = {**api_body(world, patient), "member_number": f"9{n:07d}"}
        missed = world.counter.practice.post("/api/v1/rights-checks", json=wrong)
        assert missed.status_code == 404, missed.text
        clock.advance(seconds=20 * 60)
    operator = sign_up_operator(app, runtime, "graphiques@rempart.test")

    with runtime.sessions() as session:
        checks = charts.checks_per_hour(session, now=clock())
        per_practice = charts.distinct_per_practice(session, now=clock())
        misses = charts.miss_share_per_hour(session, now=clock())
        ladder = charts.containments_per_day(session, now=clock())
    assert len(checks.labels) == 24
    by_key = {s.key: s.values for s in checks.series}
    assert sum(by_key["answered"]) == 3
    assert sum(by_key["misses"]) == 2
    assert per_practice.labels == ["Optique du Port"]
    assert per_practice.series[0].values == [3.0]
    assert len(misses.series[0].values) == 24
    assert 0 < max(misses.series[0].values) <= 100
    assert len(ladder.labels) == 7
    assert [s.key for s in ladder.series] == ["slowed", "step_up_required", "suspended", "lifted"]
    # Out of the window: a day later, the hourly charts are empty.
    with runtime.sessions() as session:
        assert sum(charts.checks_per_hour(session, now=clock() + timedelta(days=1, hours=1)).series[0].values) == 0

    operator.english()
    texts = _texts(_svg(operator, "checks"))
    assert {"Answered", "No match", "Refused", "Rights checks per hour, last 24 hours"} <= texts
    assert "Optique du Port" in _texts(_svg(operator, "practices"))
    assert "Share of misses" in _texts(_svg(operator, "misses"))
    assert {"Slowed down", "Suspended", "Lifted"} <= _texts(_svg(operator, "containments"))
    operator.french()
    assert {"Répondues", "Sans correspondance"} <= _texts(_svg(operator, "checks"))
    assert operator.page("/console/charts/nothing.svg").status_code == 404

    page = operator.page("/console/charts")
    for name in charts.CHARTS:
        assert f'src="/console/charts/{name}.svg' in page.text
    assert "Optique du Port" in page.text  # the figures' table


def test_a_second_operator_signs_up_after_a_clock_change(app: FastAPI, runtime: Runtime, world: World) -> None:
    # The console's fixtures make operators on demand (the browser journey signs one in the same way).
    other = sign_up_operator(app, runtime, "nuit@rempart.test")
    assert other.page("/console").status_code == 200
