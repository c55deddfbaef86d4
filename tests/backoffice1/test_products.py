"""Products in the back office: the list says per care domain what each formula pays, a product is
created and changed through forms that point at bad fields and write nothing, one in use is not
deleted, and a role without the permission gets the 403 page."""

from __future__ import annotations

import re
from datetime import timedelta

from rempart.fields import paris_day
from rempart.insurers.service import list_products, product_by_code
from rempart.runtime import Runtime
from tests.backoffice1.conftest import Office


def _covered(domain: str, **fields: str) -> dict[str, str]:
    key = domain.lower()
    return {f"{key}_covered": "on", f"{key}_third_party": "on", **{f"{key}_{k}": v for k, v in fields.items()}}


def test_the_products_list_says_what_each_formula_pays_in_french(office: Office) -> None:
    page = office.admin.page("/insurer/products")

    assert page.status_code == 200, page.text
    assert '<html lang="fr">' in page.text
    assert "Garanties" in page.text
    assert "de la BRSS" in page.text
    assert "Optique" in page.text
    assert "/insurer/products/new" in page.text


def test_the_products_list_in_english(office: Office) -> None:
    office.admin.english()

    page = office.admin.page("/insurer/products")

    assert '<html lang="en">' in page.text
    assert "of the BRSS" in page.text
    assert "New product" in page.text


def test_a_product_is_created_and_read_back_in_words(office: Office, runtime: Runtime) -> None:
    office.admin.page("/insurer/products/new")
    fields = {
        "code": "CONFORT-2",
        "name": "Confort 2",
        **_covered("OPTI", rate="200", flat="150", ceiling="300", class_a="on", approval="on"),
        **_covered("PHAR", rate="100"),
    }

    answer = office.admin.form("/insurer/products/new", fields, follow_redirects=False)

    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].startswith("/insurer/products?done=created")
    listed = office.admin.page(answer.headers["location"]).text
    assert "Le produit a été créé." in listed
    text = re.sub(r"\s+", " ", listed.replace("\u202f", " ").replace("\xa0", " "))
    assert (
        "200 % de la BRSS + forfait 150,00 € ; 100 % Santé classe A sans reste à charge ; plafond annuel 300,00 €"
        " ; accord préalable obligatoire" in text
    )
    with runtime.sessions() as session:
        product = product_by_code(session, office.insurer.id, "CONFORT-2")
        optics = next(g for g in product.guarantees if g.care_domain == "OPTI")
        assert (optics.brss_rate_pct, optics.flat_amount_cents, optics.yearly_ceiling_cents) == (200, 15000, 30000)
        assert optics.sante_100_class_a
        assert optics.prior_approval_required
        assert optics.third_party_payment


def test_bad_fields_are_pointed_at_and_nothing_is_written(office: Office, runtime: Runtime) -> None:
    with runtime.sessions() as session:
        before = [p.code for p in list_products(session, office.insurer.id)]
    office.admin.page("/insurer/products/new")
    fields = {"code": "bad code", "name": "", **_covered("OPTI", rate="2000", flat="douze")}

    answer = office.admin.form("/insurer/products/new", fields)

    assert answer.status_code == 422
    for name in ("code", "name", "opti_rate", "opti_flat"):
        assert re.search(rf'<input id="{name}"[^>]*aria-invalid="true"', answer.text), name
    assert "Rien n'a été enregistré" in answer.text
    with runtime.sessions() as session:
        assert [p.code for p in list_products(session, office.insurer.id)] == before


def test_a_product_is_changed(office: Office, runtime: Runtime) -> None:
    form = office.admin.page("/insurer/products/CONFORT")
    assert form.status_code == 200, form.text
    assert 'name="opti_rate"' in form.text

    answer = office.admin.form(
        "/insurer/products/CONFORT",
        {"name": "Confort révisé", **_covered("DENT", rate="300", class_b="450,50")},
        follow_redirects=False,
    )

    assert answer.status_code == 303, answer.text
    with runtime.sessions() as session:
        product = product_by_code(session, office.insurer.id, "CONFORT")
        assert product.name == "Confort révisé"
        today = product.formulas_on(paris_day(office.clock()))
        assert [(g.care_domain, g.brss_rate_pct, g.class_b_ceiling_cents) for g in today] == [("DENT", 300, 45050)]


def test_a_product_in_use_is_not_deleted(office: Office) -> None:
    office.admin.page("/insurer/products/CONFORT")

    answer = office.admin.form("/insurer/products/CONFORT/delete")

    assert answer.status_code == 409
    assert 'id="in-use"' in answer.text


def test_an_unused_product_is_deleted(office: Office) -> None:
    office.admin.page("/insurer/products/new")
    office.admin.form("/insurer/products/new", {"code": "VIDE", "name": "Vide", **_covered("PHAR", rate="100")})

    answer = office.admin.form("/insurer/products/VIDE/delete", follow_redirects=False)

    assert answer.status_code == 303
    assert office.admin.page("/insurer/products/VIDE").status_code == 404


def test_another_insurers_product_is_not_found(office: Office) -> None:
    office.admin.page("/insurer/products")
    assert office.admin.page("/insurer/products/NOPE").status_code == 404
    assert "Cette page n'existe pas" in office.admin.page("/insurer/products/NOPE").text


def test_roles_without_the_permission_get_the_403_page(office: Office) -> None:
    # A claims agent reads products but does not change them; the DPO reads them too.
    assert office.agent.page("/insurer/products").status_code == 200
    assert "/insurer/products/new" not in office.agent.page("/insurer/products").text
    refused = office.agent.page("/insurer/products/new")
    assert refused.status_code == 403
    assert "Votre rôle ne le permet pas" in refused.text
    office.agent.page("/insurer/products")
    assert office.agent.form("/insurer/products/new", {"code": "X", "name": "X"}).status_code == 403


def test_a_change_is_scheduled_shown_and_withdrawn(office: Office, runtime: Runtime) -> None:
    today = paris_day(office.clock())
    later = today + timedelta(days=14)
    office.admin.page("/insurer/products/CONFORT")

    answer = office.admin.form(
        "/insurer/products/CONFORT",
        {"name": "Confort", "effective_on": later.strftime("%d/%m/%Y"), **_covered("DENT", rate="300")},
        follow_redirects=False,
    )

    assert answer.status_code == 303, answer.text
    assert "done=scheduled" in answer.headers["location"]
    listed = _words(office.admin.page(answer.headers["location"]).text)
    assert "La modification a été enregistrée" in listed
    assert "Ce que rembourse Confort aujourd'hui" in listed
    assert "Ce que rembourse Confort pour les soins délivrés à partir du" in listed
    with runtime.sessions() as session:
        product = product_by_code(session, office.insurer.id, "CONFORT")
        assert [g.care_domain for g in product.formulas_on(later)] == ["DENT"]
        assert len(product.formulas_on(today)) > 1  # today's formulas go on until then
    form = office.admin.page("/insurer/products/CONFORT").text
    assert 'id="scheduled"' in form
    assert f'value="{later.isoformat()}"' in form  # the form shows the change, from its day

    withdrawn = office.admin.form("/insurer/products/CONFORT/scheduled/withdraw", follow_redirects=False)

    assert withdrawn.status_code == 303
    with runtime.sessions() as session:
        assert product_by_code(session, office.insurer.id, "CONFORT").scheduled_after(today) is None


def test_a_change_for_a_past_day_is_pointed_at_and_nothing_is_written(office: Office, runtime: Runtime) -> None:
    today = paris_day(office.clock())
    office.admin.page("/insurer/products/CONFORT")

    for typed in ((today - timedelta(days=1)).isoformat(), "31/02/2027", "demain"):
        answer = office.admin.form(
            "/insurer/products/CONFORT", {"name": "Confort", "effective_on": typed, **_covered("DENT", rate="300")}
        )

        assert answer.status_code == 422, typed
        assert re.search(r'<input id="effective_on"[^>]*aria-invalid="true"', answer.text), typed
        assert "Indiquez un jour, aujourd'hui ou plus tard" in answer.text
    with runtime.sessions() as session:
        product = product_by_code(session, office.insurer.id, "CONFORT")
        assert len(product.formulas_on(today)) > 1
        assert product.scheduled_after(today) is None


def test_a_product_is_retired_and_reopened(office: Office, runtime: Runtime) -> None:
    today = paris_day(office.clock())
    office.admin.page("/insurer/products/CONFORT")

    past = office.admin.form(
        "/insurer/products/CONFORT/retire", {"retired_on": (today - timedelta(days=3)).isoformat()}
    )
    unnamed = office.admin.form("/insurer/products/CONFORT/retire", {"retired_on": today.isoformat()})
    retired = office.admin.form(
        "/insurer/products/CONFORT/retire", {"retired_on": today.isoformat(), "successor_code": "PREMIUM"}
    )

    assert past.status_code == 422
    assert re.search(r'<input id="retired_on"[^>]*aria-invalid="true"', past.text)
    assert unnamed.status_code == 422  # contracts use it: the page asks for the successor
    assert "choisissez le produit sur lequel vont les nouveaux adhérents" in _words(unnamed.text)
    assert '<option value="PREMIUM">' in unnamed.text
    assert retired.status_code == 200
    assert "Les nouveaux adhérents vont sur PREMIUM à la place." in _words(retired.text)
    assert "Le produit a été fermé à la commercialisation" in _words(retired.text)
    assert "Fermé à la commercialisation depuis le" in _words(retired.text)
    with runtime.sessions() as session:
        assert product_by_code(session, office.insurer.id, "CONFORT").retired(today)

    reopened = office.admin.form("/insurer/products/CONFORT/reopen")

    assert reopened.status_code == 200
    assert "de nouveau ouvert aux nouveaux adhérents" in _words(reopened.text)
    with runtime.sessions() as session:
        assert product_by_code(session, office.insurer.id, "CONFORT").retired_on is None


def test_a_claims_agent_can_neither_schedule_nor_retire(office: Office) -> None:
    office.agent.page("/insurer/products")
    for path in ("/insurer/products/CONFORT/retire", "/insurer/products/CONFORT/reopen"):
        assert office.agent.form(path, {"retired_on": "2030-01-01"}).status_code == 403, path
    assert office.agent.form("/insurer/products/CONFORT/scheduled/withdraw").status_code == 403


def _words(html: str) -> str:
    return re.sub(r"\s+", " ", html.replace("\u202f", " ").replace("\xa0", " ").replace("&#39;", "'"))


def test_retiring_or_changing_from_the_page_asks_for_a_fresh_passkey(office: Office, runtime: Runtime) -> None:
    today = paris_day(office.clock())
    office.admin.page("/insurer/products/CONFORT")
    office.clock.advance(minutes=6)  # the passkey check of the login is no longer fresh

    stale = office.admin.form(
        "/insurer/products/CONFORT/retire", {"retired_on": today.isoformat(), "successor_code": "PREMIUM"}
    )

    assert stale.status_code == 401
    assert "Confirmez" in stale.text or "passkey" in stale.text.lower()
    with runtime.sessions() as session:
        assert product_by_code(session, office.insurer.id, "CONFORT").retired_on is None
    assert office.admin.user.step_up().status_code == 200
    retired = office.admin.form(
        "/insurer/products/CONFORT/retire", {"retired_on": today.isoformat(), "successor_code": "PREMIUM"}
    )
    assert retired.status_code == 200
