"""The security console in Debian's Chromium, as an operator on watch lives it: enrolled with a
passkey, the console open on no alert; a practice's billing software sweeps patients, the ladder
contains it, and the alert appears in the open page WITHOUT a reload (console.js); the operator
acknowledges it, sees the containments, cuts the practice off with a kill switch and turns it back on,
lifts a containment, opens an incident, reads the charts and the break-glass page, and switches to
English. axe-core runs in every page (zero serious or critical violations) and every page is
photographed (``var/artefacts/console``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI

from rempart.identity.permissions import Role
from rempart.members.models import BeneficiaryRole
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.factories import TODAY, load_members, make_insurer
from tests.factories import population as synth_population
from tests.support.browser import Tab, chromium, needs_chromium, portal_server
from tests.support.clock import FakeClock
from tests.support.portal import invite
from tests.support.practice_client import PracticeClient

pytestmark = [pytest.mark.browser, needs_chromium]

ARTEFACTS = Path(os.environ.get("REMPART_ARTEFACTS", "var/artefacts")) / "console"
PACE_SECONDS = 5


@pytest.fixture
def served(runtime: Runtime) -> Iterator[tuple[FastAPI, str, FakeClock]]:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("the browser journey runs once, on SQLite (the console's services are tested on both)")
    clock = FakeClock(datetime(TODAY.year, TODAY.month, TODAY.day, 9, 30, tzinfo=UTC))
    with portal_server(runtime, clock) as (app, origin):
        yield app, origin, clock


def test_an_operator_sees_a_sweep_s_alert_arrive_live_contains_it_and_switches_the_practice_off_and_on(
    served: tuple[FastAPI, str, FakeClock], runtime: Runtime
) -> None:
    app, origin, clock = served
    insurer = make_insurer(runtime)
    records = synth_population(150, seed=31)
    load_members(runtime, insurer, records)
    patients = [
        r for r in records if r.role is BeneficiaryRole.HOLDER and r.contract_start <= TODAY and r.contract_end is None
    ]
    assert len(patients) >= 30
    software = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN, practice_name="Optique du Port")
    invitation = invite(app, runtime, login="veille@rempart.test", roles={Role.SECURITY_OPERATOR})

    with chromium() as browser:
        tab = Tab.open(browser, origin, name="console")
        tab.folder = ARTEFACTS
        page = tab.page
        try:
            page.goto(invitation.url(origin))
            page.click("#enrol-form button[type=submit]")
            page.wait_for_selector("#recovery-codes li")

            tab.goto("/console")
            assert "Aucune alerte pour l'instant" in tab.text()
            tab.look("alerts-empty")
            page.evaluate("window.__notReloaded = true")

            # The sweep, through the practice's billing software, while the page stays open.
            for patient in patients:
                fields = {
                    "amc_number": insurer.amc_number,
                    "member_number": patient.member_number,
                    "nir": patient.nir,
                    "birth_date": patient.birth_date.isoformat(),
                    "birth_rank": patient.birth_rank,
                }
                answer = software.post("/api/v1/rights-checks", json=fields)
                if answer.status_code == 403 and answer.json()["type"].endswith("/access-suspended"):
                    break
                clock.advance(seconds=PACE_SECONDS)
            else:
                pytest.fail("the sweep was never suspended")

            page.wait_for_selector("#alert-rows tr[data-alert-id]", timeout=20_000)
            assert page.evaluate("window.__notReloaded === true"), "the page reloaded"
            page.wait_for_selector("#alerts-live:has-text('Nouvelles alertes')")
            shown = tab.text()
            assert "Confinement" in shown
            assert "Optique du Port" in shown
            tab.look("alert-arrived-live")

            page.locator("#alert-rows tr[data-alert-id]").first.get_by_role("button", name="Prendre en compte").click()
            page.wait_for_selector("text=L'alerte a été prise en compte.")
            tab.look("alert-acknowledged")

            tab.goto("/console/containments")
            assert "Suspendu" in tab.text()
            tab.look("containments")

            # Cut the whole practice off, then back on.
            tab.goto("/console/kill-switches")
            tab.look("kill-switches")
            page.select_option("#scope", "practice")
            page.fill("#target", str(software.practice_id))
            page.fill("#reason", "Balayage de patients : cabinet coupé le temps de l'enquête")
            page.get_by_role("button", name="Couper maintenant").click()
            page.wait_for_selector("text=La coupure est active")
            assert "Optique du Port" in tab.text()
            tab.look("kill-switch-on")
            page.locator("tr[id^='switch-'] input[name=reason]").first.fill("Enquête close, accès rétabli")
            page.get_by_role("button", name="Lever", exact=True).click()
            page.wait_for_selector("text=La coupure est levée")
            assert "Aucune coupure n'est active" in tab.text()
            tab.look("kill-switch-off")

            tab.goto("/console/containments")
            page.locator("section.containment textarea").first.fill("Logiciel reconfiguré, contrôlé avec le cabinet")
            page.locator("section.containment").first.get_by_role("button", name="Lever ce confinement").click()
            page.wait_for_selector("text=Le confinement a été levé")
            tab.look("containment-lifted")

            tab.goto("/console/incidents/new")
            page.fill("#title", "Balayage par le logiciel d'Optique du Port")
            page.fill("#contact", "dpo@rempart.test")
            page.get_by_role("button", name="Ouvrir l'incident").click()
            page.wait_for_selector("text=L'horloge de 72 heures")
            tab.look("incident")
            tab.goto("/console/incidents")
            tab.look("incidents")

            tab.goto("/console/charts")
            page.wait_for_function(
                "Array.from(document.querySelectorAll('.chart img')).every(i => i.complete && i.naturalWidth > 0)"
            )
            tab.look("charts")
            tab.goto("/console/break-glass")
            tab.look("break-glass")

            page.get_by_role("link", name="English").click()
            page.wait_for_selector("text=Requests and approvals")
            tab.look("break-glass-english")
            tab.goto("/console")
            assert "Acknowledged" in tab.text()
            tab.look("alerts-english")
        except Exception:
            tab.shot("failure")
            raise

    bad = {name: found for name, found in tab.violations.items() if found}
    assert not bad, f"axe-core: serious or critical violations: {bad}"
    assert not [e for e in tab.console_errors if "Content Security Policy" in e], tab.console_errors
    assert len(list(ARTEFACTS.glob("*.png"))) >= 10
