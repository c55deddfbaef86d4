"""The insurer's back office in Debian's Chromium, end to end, as its administrator lives it: from the
enrolment link (a passkey made by the browser's authenticator) to a product's change, a members
import of a small file with one bad row (the progress bar, then the rejected row by line and field),
the member view, and the access log that shows that view, with its checkpoints page; the English
switch. Then a change of formulas scheduled for a later day, and a members export asked by the
administrator, approved by a second staff member in a browser of their own and downloaded once.
axe-core runs in every page (zero serious or critical violations) and every page is photographed
(``var/artefacts/backoffice``)."""

from __future__ import annotations

import csv
import fcntl
import io
import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import update

from rempart.identity.permissions import Role
from rempart.insurers.jobs import ImportStatus, MembersImportJob
from rempart.insurers.service import product_by_code
from rempart.members import imports
from rempart.members.models import BeneficiaryRole
from rempart.runtime import Runtime
from rempart.tenancy import bind_tenant
from tests.backoffice1.test_imports import members_csv
from tests.factories import TODAY, load_members, make_insurer
from tests.factories import population as synth_population
from tests.support.browser import Tab, chromium, needs_chromium, portal_server
from tests.support.clock import FakeClock
from tests.support.portal import invite

pytestmark = [pytest.mark.browser, needs_chromium]

ARTEFACTS = Path(os.environ.get("REMPART_ARTEFACTS", "var/artefacts")) / "backoffice"
EXPORT_PURPOSE = "Rapprochement annuel avec le fichier du service RH de l'employeur"


@pytest.fixture
def served(runtime: Runtime) -> Iterator[tuple[FastAPI, str, FakeClock]]:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("the browser journey runs once, on SQLite (the pages' services are tested on both)")
    clock = FakeClock(datetime(TODAY.year, TODAY.month, TODAY.day, 9, 30, tzinfo=UTC))
    with portal_server(runtime, clock) as (app, origin):
        yield app, origin, clock


def test_an_insurer_admin_from_the_enrolment_link_to_the_access_log(
    served: tuple[FastAPI, str, FakeClock], runtime: Runtime
) -> None:
    app, origin, _clock = served
    insurer = make_insurer(runtime)
    loaded = synth_population(6, seed=11)
    load_members(runtime, insurer, loaded)
    # The administrator is also the insurer's data protection officer here, so one person walks the
    # whole of part 1 (the access log needs the DPO's permission).
    invitation = invite(
        app, runtime, login="admin@remparts.test", roles={Role.INSURER_ADMIN, Role.DPO}, insurer_id=insurer.id
    )
    incoming = synth_population(3, seed=21, first_number=900)
    content, broken = members_csv(incoming, break_nir_of=incoming[-1])
    holder = next(r for r in loaded if r.role is BeneficiaryRole.HOLDER)

    with chromium() as browser:
        tab = Tab.open(browser, origin, name="backoffice")
        tab.folder = ARTEFACTS
        page = tab.page
        try:
            # The enrolment link: a passkey, the recovery codes shown once, then home.
            page.goto(invitation.url(origin))
            tab.look("enrolment")
            page.click("#enrol-form button[type=submit]")
            page.wait_for_selector("#recovery-codes li")
            page.click("#recovery-continue")
            page.wait_for_url(origin + "/")
            tab.look("home")

            # Products: the list in words, then a change to one of them.
            page.get_by_role("link", name="Garanties", exact=True).first.click()
            page.wait_for_url(origin + "/insurer/products")
            assert "de la BRSS" in page.inner_text("main")
            tab.look("products")
            page.locator("a[href='/insurer/products/CONFORT']").click()
            page.wait_for_url(origin + "/insurer/products/CONFORT")
            tab.look("product-form")
            page.fill("#name", "Confort révisé")
            page.check("#opti_covered")
            page.fill("#opti_rate", "200")
            page.fill("#opti_flat", "150")
            page.fill("#opti_ceiling", "300")
            page.check("#opti_class_a")
            page.get_by_role("button", name="Enregistrer le produit").click()
            page.wait_for_url(re.compile(r".*/insurer/products\?done=updated.*"))
            tab.look("product-saved")
            shown = re.sub(r"\s+", " ", page.inner_text("#product-CONFORT").replace("\u202f", " ").replace("\xa0", " "))
            assert "200 % de la BRSS + forfait 150,00 € ; 100 % Santé classe A sans reste à charge" in shown
            with runtime.sessions() as session:
                assert product_by_code(session, insurer.id, "CONFORT").name == "Confort révisé"

            # A members import with one bad row: the progress bar, then the rejected row.
            page.get_by_role("link", name="Imports d'adhérents", exact=True).first.click()
            page.wait_for_url(origin + "/insurer/imports")
            tab.look("imports")
            page.set_input_files("#file", files=[{"name": "members.csv", "mimeType": "text/csv", "buffer": content}])
            page.get_by_role("button", name="Importer le fichier").click()
            page.wait_for_url(re.compile(r".*/insurer/imports/[0-9a-f-]{36}$"))
            assert page.locator("progress#import-bar").count() == 1
            tab.look("import-progress")
            page.wait_for_selector("#rejected-rows")
            tab.look("import-report")
            report = page.inner_text("main")
            assert "NIR" in report
            assert str(len(incoming) + 1) in page.inner_text("#rejected-rows")  # the bad row's line
            body = page.content()
            assert broken not in body
            for person in incoming:
                assert person.nir not in body
                assert person.last_name not in body
            tab.goto("/insurer/imports")
            tab.look("imports-after")

            # The member view, found by member number.
            page.get_by_role("link", name="Adhérents", exact=True).first.click()
            page.wait_for_url(origin + "/insurer/members")
            tab.look("find-member")
            page.fill("#number", holder.member_number)
            page.get_by_role("button", name="Afficher l'adhérent").click()
            page.wait_for_url(origin + f"/insurer/members/{holder.member_number}")
            assert holder.last_name in page.inner_text("#beneficiaries")
            tab.look("member")

            # The access log shows that view; a filter on the back office channel keeps it.
            page.get_by_role("link", name="Journal des accès", exact=True).first.click()
            page.wait_for_url(origin + "/insurer/access-log")
            assert page.locator("tr[data-operation='backoffice_member_view']").count() >= 1
            tab.look("access-log")
            page.select_option("#channel", "backoffice")
            page.get_by_role("button", name="Afficher", exact=True).click()
            page.wait_for_url(re.compile(r".*/insurer/access-log\?.*channel=backoffice.*"))
            assert page.locator("tr[data-operation='backoffice_member_view']").count() >= 1
            assert holder.last_name not in page.content()
            tab.look("access-log-filtered")
            page.locator("a[href='/insurer/access-log/checkpoints']").click()
            page.wait_for_url(origin + "/insurer/access-log/checkpoints")
            tab.look("checkpoints")

            # The English switch, remembered from page to page.
            page.click("a[hreflang=en]")
            page.wait_for_selector("html[lang=en]")
            tab.look("checkpoints-in-english")
            for path, name in (
                ("/insurer/products", "products-in-english"),
                ("/insurer/imports", "imports-in-english"),
                (f"/insurer/members/{holder.member_number}", "member-in-english"),
                ("/insurer/access-log", "access-log-in-english"),
                ("/insurer/products/new", "new-product-in-english"),
            ):
                tab.goto(path)
                assert page.get_attribute("html", "lang") == "en"
                tab.look(name)
        except Exception:
            tab.shot("failure")
            raise

    bad = {name: found for name, found in tab.violations.items() if found}
    assert not bad, f"axe-core: serious or critical violations: {bad}"
    assert len(tab.violations) >= 20
    assert not [e for e in tab.console_errors if "backoffice.js" in e]


def enrol(tab: Tab, url: str) -> None:
    """The enrolment link in this tab: a passkey from its authenticator, the recovery codes, home."""
    page = tab.page
    page.goto(url)
    page.click("#enrol-form button[type=submit]")
    page.wait_for_selector("#recovery-codes li")
    page.click("#recovery-continue")
    page.wait_for_url(tab.origin + "/")


def spaced(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u202f", " ").replace("\xa0", " "))


def test_a_scheduled_product_change_and_a_members_export_under_a_second_approval(
    served: tuple[FastAPI, str, FakeClock], runtime: Runtime
) -> None:
    """The administrator changes a product's formulas from a day two weeks ahead (today's formulas
    go on, the change shows as scheduled, with its withdraw button), then asks for an export of
    every member; the insurer's data protection officer, signed in in another browser, approves it;
    the administrator downloads the file once: a header and one line per member."""
    app, origin, _clock = served
    insurer = make_insurer(runtime)
    loaded = synth_population(6, seed=11)
    load_members(runtime, insurer, loaded)
    admin_link = invite(app, runtime, login="admin@remparts.test", roles={Role.INSURER_ADMIN}, insurer_id=insurer.id)
    dpo_link = invite(app, runtime, login="dpo@remparts.test", roles={Role.DPO}, insurer_id=insurer.id)
    from_day = TODAY + timedelta(days=14)
    folder = ARTEFACTS / "scheduled-and-export"
    tabs: list[Tab] = []

    with chromium() as browser:
        admin = Tab.open(browser, origin, name="backoffice-admin")
        admin.folder = folder
        tabs.append(admin)
        page = admin.page
        current: Tab = admin
        try:
            enrol(admin, admin_link.url(origin))

            # A change of CONFORT's optical formula from a day two weeks ahead: scheduled, not applied.
            page.get_by_role("link", name="Garanties", exact=True).first.click()
            page.wait_for_url(origin + "/insurer/products")
            before = spaced(page.inner_text("#product-CONFORT"))
            page.locator("a[href='/insurer/products/CONFORT']").click()
            page.wait_for_url(origin + "/insurer/products/CONFORT")
            page.check("#opti_covered")
            page.fill("#opti_rate", "250")
            page.fill("#opti_flat", "120")
            page.fill("#opti_ceiling", "400")
            page.fill("#effective_on", from_day.isoformat())
            admin.look("product-change-dated")
            page.get_by_role("button", name="Enregistrer le produit").click()
            page.wait_for_url(re.compile(r".*/insurer/products\?done=scheduled.*"))
            listed = spaced(page.inner_text("#product-CONFORT"))
            assert "Ce que rembourse" in listed
            assert "pour les soins délivrés à partir du" in listed
            assert "250 % de la BRSS + forfait 120,00 €" in listed
            assert listed.count("250 % de la BRSS") == 1  # today's formulas are still today's
            assert "250 % de la BRSS" not in before
            admin.look("product-scheduled")
            page.locator("a[href='/insurer/products/CONFORT']").click()
            page.wait_for_url(origin + "/insurer/products/CONFORT")
            assert page.locator("#scheduled").count() == 1
            assert page.get_by_role("button", name="Retirer la modification programmée").count() == 1
            assert page.get_attribute("#effective_on", "value") == from_day.isoformat()
            assert page.locator("#retire").count() == 1
            admin.look("product-form-scheduled")
            with runtime.sessions() as session:
                product = product_by_code(session, insurer.id, "CONFORT")
                scheduled = product.scheduled_after(TODAY)
                assert scheduled is not None
                assert scheduled[0] == from_day

            # The administrator asks for an export of every member: it waits for someone else.
            page.get_by_role("link", name="Exports d'adhérents", exact=True).first.click()
            page.wait_for_url(origin + "/insurer/exports")
            admin.look("exports")
            page.fill("#purpose", EXPORT_PURPOSE)
            page.get_by_role("button", name="Demander l'accord d'un second membre du personnel").click()
            page.wait_for_url(origin + "/insurer/exports?note=asked")
            assert EXPORT_PURPOSE in page.inner_text("main")
            assert page.get_by_role("button", name="Approuver").count() == 0  # never one's own
            assert page.get_by_role("button", name="Télécharger le fichier (une seule fois)").count() == 0
            admin.look("export-asked")

            # The data protection officer, in a browser of their own, approves it.
            dpo = Tab.open(browser, origin, name="backoffice-dpo")
            dpo.folder = folder / "dpo"
            tabs.append(dpo)
            current = dpo
            enrol(dpo, dpo_link.url(origin))
            dpo.page.get_by_role("link", name="Exports d'adhérents à approuver", exact=True).first.click()
            dpo.page.wait_for_url(origin + "/insurer/exports/approvals")
            waiting = dpo.page.inner_text("main")
            assert EXPORT_PURPOSE in waiting
            assert "admin@remparts.test" in waiting
            dpo.look("export-to-approve")
            dpo.page.get_by_role("button", name="Approuver", exact=True).click()
            dpo.page.wait_for_url(origin + "/insurer/exports/approvals?note=approved")
            dpo.look("export-approved")
            current = admin

            # The administrator downloads the file, once: a header and one line per member.
            admin.goto("/insurer/exports")
            assert "dpo@remparts.test" in page.inner_text("main")
            admin.look("export-to-download")
            with page.expect_download(timeout=15_000) as downloading:
                page.get_by_role("button", name="Télécharger le fichier (une seule fois)").click()
            download: Any = downloading.value
            assert download.suggested_filename.startswith("members-")
            assert download.suggested_filename.endswith(".csv")
            text = Path(download.path()).read_text(encoding="utf-8-sig")
            rows = list(csv.reader(io.StringIO(text)))
            assert rows[0][:4] == ["member_number", "role", "birth_rank", "nir"]
            assert len(rows) == len(loaded) + 1
            assert len(text.splitlines()) == len(loaded) + 1  # no field on two lines
            assert sorted(r[3] for r in rows[1:]) == sorted(r.nir for r in loaded)
            admin.goto("/insurer/exports")
            assert page.get_by_role("button", name="Télécharger le fichier (une seule fois)").count() == 0
            admin.look("export-downloaded")
        except Exception:
            current.shot("failure")
            raise

    for tab in tabs:
        bad = {name: found for name, found in tab.violations.items() if found}
        assert not bad, f"axe-core: serious or critical violations: {bad}"
        assert not [e for e in tab.console_errors if "backoffice.js" in e]
    assert len(admin.violations) == 7
    assert len(tabs[1].violations) == 2


def test_the_progress_bar_moves_while_an_import_runs(served: tuple[FastAPI, str, FakeClock], runtime: Runtime) -> None:
    """A job another worker is running (its lease held, as ``members.imports`` holds one: an flock on
    the stored upload): the page's bar follows its counters each second, and the report comes when
    it ends, without a reload by hand."""
    app, origin, clock = served
    insurer = make_insurer(runtime)
    invitation = invite(app, runtime, login="import@remparts.test", roles={Role.INSURER_ADMIN}, insurer_id=insurer.id)
    job_id = uuid.uuid4()
    upload = imports.upload_path(runtime, job_id, ".csv")
    lease = os.open(upload, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(lease, fcntl.LOCK_EX)

    def counters(**values: object) -> None:
        with runtime.sessions.begin() as session:
            bind_tenant(session, insurer.id)
            session.execute(
                update(MembersImportJob)
                .where(MembersImportJob.insurer_id == insurer.id, MembersImportJob.id == job_id)
                .values(**values)
            )

    try:
        with runtime.sessions.begin() as session:
            bind_tenant(session, insurer.id)
            session.add(
                MembersImportJob(
                    insurer_id=insurer.id,
                    id=job_id,
                    status=ImportStatus.RUNNING,
                    file_format="csv",
                    rows_total=5,
                    rows_done=1,
                    started_by=uuid.uuid4(),
                    created_at=clock(),
                )
            )
        with chromium() as browser:
            tab = Tab.open(browser, origin, name="backoffice-progress")
            tab.folder = ARTEFACTS / "progress"
            page = tab.page
            try:
                page.goto(invitation.url(origin))
                page.click("#enrol-form button[type=submit]")
                page.wait_for_selector("#recovery-codes li")
                page.click("#recovery-continue")
                page.wait_for_url(origin + "/")
                tab.goto(f"/insurer/imports/{job_id}")
                assert page.get_attribute("#import-bar", "value") == "1"
                tab.look("import-running")
                counters(rows_done=4)
                page.wait_for_function("() => document.getElementById('import-bar').value === 4", timeout=10_000)
                assert "4 lignes sur 5 (80 %)" in page.inner_text("#import-counts")
                tab.look("import-moving")
                counters(rows_done=5, status=ImportStatus.DONE, contracts_created=2, beneficiaries_created=5)
                page.wait_for_selector("#rejected-count", timeout=10_000)
                tab.look("import-done")
            except Exception:
                tab.shot("failure")
                raise
    finally:
        os.close(lease)
        upload.unlink(missing_ok=True)
    bad = {name: found for name, found in tab.violations.items() if found}
    assert not bad, f"axe-core: serious or critical violations: {bad}"
