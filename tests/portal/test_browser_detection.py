"""Detection as a person meets it in the browser: an optician's session that sweeps distinct
patients at the counter is slowed down (a page that says to wait), then asked to confirm with the
passkey (a page with the button); once confirmed, the counter answers again. Each page is checked
by axe-core and photographed (``var/artefacts/portal/detection``). The request numbers themselves
are compared with the API's in ``test_counter_detection.py``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI

from rempart.identity.permissions import Role
from rempart.members.models import BeneficiaryRole
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.factories import load_members, make_insurer
from tests.factories import population as synth_population
from tests.support.browser import Tab, chromium, needs_chromium, portal_server
from tests.support.clock import FakeClock
from tests.support.portal import invite
from tests.support.practice_client import PracticeClient

pytestmark = [pytest.mark.browser, needs_chromium]

TUESDAY = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # 10:00 in Paris, an ordinary working morning
PACE_SECONDS = 5  # a sweep, far faster than a counter
_REFERENCE = re.compile(r"(\d{3}) ([a-z-]+)")


@pytest.fixture
def served(runtime: Runtime) -> Iterator[tuple[FastAPI, str, FakeClock]]:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("the browser test runs once, on SQLite (test_counter_detection.py runs on both)")
    clock = FakeClock(TUESDAY)
    with portal_server(runtime, clock) as (app, origin):
        yield app, origin, clock


def test_a_sweep_at_the_counter_is_slowed_then_asked_for_the_passkey_then_answered_again(
    served: tuple[FastAPI, str, FakeClock], runtime: Runtime
) -> None:
    app, origin, clock = served
    insurer = make_insurer(runtime)
    records = synth_population(90, seed=31)
    load_members(runtime, insurer, records)
    patients = [
        r
        for r in records
        if r.role is BeneficiaryRole.HOLDER and r.contract_start <= clock().date() and r.contract_end is None
    ]
    assert len(patients) >= 25
    practice = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN, practice_name="Optique du Port")
    invitation = invite(
        app,
        runtime,
        login="optique@port.test",
        roles={Role.PRACTICE_ADMIN, Role.PROFESSIONAL},
        practice_id=practice.practice_id,
        professional_id=practice.professional_id,
    )

    with chromium() as browser:
        tab = Tab.open(browser, origin, name="detection")
        page = tab.page
        try:
            page.goto(invitation.url(origin))
            page.click("#enrol-form button[type=submit]")
            page.wait_for_selector("#recovery-codes li")

            def check(patient: MemberRecord) -> str:
                tab.goto("/counter")
                page.fill("#amc_number", insurer.amc_number)
                page.fill("#member_number", patient.member_number)
                page.fill("#nir", patient.nir)
                page.fill("#birth_date", patient.birth_date.isoformat())
                page.get_by_role("button", name="Vérifier les droits").click()
                page.wait_for_load_state()
                if page.locator("a[href^='/quotes/new?check=']").count():
                    return "answered"
                found = _REFERENCE.search(page.inner_text(".reference")) if page.locator(".reference").count() else None
                return found.group(2) if found else "unknown"

            steps: list[str] = []
            for patient in patients:
                steps.append(check(patient))
                if steps[-1] == "slow-down" and steps.count("slow-down") == 1:
                    assert "Veuillez ralentir" in tab.text()
                    assert "Vous pourrez réessayer dans" in tab.text()
                    tab.look("slowed-down")
                if steps[-1] == "step-up-required":
                    break
                clock.advance(seconds=PACE_SECONDS)
            assert steps[-1] == "step-up-required", steps
            assert "slow-down" in steps
            assert steps.index("slow-down") < len(steps) - 1
            assert "Confirmez que c'est bien vous" in tab.text()
            tab.look("step-up-asked")
            nothing_shown = page.content()
            for patient in patients[: len(steps)]:
                assert patient.nir not in nothing_shown

            # The person confirms with their passkey, and the counter answers again.
            page.get_by_role("link", name="Confirmer avec ma passkey").click()
            page.wait_for_url(re.compile(r".*/step-up\?.*"))
            tab.look("step-up")
            clock.advance(seconds=5)  # the time to read the page and reach for the passkey
            page.click("#step-up-form button[type=submit]")
            page.wait_for_url(origin + "/counter")
            clock.advance(seconds=30)  # still slowed: one check at a time, for a while
            assert check(patients[len(steps)]) == "answered"
            tab.look("answered-after-step-up")
        except Exception:
            tab.shot("failure")
            raise

    bad = {name: found for name, found in tab.violations.items() if found}
    assert not bad, f"axe-core: serious or critical violations: {bad}"
