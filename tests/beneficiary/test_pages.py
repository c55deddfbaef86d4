"""The beneficiary's portal as the insured person sees it: their card with its signed QR code and
PDF, their rights and the ceilings left, who accessed their data (a rights check a practice just made
shows, by the practice's name, with its purpose and the fields seen in words), and the incidents that
concern them; in French and in English; their own data only, never their spouse's on the same
contract; refused to a professional."""

from __future__ import annotations

import base64
import html
import io
import re
from datetime import timedelta

import pytest
import zxingcpp
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from rempart.audit.models import AccessEvent
from rempart.incidents.facts import ScopeSet
from rempart.incidents.service import do_add_scope, do_compute_facts, do_open_incident
from rempart.runtime import Runtime
from rempart_verifier import KeySet, verify
from tests.beneficiary.conftest import Family, Person, invite_person
from tests.factories import TODAY
from tests.portal.conftest import World

PAGES = {
    "/me": ("Ma carte de tiers payant", "My third-party payment card"),
    "/me/rights": ("Mes droits par domaine de soins", "My rights per care domain"),
    "/me/access-log": ("Qui a consulté mes données", "Who accessed my data"),
    "/me/incidents": ("Les incidents de sécurité qui me concernent", "Security incidents that concern me"),
}
KEYS = "/.well-known/rempart/attestation-keys"
_QR = re.compile(r'<img id="attestation-qr" src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _rows(page: str) -> list[str]:
    """The access log's lines, as text."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""
    return [html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row))) for row in body.split("</tr>")[:-1]]


def _check_rights_at_the_counter(world: World, person: Person) -> None:
    """The optician of "Optique du Port" checks this person's rights, as at the counter."""
    assert world.counter.page("/counter").status_code == 200
    answer = world.counter.form("/counter", world.card_fields(person.record))
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("path", sorted(PAGES))
def test_each_page_speaks_french_then_english_and_links_the_security_settings(family: Family, path: str) -> None:
    french, english = PAGES[path]
    person = family.holder
    page = person.page(path)
    assert page.status_code == 200, page.text
    assert '<html lang="fr">' in page.text
    assert french in page.text
    assert 'href="/account"' in page.text
    assert 'href="/lang/en?next=' in page.text
    assert "style=" not in page.text
    assert not re.search(r"<script(?![^>]*src=\"/static/)", page.text)

    person.speak("en")
    page = person.page(path)
    assert page.status_code == 200
    assert '<html lang="en">' in page.text
    assert english in page.text
    assert french not in page.text
    assert person.user.client.head(path).status_code == 200


def test_my_card_shows_the_card_and_a_qr_code_a_verifier_accepts(app: FastAPI, family: Family, world: World) -> None:
    person = family.holder
    page = person.page("/me")
    assert page.status_code == 200
    text = html.unescape(page.text)
    for shown in (world.insurer.name, world.insurer.amc_number, person.record.member_number, "01", "22 nov. 2026"):
        assert shown in text
    assert "la plateforme est coupée" in text  # what the QR code is for
    assert 'href="/me/card.pdf"' in page.text
    found = _QR.search(page.text)
    assert found, "the QR code is inline, as a data: PNG"
    (code,) = [  # a QR code only: the decoder may also see a 1D barcode in its modules
        found
        for found in zxingcpp.read_barcodes(Image.open(io.BytesIO(base64.b64decode(found.group(1)))))
        if found.format == zxingcpp.BarcodeFormat.QRCode
    ]
    keys = KeySet.from_jwks(TestClient(app).get(KEYS).content)
    verdict = verify(code.text, keys=keys, on=TODAY, nir=person.record.nir, birth_date=person.record.birth_date)
    assert verdict.valid
    # The spouse's identity does not pass with the holder's attestation.
    other = family.spouse.record
    assert not verify(code.text, keys=keys, on=TODAY, nir=other.nir, birth_date=other.birth_date).valid

    pdf = person.user.client.get("/me/card.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    name = f"attestation-{person.record.member_number}-1.pdf"
    assert pdf.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert pdf.content.startswith(b"%PDF")


def test_my_rights_per_care_domain_and_the_look_is_in_my_access_log(family: Family, runtime: Runtime) -> None:
    person = family.holder
    page = html.unescape(person.page("/me/rights").text)
    assert "Couvert" in page
    for words in ("Pharmacie", "Optique", "de la BRSS", "Tiers payant", "Accord préalable nécessaire", "sur "):
        assert words in page
    assert re.search(r"\d+,\d\d\s€", page)  # a ceiling left, in euros, the French way
    person.speak("en")
    page = html.unescape(person.page("/me/rights").text)
    assert "Pharmacy" in page
    assert "of the BRSS" in page
    assert "Ceiling left this year" in page

    with runtime.sessions() as session:
        seen = session.scalars(select(AccessEvent).where(AccessEvent.operation == "beneficiary_self_view")).all()
    assert len(seen) == 2
    assert {e.beneficiary_id for e in seen} == {person.beneficiary_id}
    log = html.unescape(person.page("/me/access-log").text)
    assert "you, in your space" in log


def test_the_access_log_shows_a_practices_check_of_me_and_not_of_my_spouse(family: Family, world: World) -> None:
    _check_rights_at_the_counter(world, family.holder)

    rows = _rows(family.holder.page("/me/access-log").text)
    assert rows, "the holder's access log is empty"
    newest = rows[0]
    assert "Optique du Port" in newest
    assert "opticien" in newest
    assert "vérification de vos droits" in newest  # the purpose
    assert "ouverture des droits" in newest
    assert "plafonds restants" in newest  # the fields, in words
    assert re.search(r"22 nov\. 2026, 10:30", newest)  # Paris time

    family.holder.speak("en")
    newest = _rows(family.holder.page("/me/access-log").text)[0]
    assert "Optique du Port" in newest
    assert "checking your rights for care" in newest
    assert "remaining ceilings" in newest
    assert "Nov 22, 2026" in newest

    # The spouse, on the same contract: their log does not hold the holder's check.
    spouse_log = family.spouse.page("/me/access-log").text
    assert "Optique du Port" not in spouse_log
    assert all("Optique du Port" not in row for row in _rows(spouse_log))


def test_each_person_sees_only_their_own(family: Family, world: World, runtime: Runtime) -> None:
    _check_rights_at_the_counter(world, family.spouse)
    assert family.holder.page("/me").status_code == 200
    assert family.holder.page("/me/rights").status_code == 200

    holder_log = _rows(family.holder.page("/me/access-log").text)
    spouse_log = _rows(family.spouse.page("/me/access-log").text)
    assert not any("Optique du Port" in row for row in holder_log)
    assert any("Optique du Port" in row for row in spouse_log)
    assert len(holder_log) == 2  # the holder's card and rights, nobody else's
    assert len(spouse_log) == 1  # the practice's check of the spouse, and nothing of the holder's
    with runtime.sessions() as session:
        events = session.scalars(
            select(AccessEvent).where(AccessEvent.operation.in_(["beneficiary_self_view", "attestation_issue"]))
        ).all()
    assert {e.beneficiary_id for e in events} == {family.holder.beneficiary_id}

    # Nothing in a page's address can point at another person's records.
    assert family.spouse.page(f"/me/access-log?beneficiary_id={family.holder.beneficiary_id}").status_code == 200
    assert "Optique du Port" in family.spouse.page("/me/access-log").text


def test_the_access_log_pages_back_in_time(family: Family, world: World) -> None:
    person = family.holder
    for _ in range(21):
        world.clock.advance(minutes=1)
        assert person.page("/me/rights").status_code == 200
    first = person.page("/me/access-log").text
    assert len(_rows(first)) == 20
    found = re.search(r'href="/me/access-log\?cursor=([^"]+)" rel="next"', first)
    assert found
    second = person.page(f"/me/access-log?cursor={html.unescape(found.group(1))}")
    assert second.status_code == 200
    assert len(_rows(second.text)) == 1
    assert 'rel="next"' not in second.text
    assert 'href="/me/access-log"' in second.text

    refused = person.page("/me/access-log?cursor=not-a-cursor")
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("text/html")
    assert "Traceback" not in refused.text


def test_the_incidents_that_concern_me_say_what_was_seen_and_what_to_do(
    family: Family, world: World, runtime: Runtime
) -> None:
    assert "Aucun incident de sécurité ne concerne vos données." in family.holder.page("/me/incidents").text
    _check_rights_at_the_counter(world, family.holder)
    now = world.clock()
    with runtime.sessions() as session:
        practice_id = session.scalars(
            select(AccessEvent.practice_id).where(AccessEvent.beneficiary_id == family.holder.beneficiary_id)
        ).first()
        assert practice_id is not None
        incident = do_open_incident(
            session, title="Identifiants d'un cabinet volés", nature=["confidentiality"],
            contact="securite@rempart.example", operator_id=None, now=now,
        )  # fmt: skip
        do_add_scope(
            session,
            incident_id=incident.id,
            scope=ScopeSet(
                since=now - timedelta(hours=1), until=now + timedelta(hours=1), practice_ids=frozenset({practice_id})
            ),
            operator_id=None,
            now=now,
        )
        do_compute_facts(session, incident_id=incident.id, operator_id=None, now=now)
        reference = incident.reference

    page = html.unescape(family.holder.page("/me/incidents").text)
    assert reference in page
    assert "Identifiants d'un cabinet volés" in page
    assert "Vues" in page
    assert "ouverture des droits" in page  # what was seen, in words
    assert "le portail d'un professionnel de santé" in page  # through which channel
    assert "33700" in page  # what to do
    family.holder.speak("en")
    page = html.unescape(family.holder.page("/me/incidents").text)
    assert "whether you are covered" in page
    assert "a health professional's portal" in page
    assert "What to do" in page

    # The spouse was not checked: no incident concerns them.
    assert reference not in family.spouse.page("/me/incidents").text


@pytest.mark.parametrize("path", [*sorted(PAGES), "/me/card.pdf"])
def test_a_professional_is_refused_the_beneficiarys_pages(world: World, path: str) -> None:
    refused = world.counter.page(path)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "Traceback" not in refused.text


def test_signed_out_is_sent_to_the_login_page(app: FastAPI) -> None:
    for path in PAGES:
        answer = TestClient(app, base_url="https://testserver").get(path, follow_redirects=False)
        assert answer.status_code in (303, 401), path


def test_the_card_and_its_pdf_answer_head_without_issuing(family: Family, runtime: Runtime) -> None:
    head = family.holder.user.client.head("/me/card.pdf")
    assert head.status_code == 200
    assert head.headers["content-type"] == "application/pdf"
    head = family.holder.user.client.head("/me")
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/html")
    with runtime.sessions() as session:
        issued = session.scalars(select(AccessEvent).where(AccessEvent.operation == "attestation_issue")).all()
    assert issued == []


def test_a_person_whose_contract_ended_is_told_so(app: FastAPI, runtime: Runtime, world: World) -> None:
    ended = next(r for r in world.members if r.contract_end is not None and r.contract_end < TODAY)
    person = invite_person(app, runtime, world, ended, "ancien@exemple.test")
    card = html.unescape(person.page("/me").text)
    assert "Votre contrat n'est pas en vigueur aujourd'hui" in card
    assert 'id="attestation-qr"' not in card
    assert person.user.client.get("/me/card.pdf").status_code == 404
    rights = html.unescape(person.page("/me/rights").text)
    assert "Non couvert" in rights
    assert "Oui" not in rights  # no domain is shown covered


def test_the_access_log_is_filtered_by_who_accessed(family: Family, world: World) -> None:
    person = family.holder
    assert person.page("/me/rights").status_code == 200
    world.clock.advance(minutes=1)
    _check_rights_at_the_counter(world, person)

    everyone = _rows(person.page("/me/access-log").text)
    assert len(everyone) == 2
    professionals = _rows(person.page("/me/access-log?who=professionals").text)
    assert len(professionals) == 1
    assert "Optique du Port" in professionals[0]
    mine = _rows(person.page("/me/access-log?who=me").text)
    assert len(mine) == 1
    assert "vous-même, dans votre espace" in mine[0]
    page = person.page("/me/access-log?who=insurer").text
    assert _rows(page) == []
    assert "Aucun accès de ce type." in html.unescape(page)
    assert '<option value="insurer" selected>' in page

    refused = person.page("/me/access-log?who=everybody-else")
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("text/html")


def test_a_filtered_page_pages_back_within_its_filter(family: Family, world: World) -> None:
    person = family.holder
    _check_rights_at_the_counter(world, person)
    for _ in range(21):
        world.clock.advance(minutes=1)
        assert person.page("/me/rights").status_code == 200
    first = person.page("/me/access-log?who=me").text
    assert len(_rows(first)) == 20
    assert all("Optique du Port" not in row for row in _rows(first))
    found = re.search(r'href="(/me/access-log\?who=me&amp;cursor=[^"]+)" rel="next"', first)
    assert found
    second = person.page(html.unescape(found.group(1))).text
    assert len(_rows(second)) == 1
    assert 'href="/me/access-log?who=me"' in second
