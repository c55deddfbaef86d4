"""The counter with the keyboard alone, in Chromium: the first Tab reaches "Skip to the content",
which lands in the page's main part; the rights check's fields come one after the other in the order
they are read (card, patient, date of care, the button); typed and sent with Enter, they answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

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


@pytest.fixture
def served(runtime: Runtime) -> Iterator[tuple[FastAPI, str]]:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("the browser test runs once, on SQLite")
    with portal_server(runtime, FakeClock(datetime(TODAY.year, TODAY.month, TODAY.day, 9, 30, tzinfo=UTC))) as live:
        yield live


def test_the_counter_is_usable_with_the_keyboard_alone(served: tuple[FastAPI, str], runtime: Runtime) -> None:
    app, origin = served
    insurer = make_insurer(runtime)
    records = synth_population(6, seed=5)
    load_members(runtime, insurer, records)
    patient = next(r for r in records if r.role is BeneficiaryRole.HOLDER and r.contract_end is None)
    practice = PracticeClient.register(
        app, runtime, profession=Profession.PHARMACIST, practice_name="Pharmacie du Port"
    )
    invitation = invite(
        app,
        runtime,
        login="officine@port.test",
        roles={Role.PROFESSIONAL},
        practice_id=practice.practice_id,
        professional_id=practice.professional_id,
    )

    with chromium() as browser:
        tab = Tab.open(browser, origin, name="keyboard")
        page = tab.page
        try:
            page.goto(invitation.url(origin))
            page.click("#enrol-form button[type=submit]")
            page.wait_for_selector("#recovery-codes li")
            tab.goto("/counter")

            def focused() -> str:
                active = "() => document.activeElement.id || document.activeElement.textContent.trim()"
                return str(page.evaluate(active))

            page.keyboard.press("Tab")
            assert focused() == "Aller au contenu"  # the skip link comes first, and shows when focused
            tab.shot("skip-link")
            page.keyboard.press("Enter")
            assert focused() == "main"

            order: list[str] = []
            for _ in range(20):
                page.keyboard.press("Tab")
                order.append(focused())
                if order[-1] == "Vérifier les droits":
                    break
            wanted = ["amc_number", "member_number", "nir", "birth_date", "birth_rank", "care_date"]
            # A date field takes three Tabs (day, month, year): each field counts once, in order.
            fields = [f for n, f in enumerate(order) if f in wanted and (n == 0 or order[n - 1] != f)]
            assert fields == wanted
            assert order[-1] == "Vérifier les droits"

            # Back to the first field, and everything typed.
            page.focus("#amc_number")
            page.keyboard.type(insurer.amc_number)
            page.keyboard.press("Tab")
            page.keyboard.type(patient.member_number)
            page.keyboard.press("Tab")
            page.keyboard.type(patient.nir)
            page.keyboard.press("Tab")
            # A date field's segments come in the browser's own order: find it, then type the date.
            page.keyboard.type("01022003")
            day_first = page.input_value("#birth_date") == "2003-02-01"
            page.keyboard.press("Shift+Tab")
            page.keyboard.press("Shift+Tab")  # back to the field's first segment
            page.keyboard.type(patient.birth_date.strftime("%d%m%Y" if day_first else "%m%d%Y"))
            assert page.input_value("#birth_date") == patient.birth_date.isoformat()
            tab.shot("typed")
            page.keyboard.press("Enter")
            page.wait_for_selector("a[href^='/quotes/new?check=']")
            tab.look("answered-from-the-keyboard")
        except Exception:
            tab.shot("failure")
            raise

    bad = {name: found for name, found in tab.violations.items() if found}
    assert not bad, f"axe-core: serious or critical violations: {bad}"
