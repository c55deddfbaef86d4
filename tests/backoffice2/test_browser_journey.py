"""The insurer's back office (part 2) in Debian's Chromium: three staff members enrol from their
invitation links with the browser's passkey authenticator; a claims agent reviews a claim waiting for
review and accepts it; an administrator previews a payment run over the second-approval threshold
and asks for it, a second administrator approves it, and the remittance appears with its CSV. Another
insurer's claim in the address reads like a missing one. axe-core runs in every page (zero serious or
critical violations); screenshots go to ``var/artefacts/backoffice/2-*.png``.

The threshold is lowered to 10 € for the journey (one pharmacy claim is enough to cross it); the
pages read it at each request, so the journey walks the same path as a 50,000 € run."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from rempart.identity.permissions import Role
from rempart.payments import approval
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.backoffice2.conftest import billed
from tests.backoffice2.test_approvals_and_breaches import breach, pending_approval
from tests.factories import TODAY, load_members, make_insurer
from tests.factories import population as synth_population
from tests.portal.conftest import Counter, World
from tests.support.browser import Tab, chromium, needs_chromium, portal_server
from tests.support.clock import FakeClock
from tests.support.portal import PortalUser, invite
from tests.support.practice_client import PracticeClient

pytestmark = [pytest.mark.browser, needs_chromium]

STAFF = (("agent", Role.CLAIMS_AGENT), ("admin", Role.INSURER_ADMIN), ("tresorier", Role.INSURER_ADMIN))
SHOTS = Path(os.environ.get("REMPART_ARTEFACTS", "var/artefacts")) / "backoffice"


@pytest.fixture
def served(runtime: Runtime) -> Iterator[tuple[FastAPI, str, FakeClock]]:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("the browser journey runs once, on SQLite (the pages' services are tested on both)")
    clock = FakeClock(datetime(TODAY.year, TODAY.month, TODAY.day, 9, 30, tzinfo=UTC))
    with portal_server(runtime, clock) as (app, origin):
        yield app, origin, clock


class Looks:
    """Screenshots named ``2-NN-<name>.png`` and an axe-core check of every page, over several tabs."""

    def __init__(self) -> None:
        for stale in SHOTS.glob("2-*.png"):  # a shorter journey leaves no older picture behind
            stale.unlink()
        self.count = 0
        self.violations: dict[str, list[str]] = {}

    def __call__(self, tab: Tab, name: str) -> None:
        self.count += 1
        SHOTS.mkdir(parents=True, exist_ok=True)
        tab.page.screenshot(path=str(SHOTS / f"2-{self.count:02d}-{name}.png"), full_page=True)
        self.violations[name] = tab.check_accessibility(name)


def enrol(browser: Any, origin: str, url: str, name: str) -> Tab:
    """A staff member's passkey made by the browser from their invitation link; signed in after."""
    tab = Tab.open(browser, origin, name=f"backoffice-{name}")
    tab.page.goto(url)
    tab.page.click("#enrol-form button[type=submit]")
    tab.page.wait_for_selector("#recovery-codes li")
    tab.page.click("#recovery-continue")
    tab.page.wait_for_url(origin + "/")
    return tab


def test_a_claim_reviewed_then_paid_by_a_run_two_administrators_approve(
    served: tuple[FastAPI, str, FakeClock], runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, origin, clock = served
    monkeypatch.setattr(approval, "SECOND_APPROVAL_CENTS", 1_000)
    insurer = make_insurer(runtime)
    records = synth_population(12, seed=11)
    load_members(runtime, insurer, records)
    optician = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN, practice_name="Optique du Port")
    pharmacy = PracticeClient.register(
        app, runtime, profession=Profession.PHARMACIST, practice_name="Pharmacie du Port"
    )
    counter = Counter(user=PortalUser.browser(app), practice=optician)
    world = World(insurer=insurer, members=records, counter=counter, clock=clock)
    claim_id = billed(world, runtime, pharmacy, price_cents=4_000)
    pending_approval(world, runtime)
    incident_id = breach(world, runtime, pharmacy)
    other = make_insurer(runtime, amc_number="77450202", name="Mutuelle d'Ailleurs")
    links = {
        name: invite(app, runtime, login=f"{name}@remparts.test", roles={role}, insurer_id=insurer.id).url(origin)
        for name, role in (
            ("agent", Role.CLAIMS_AGENT),
            ("admin", Role.INSURER_ADMIN),
            ("tresorier", Role.INSURER_ADMIN),
        )
    }
    outsider_link = invite(
        app, runtime, login="agent@ailleurs.test", roles={Role.CLAIMS_AGENT}, insurer_id=other.id
    ).url(origin)
    look = Looks()

    with chromium() as browser:
        agent = enrol(browser, origin, links["agent"], "agent")
        page = agent.page
        try:
            # The agent's queue: the pharmacy's claim, its reason in words; accepted from its page.
            page.get_by_role("link", name="Factures à examiner", exact=True).first.click()
            page.wait_for_url(origin + "/insurer/claims")
            assert "Montant au-dessus du seuil d'examen" in page.inner_text("main")
            look(agent, "review-queue")
            page.locator(f"a[href='/insurer/claims/{claim_id}']").click()
            page.wait_for_url(re.compile(r".*/insurer/claims/[0-9a-f-]{36}$"))
            look(agent, "review-claim")
            page.get_by_role("button", name="Rejeter la facture").click()  # no reason chosen: the form again
            page.wait_for_selector("#reject_reason-error")
            look(agent, "review-claim-reject-error")
            page.get_by_role("button", name="Accepter la facture").click()
            page.wait_for_url(re.compile(r".*\?decided=accepted$"))
            assert "Vous avez accepté cette facture" in page.inner_text("main")
            look(agent, "review-claim-accepted")
            agent.goto("/insurer/approvals")
            assert page.get_by_role("button", name="Accorder").count() == 1
            look(agent, "approvals-queue")
            agent.goto("/insurer/payment-runs")  # not an agent's work
            assert "Votre rôle ne le permet pas" in page.inner_text("main")
            look(agent, "runs-refused-to-an-agent")

            # The first administrator previews the run, then asks for it: over the threshold, it waits.
            admin = enrol(browser, origin, links["admin"], "admin")
            page = admin.page
            page.get_by_role("link", name="Paiements aux professionnels", exact=True).first.click()
            page.wait_for_url(origin + "/insurer/payment-runs")
            look(admin, "runs")
            page.get_by_role("button", name="Prévisualiser le paiement").click()
            page.wait_for_url(re.compile(r".*/insurer/payment-runs/preview\?cutoff=.*"))
            assert "Pharmacie du Port" in page.inner_text("main")
            look(admin, "runs-preview")
            page.get_by_role("button", name="Demander le paiement").click()
            page.wait_for_url(re.compile(r".*/insurer/payment-runs\?note=asked$"))
            assert page.get_by_role("button", name="Approuver et payer").count() == 0  # not their own
            look(admin, "runs-asked")

            # The second administrator approves it: the run is made, its remittance listed.
            second = enrol(browser, origin, links["tresorier"], "tresorier")
            page = second.page
            second.goto("/insurer/payment-runs")
            look(second, "runs-to-approve")
            page.get_by_role("button", name="Approuver et payer").click()
            page.wait_for_url(re.compile(r".*/insurer/payment-runs/[0-9a-f-]{36}$"))
            assert "RSP-" in page.inner_text("main")
            assert "Pharmacie du Port" in page.inner_text("main")
            look(second, "run-with-remittance")
            with page.expect_download() as download:
                page.get_by_role("link", name="Télécharger les bordereaux (CSV)").click()
            assert str(claim_id) in Path(download.value.path()).read_text(encoding="utf-8-sig")
            second.goto("/insurer/payment-runs")
            look(second, "runs-after")
            second.goto("/insurer/incidents")
            look(second, "breach-notices")
            page.locator(f"a[href='/insurer/incidents/{incident_id}']").click()
            page.wait_for_url(re.compile(r".*/insurer/incidents/[0-9a-f-]{36}$"))
            assert "22 h restantes" in page.inner_text("main")
            look(second, "breach-notice")
            page.get_by_role("button", name="Nous avons déposé notre notification").click()
            page.wait_for_url(re.compile(r".*\?done=art33$"))
            look(second, "breach-notice-art33-filed")
            page.click("a[hreflang=en]")
            page.wait_for_selector("html[lang=en]")
            second.goto("/insurer/payment-runs")
            assert page.get_by_role("button", name="Preview the run").count() == 1
            look(second, "runs-in-english")

            # Another insurer's agent: this insurer's claim reads like a claim that does not exist.
            outsider = enrol(browser, origin, outsider_link, "outsider")
            outsider.goto(f"/insurer/claims/{claim_id}")
            theirs = outsider.page.inner_text("main")
            look(outsider, "other-insurers-claim")
            outsider.goto(f"/insurer/claims/{uuid.uuid4()}")
            assert outsider.page.inner_text("main") == theirs
            assert "Cette page n'existe pas" in theirs
        except Exception:
            for tab in (agent,):
                tab.shot("2-failure")
            raise

    bad = {name: found for name, found in look.violations.items() if found}
    assert not bad, f"axe-core: serious or critical violations: {bad}"
    assert look.count >= 14
