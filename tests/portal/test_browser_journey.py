"""The professional portal in Debian's Chromium, end to end, as an optician lives it: from the
enrolment link (a passkey made by the browser's authenticator, recovery codes shown once) to a
rights check, a quote, an optics prior approval and its claim, and, after the insurer's payment run,
the remittance that pays it; the English switch; a step-up. axe-core runs in every page (zero
serious or critical violations) and every page is photographed (``var/artefacts/portal``).
The CSP is tried in the browser itself: a script injected into a page does not run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI

from rempart.identity.permissions import Role
from rempart.insurers.models import Insurer
from rempart.members.models import BeneficiaryRole
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.factories import TODAY, load_members, make_insurer
from tests.factories import population as synth_population
from tests.support.browser import Tab, chromium, needs_chromium, portal_server
from tests.support.clock import FakeClock
from tests.support.portal import PortalUser, invite
from tests.support.practice_client import PracticeClient

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture
def served(runtime: Runtime) -> Iterator[tuple[FastAPI, str, FakeClock]]:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("the browser journey runs once, on SQLite (the pages' services are tested on both)")
    clock = FakeClock(datetime(TODAY.year, TODAY.month, TODAY.day, 9, 30, tzinfo=UTC))
    with portal_server(runtime, clock) as (app, origin):
        yield app, origin, clock


def covered_holder(records: list[MemberRecord]) -> MemberRecord:
    return next(
        r
        for r in records
        if r.role is BeneficiaryRole.HOLDER
        and r.contract_start <= TODAY
        and (r.contract_end is None or r.contract_end >= TODAY)
        and r.product_code != "ESSENTIEL"
    )


def identities_of(patient: MemberRecord) -> list[str]:
    return [
        patient.nir,
        patient.nir[:13],
        patient.last_name,
        patient.first_name,
        patient.birth_date.isoformat(),
        patient.birth_date.strftime("%d/%m/%Y"),
    ]


def _journey_world(app: FastAPI, runtime: Runtime) -> tuple[Insurer, MemberRecord, str, PortalUser]:
    insurer = make_insurer(runtime)
    records = synth_population(12, seed=11)
    load_members(runtime, insurer, records)
    practice = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN, practice_name="Optique du Port")
    invitation = invite(
        app,
        runtime,
        login="optique@port.test",
        roles={Role.PRACTICE_ADMIN, Role.PROFESSIONAL},
        practice_id=practice.practice_id,
        professional_id=practice.professional_id,
    )
    admin = PortalUser.invited(
        app, runtime, login="admin@remparts.test", roles={Role.INSURER_ADMIN}, insurer_id=insurer.id
    )
    return insurer, covered_holder(records), invitation.url(app.state.identity.origin), admin


def test_an_optician_from_the_enrolment_link_to_the_remittance(
    served: tuple[FastAPI, str, FakeClock], runtime: Runtime
) -> None:
    app, origin, clock = served
    insurer, patient, enrol_url, admin = _journey_world(app, runtime)

    with chromium() as browser:
        tab = Tab.open(browser, origin, name="journey")
        page = tab.page

        try:
            # The start page, then the enrolment link: a passkey, and the recovery codes shown once.
            tab.goto("/")
            tab.look("start-page")
            page.goto(enrol_url)
            tab.look("enrolment")
            page.click("#enrol-form button[type=submit]")
            page.wait_for_selector("#recovery-codes li")
            assert "enrol#" not in page.url
            codes = page.locator("#recovery-codes li").all_inner_texts()
            assert len(codes) >= 8
            tab.look("recovery-codes")
            page.click("#recovery-continue")
            page.wait_for_url(origin + "/")
            tab.look("home")

            # The counter: the card and the patient's details, a coverage card in return.
            page.get_by_role("link", name="Droits", exact=True).first.click()
            page.wait_for_url(origin + "/counter")
            tab.look("counter")
            page.fill("#amc_number", insurer.amc_number)
            page.fill("#member_number", patient.member_number)
            page.fill("#nir", patient.nir)
            page.fill("#birth_date", patient.birth_date.isoformat())
            page.get_by_role("button", name="Vérifier les droits").click()
            quote_link = page.locator("a[href^='/quotes/new?check=']")
            quote_link.wait_for()
            tab.look("coverage-card")
            shown = page.content()
            for identity in identities_of(patient):
                assert identity not in shown, "the coverage card shows an identity"
            check_id = str(quote_link.get_attribute("href")).split("=", 1)[1]

            # A quote for frames (100 % Santé class B): the insurer's share and what is left to pay.
            quote_link.click()
            tab.look("quote-form")
            page.select_option("#care_domain", "OPTI")
            page.fill("#act_code_1", "2210546")
            page.fill("#quantity_1", "1")
            page.fill("#unit_price_1", "250,00")
            page.fill("#brss_1", "0,05")
            page.fill("#amo_rate_1", "60")
            page.select_option("#sante_100_class_1", "B")
            page.get_by_role("button", name="Chiffrer le devis").click()
            page.wait_for_selector("a[href^='/approvals/new?check=']")
            tab.look("quote-result")
            assert "150,07\xa0€" in page.inner_text("main")  # the insurer's share of the frames

            # The prior approval for the same frames, then the claim that cites it.
            page.locator("a[href^='/approvals/new?check=']").first.click()
            tab.look("approval-form")
            page.select_option("#care_domain", "OPTI")
            page.fill("#act_code_1", "2210546")
            page.fill("#quantity_1", "1")
            page.fill("#unit_price_1", "250,00")
            page.fill("#brss_1", "0,05")
            page.fill("#amo_rate_1", "60")
            page.select_option("#sante_100_class_1", "B")
            page.get_by_role("button", name="Demander à la complémentaire").click()
            page.wait_for_url(re.compile(r".*/approvals/[0-9a-f-]{36}$"))
            tab.look("approval")

            page.locator("a[href^='/claims/new?approval=']").click()
            page.wait_for_url(re.compile(r".*/claims/new\?approval=.*"))
            tab.look("claim-form")
            page.get_by_role("button", name="Envoyer la facture").click()
            page.wait_for_url(re.compile(r".*/claims/[0-9a-f-]{36}$"))
            tab.look("claim")
            claim_id = page.url.rsplit("/", 1)[-1]
            tab.goto("/claims")
            tab.look("claims")
            assert page.locator(f"a[href='/claims/{claim_id}']").count() >= 1

            # The insurer's payment run; the practice's remittance lists the claim it pays.
            assert admin.sign_in().status_code == 200
            run = admin.post(
                f"/api/v1/insurers/{insurer.id}/payment-runs",
                json={"cutoff_date": (TODAY + timedelta(days=1)).isoformat()},
            )
            assert run.status_code == 201, run.text
            assert run.json()["claim_count"] == 1
            tab.goto("/remittances")
            tab.look("remittances")
            page.locator("a[href^='/remittances/']").first.click()
            page.wait_for_url(re.compile(r".*/remittances/[0-9a-f-]{36}$"))
            tab.look("remittance")
            assert page.locator(f"a[href='/claims/{claim_id}']").count() >= 1

            # The English switch, remembered from page to page.
            page.click("a[hreflang=en]")
            page.wait_for_selector("html[lang=en]")
            tab.look("remittance-in-english")
            tab.goto("/counter")
            assert page.get_attribute("html", "lang") == "en"
            assert page.get_by_role("button", name="Check the rights").count() == 1
            tab.look("counter-in-english")
            page.click("a[hreflang=fr]")
            page.wait_for_selector("html[lang=fr]")

            # A step-up: ten minutes on, new recovery codes need a fresh passkey check.
            clock.advance(minutes=10)
            tab.goto("/account/recovery-codes")
            assert page.locator("form[action='/account/recovery-codes']").count() == 0
            page.locator("a[href^='/step-up?next=']").first.click()
            page.wait_for_url(re.compile(r".*/step-up\?.*"))
            tab.look("step-up")
            page.click("#step-up-form button[type=submit]")
            page.wait_for_url(re.compile(r".*/account/recovery-codes.*"))
            page.locator("form[action='/account/recovery-codes'] button[type=submit]").click()
            page.wait_for_selector("#recovery-codes li")
            tab.look("new-recovery-codes")

            # The account's and the practice's own pages.
            for path, name in (
                ("/account", "account"),
                ("/account/sessions", "sessions"),
                ("/account/passkeys", "passkeys"),
                ("/account/security-events", "security-events"),
                ("/practice", "practice"),
                ("/practice/clients", "practice-clients"),
                ("/practice/security", "practice-security"),
                ("/approvals", "approvals"),
                ("/counter/batch", "batch"),
                ("/nothing-here", "not-found"),
            ):
                tab.goto(path)
                tab.look(name)

            # The CSP in the browser: a script injected into the page does not run.
            tab.goto("/counter")
            page.evaluate(
                "() => { const s = document.createElement('script'); s.textContent = 'window.__injected = 1';"
                " document.body.appendChild(s); }"
            )
            assert page.evaluate("() => window.__injected") is None
            assert any("Content Security Policy" in e for e in tab.console_errors)
        except Exception:
            tab.shot("failure")
            raise

    bad = {name: found for name, found in tab.violations.items() if found}
    assert not bad, f"axe-core: serious or critical violations: {bad}"
    assert len(tab.violations) >= 28
    assert check_id
