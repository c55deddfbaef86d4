"""The beneficiary's portal in Debian's Chromium, end to end, as an insured person lives it: from
the invitation's enrolment link (a passkey made by the browser's authenticator, recovery codes shown
once) to their card, whose QR code, read back from a screenshot, is an attestation a verifier accepts
with the insurer's published keys; their rights; and their access log showing the rights check an
optician's software made a moment before, by the practice's name. The English switch; axe-core in
every page (zero serious or critical violations); every page photographed
(``var/artefacts/beneficiary``)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import zxingcpp
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from rempart.identity.permissions import Role
from rempart.incidents.facts import ScopeSet
from rempart.incidents.service import do_add_scope, do_compute_facts, do_open_incident
from rempart.members.models import BeneficiaryRole
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from rempart_verifier import KeySet, verify
from tests.beneficiary.conftest import beneficiary_id_of
from tests.factories import TODAY, load_members, make_insurer
from tests.factories import population as synth_population
from tests.support.browser import ARTEFACTS, Tab, chromium, needs_chromium, portal_server
from tests.support.clock import FakeClock
from tests.support.portal import invite
from tests.support.practice_client import PracticeClient

pytestmark = [pytest.mark.browser, needs_chromium]
KEYS = "/.well-known/rempart/attestation-keys"
SHOTS = ARTEFACTS.parent / "beneficiary"


@pytest.fixture
def served(runtime: Runtime) -> Iterator[tuple[FastAPI, str, FakeClock]]:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("the browser journey runs once, on SQLite (the pages' services are tested on both)")
    clock = FakeClock(datetime(TODAY.year, TODAY.month, TODAY.day, 9, 30, tzinfo=UTC))
    with portal_server(runtime, clock) as (app, origin):
        yield app, origin, clock


def _person(records: list[MemberRecord]) -> MemberRecord:
    return next(
        r
        for r in records
        if r.role is BeneficiaryRole.HOLDER
        and r.contract_start <= TODAY
        and (r.contract_end is None or r.contract_end >= TODAY)
    )


def _incident_of_practice(runtime: Runtime, practice_id: uuid.UUID, clock: FakeClock) -> str:
    now = clock()
    with runtime.sessions() as session:
        incident = do_open_incident(
            session, title="Identifiants d'un opticien volés", nature=["confidentiality"],
            contact="securite@rempart.example", operator_id=None, now=now,
        )  # fmt: skip
        window = ScopeSet(
            since=now - timedelta(hours=1), until=now + timedelta(minutes=1), practice_ids=frozenset({practice_id})
        )
        do_add_scope(session, incident_id=incident.id, scope=window, operator_id=None, now=now)
        do_compute_facts(session, incident_id=incident.id, operator_id=None, now=now)
        return incident.reference


def test_an_insured_person_from_the_invitation_to_their_access_log(
    served: tuple[FastAPI, str, FakeClock], runtime: Runtime
) -> None:
    app, origin, clock = served
    insurer = make_insurer(runtime)
    records = synth_population(12, seed=11)
    load_members(runtime, insurer, records)
    person = _person(records)
    beneficiary_id = beneficiary_id_of(runtime, insurer.id, person)
    invitation = invite(
        app,
        runtime,
        login="titulaire@exemple.test",
        roles={Role.BENEFICIARY},
        insurer_id=insurer.id,
        beneficiary_id=beneficiary_id,
    )
    optician = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN, practice_name="Optique du Port")

    with chromium() as browser:
        tab = Tab.open(browser, origin, name="beneficiary")
        tab.folder = SHOTS
        page = tab.page
        try:
            # The invitation's link: a passkey, the recovery codes shown once, then the portal.
            page.goto(invitation.url(origin))
            tab.look("enrolment")
            page.click("#enrol-form button[type=submit]")
            page.wait_for_selector("#recovery-codes li")
            tab.look("recovery-codes")
            page.click("#recovery-continue")
            page.wait_for_url(origin + "/")
            tab.look("home")

            # My card: the QR code a practice's software reads when the platform is off.
            page.get_by_role("link", name="Ma carte", exact=True).first.click()
            page.wait_for_url(origin + "/me")
            qr = page.locator("#attestation-qr")
            qr.wait_for()
            assert qr.is_visible()
            tab.look("card")
            assert person.member_number in page.inner_text("main")
            (code,) = [  # a QR code only: the decoder may also see a 1D barcode in its modules
                found
                for found in zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.screenshot())))
                if found.format == zxingcpp.BarcodeFormat.QRCode
            ]
            keys = KeySet.from_jwks(TestClient(app).get(KEYS).content)
            verdict = verify(code.text, keys=keys, on=TODAY, nir=person.nir, birth_date=person.birth_date)
            assert verdict.valid
            assert page.locator("a[href='/me/card.pdf']").count() == 1

            # My rights, per care domain.
            page.get_by_role("link", name="Mes droits", exact=True).first.click()
            page.wait_for_url(origin + "/me/rights")
            tab.look("rights")
            assert "Pharmacie" in page.inner_text("main")

            # The optician's software checks this person's rights; the person sees it at once.
            clock.advance(minutes=2)
            checked = optician.post(
                "/api/v1/rights-checks",
                json={
                    "amc_number": insurer.amc_number,
                    "member_number": person.member_number,
                    "nir": person.nir,
                    "birth_date": person.birth_date.isoformat(),
                    "birth_rank": person.birth_rank,
                },
            )
            assert checked.status_code in (200, 201), checked.text
            page.get_by_role("link", name="Qui a consulté mes données", exact=True).first.click()
            page.wait_for_url(origin + "/me/access-log")
            tab.look("access-log")
            newest = page.locator("table.access-log tbody tr").first.inner_text()
            assert "Optique du Port" in newest
            assert "vérification de vos droits" in newest
            assert "ouverture des droits" in newest
            page.select_option("#who", "professionals")
            page.get_by_role("button", name="Afficher").click()
            page.wait_for_url(origin + "/me/access-log?who=professionals")
            tab.look("access-log-professionals")
            assert page.locator("table.access-log tbody tr").count() == 1

            page.get_by_role("link", name="Incidents de sécurité", exact=True).first.click()
            page.wait_for_url(origin + "/me/incidents")
            tab.look("no-incident")

            # The optician's credentials turn out stolen: an incident scoped to the practice names me.
            reference = _incident_of_practice(runtime, optician.practice_id, clock)
            page.reload()
            tab.look("incidents")
            main = page.inner_text("main")
            assert reference in main
            assert "ouverture des droits" in main
            assert "33700" in main
            page.locator("a[href='/account']").last.click()
            page.wait_for_url(origin + "/account")
            tab.look("security-settings")

            # The English switch, remembered from page to page.
            tab.goto("/me/access-log")
            page.click("a[hreflang=en]")
            page.wait_for_selector("html[lang=en]")
            tab.look("access-log-in-english")
            assert "checking your rights for care" in page.locator("table.access-log tbody tr").first.inner_text()
            for path, name in (("/me", "card-in-english"), ("/me/rights", "rights-in-english")):
                tab.goto(path)
                assert page.get_attribute("html", "lang") == "en"
                tab.look(name)
            assert page.get_by_role("heading", name="My rights", exact=True).count() == 1
        except Exception:
            tab.shot("failure")
            raise

    assert not tab.console_errors, tab.console_errors
    bad = {name: found for name, found in tab.violations.items() if found}
    assert not bad, f"axe-core: serious or critical violations: {bad}"
    assert len(tab.violations) >= 13
