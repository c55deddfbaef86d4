"""The professional's care pages: prior approvals, claims and remittances, as a person at the
counter uses them (forms with the page's CSRF token and the idempotency key the page made), in
French and English. Every page these tests read is also searched here for the members' identities."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import timedelta
from typing import Any

import httpx2 as httpx
from babel.messages.pofile import read_po
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from rempart.approvals.models import ApprovalReason, PriorApproval
from rempart.approvals.pages import REASON_WORDS as APPROVAL_REASON_WORDS
from rempart.claims.models import Claim, ClaimReason, ClaimStatus
from rempart.claims.pages import REASON_WORDS as CLAIM_REASON_WORDS
from rempart.claims.pages import STATUS_WORDS as CLAIM_STATUS_WORDS
from rempart.identity.permissions import Role
from rempart.runtime import Runtime
from rempart.web import i18n
from tests.e2e.scan import identities_in
from tests.factories import TODAY
from tests.portal.conftest import World, open_counter
from tests.support.portal import PortalUser

FRAMES = {
    "care_domain": "OPTI",
    "care_date": TODAY.isoformat(),
    "act_code_1": "2210546",
    "quantity_1": "1",
    "unit_price_1": "250,00",
    "brss_1": "0.05",
    "amo_rate_1": "60",
    "sante_100_class_1": "B",
}
_KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')
_ALLOWED_DATES = {TODAY + timedelta(days=k) for k in range(-30, 400)}


def no_identity(world: World, response: httpx.Response) -> httpx.Response:
    found = identities_in(response.content, world.members, allowed_dates=_ALLOWED_DATES)
    assert not found, f"{response.request.method} {response.request.url.path} shows {found}"
    return response


def page(world: World, path: str) -> httpx.Response:
    return no_identity(world, world.counter.page(path))


def send(world: World, path: str, data: dict[str, str], *, csrf: bool = True) -> httpx.Response:
    """Post a form as the browser does, with the page's ``csrf_token``; redirects are not followed."""
    fields = {"csrf_token": world.counter.user.csrf_token or "", **data} if csrf else dict(data)
    return no_identity(world, world.counter.user.client.post(path, data=fields, follow_redirects=False))


def new_check(world: World, index: int = 0) -> str:
    """A rights check of a covered patient, made by the same practice's software."""
    card = world.card_fields(world.patients()[index])
    response = world.counter.practice.post(
        "/api/v1/rights-checks",
        json={k: card[k] for k in ("amc_number", "member_number", "nir", "birth_date")},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["check_id"])


def key_of(html: str) -> str:
    found = _KEY.search(html)
    assert found, "the form carries its idempotency key"
    return found.group(1)


def target(response: httpx.Response, kind: str) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert re.fullmatch(rf"/{kind}/[0-9a-f-]{{36}}", location), location
    return location.rsplit("/", 1)[1]


def ask_approval(world: World, check: str) -> str:
    form = page(world, f"/approvals/new?check={check}")
    assert form.status_code == 200, form.text
    assert f'value="{check}"' in form.text
    return target(
        send(world, "/approvals", {**FRAMES, "check_id": check, "idempotency_key": key_of(form.text)}), "approvals"
    )


def claim_form_from(world: World, approval_id: str) -> dict[str, str]:
    """The fields of the claim form filled from an approval, as the browser would send them."""
    form = page(world, f"/claims/new?approval={approval_id}")
    assert form.status_code == 200, form.text
    fields = dict(re.findall(r'<input type="[a-z]+" (?:id="[^"]*" )?name="([^"]+)" value="([^"]*)"', form.text))
    for name, options in re.findall(r'<select id="([^"]+)"[^>]*>(.*?)</select>', form.text, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options)
        fields[name] = chosen.group(1) if chosen else ""
    fields.pop("csrf_token", None)
    return fields


def claims_in_database(runtime: Runtime, world: World) -> int:
    with runtime.sessions() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Claim).where(Claim.practice_id == world.counter.practice.practice_id)
            )
            or 0
        )


def english(world: World) -> None:
    world.counter.user.client.cookies.set(i18n.LANG_COOKIE, "en")


# -- prior approvals -------------------------------------------------------------------------------


def test_an_optician_asks_for_a_prior_approval_reads_it_and_cancels_it(world: World) -> None:
    approval_id = ask_approval(world, new_check(world))
    granted = world.counter.practice.get(f"/api/v1/prior-approvals/{approval_id}").json()

    detail = page(world, f"/approvals/{approval_id}")
    assert detail.status_code == 200
    assert "Accordé" in detail.text
    assert "2210546" in detail.text
    assert granted["approval_number"] in detail.text
    assert i18n_euros(granted["granted_cents"]) in detail.text
    assert "Reste à charge" in detail.text
    assert "Part complémentaire" in detail.text
    assert f"/claims/new?approval={approval_id}" in detail.text

    listed = page(world, "/approvals")
    assert listed.status_code == 200
    assert f"/approvals/{approval_id}" in listed.text
    assert "Optique" in listed.text
    assert "Accordé" in listed.text

    cancelled = send(world, f"/approvals/{approval_id}/cancel", {})
    assert cancelled.headers["location"] == f"/approvals/{approval_id}"
    after = page(world, f"/approvals/{approval_id}")
    assert "Annulé" in after.text
    assert f"/approvals/{approval_id}/cancel" not in after.text  # nothing left to cancel
    assert send(world, f"/approvals/{approval_id}/cancel", {}).status_code == 303  # twice is harmless
    assert world.counter.practice.get(f"/api/v1/prior-approvals/{approval_id}").json()["status"] == "cancelled"


def test_an_unused_approval_past_its_expiry_shows_as_expired(world: World) -> None:
    approval_id = ask_approval(world, new_check(world))
    assert "Expiré" not in page(world, "/approvals").text

    world.clock.advance(days=200)  # optical approvals last 180 days
    assert world.counter.user.sign_in().status_code == 200  # the session did not last that long
    listed = page(world, "/approvals")
    assert f"/approvals/{approval_id}" in listed.text
    assert '<span class="badge bad">Expiré</span>' in listed.text
    detail = page(world, f"/approvals/{approval_id}")
    assert "Expiré" in detail.text
    assert f"/claims/new?approval={approval_id}" not in detail.text  # it would only be rejected


def i18n_euros(cents: int, language: str = "fr") -> str:
    with i18n.speaking(language):
        return i18n.euros(cents)


def test_the_approval_form_sent_twice_asks_once(runtime: Runtime, world: World) -> None:
    check = new_check(world)
    form = page(world, f"/approvals/new?check={check}")
    fields = {**FRAMES, "check_id": check, "idempotency_key": key_of(form.text)}
    first, second = (
        target(send(world, "/approvals", fields), "approvals"),
        target(send(world, "/approvals", fields), "approvals"),
    )
    assert first == second
    with runtime.sessions() as session:
        count = session.scalar(
            select(func.count())
            .select_from(PriorApproval)
            .where(PriorApproval.practice_id == world.counter.practice.practice_id)
        )
    assert count == 1
    assert page(world, "/approvals").text.count("/approvals/" + first) == 1


# -- claims ----------------------------------------------------------------------------------------


def test_a_claim_from_an_approval_is_filled_in_and_accepted(world: World) -> None:
    approval_id = ask_approval(world, new_check(world))
    number = world.counter.practice.get(f"/api/v1/prior-approvals/{approval_id}").json()["approval_number"]
    fields = claim_form_from(world, approval_id)
    assert fields["approval_number"] == number
    assert (fields["act_code_1"], fields["unit_price_1"], fields["brss_1"]) == ("2210546", "250,00", "0,05")
    assert fields["care_domain"] == "OPTI"
    assert fields["sante_100_class_1"] == "B"

    claim_id = target(send(world, "/claims", fields), "claims")
    detail = page(world, f"/claims/{claim_id}")
    assert detail.status_code == 200
    assert "Acceptée" in detail.text
    assert f"/approvals/{approval_id}" in detail.text
    billed = world.counter.practice.get(f"/api/v1/claims/{claim_id}").json()
    assert billed["status"] == "accepted"
    assert i18n_euros(billed["insurer_cents"]) in detail.text
    assert "Utilisé par une facture" in page(world, f"/approvals/{approval_id}").text


def test_a_claim_from_a_check_without_its_approval_is_rejected_and_says_why(world: World) -> None:
    check = new_check(world)
    form = page(world, f"/claims/new?check={check}")
    assert form.status_code == 200
    assert f'value="{check}"' in form.text
    claim_id = target(
        send(world, "/claims", {**FRAMES, "check_id": check, "idempotency_key": key_of(form.text)}), "claims"
    )

    detail = page(world, f"/claims/{claim_id}")
    assert "Rejetée" in detail.text
    assert "Motif de rejet" in detail.text
    assert "demandent un accord préalable" in detail.text
    assert "approval-missing" in detail.text

    english(world)
    detail = page(world, f"/claims/{claim_id}")
    assert "Rejected" in detail.text
    assert "This care needs a prior approval from the insurer" in detail.text
    listed = page(world, "/claims")
    assert f"/claims/{claim_id}" in listed.text
    assert "Rejected" in listed.text


def test_the_same_claim_form_sent_twice_bills_once(runtime: Runtime, world: World) -> None:
    approval_id = ask_approval(world, new_check(world))
    fields = claim_form_from(world, approval_id)

    first = target(send(world, "/claims", fields), "claims")
    second = target(send(world, "/claims", fields), "claims")  # a double click, or the browser's resend
    assert second == first
    assert page(world, f"/claims/{first}").status_code == 200  # a reload of the answer only reads
    assert claims_in_database(runtime, world) == 1
    listed = page(world, "/claims")
    assert listed.text.count(f'href="/claims/{first}"') == 1
    assert [c["claim_id"] for c in world.counter.practice.get("/api/v1/claims").json()["claims"]] == [first]
    # The same claim: accepted, not a duplicate rejected by the second submission.
    assert world.counter.practice.get(f"/api/v1/claims/{first}").json()["status"] == "accepted"


def test_the_same_claim_form_sent_from_two_threads_at_once_bills_once(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    approval_id = ask_approval(world, new_check(world))
    fields = {"csrf_token": world.counter.user.csrf_token or "", **claim_form_from(world, approval_id)}
    user = world.counter.user
    browsers = [
        TestClient(app, base_url=user.origin, raise_server_exceptions=False, cookies=dict(user.client.cookies))
        for _ in range(2)
    ]
    start = threading.Barrier(len(browsers))
    answers: list[httpx.Response] = []

    def submit(browser: TestClient) -> None:
        start.wait()
        answers.append(browser.post("/claims", data=fields, follow_redirects=False))

    threads = [threading.Thread(target=submit, args=(browser,)) for browser in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 2
    landed = {target(no_identity(world, answer), "claims") for answer in answers}
    assert len(landed) == 1
    assert claims_in_database(runtime, world) == 1
    (claim_id,) = landed
    assert world.counter.practice.get(f"/api/v1/claims/{claim_id}").json()["status"] == "accepted"


def test_a_form_with_bad_fields_is_shown_again_with_its_errors_and_writes_nothing(
    runtime: Runtime, world: World
) -> None:
    check = new_check(world)
    form = page(world, f"/claims/new?check={check}")
    key = key_of(form.text)
    answer = send(
        world,
        "/claims",
        {**FRAMES, "check_id": check, "idempotency_key": key, "unit_price_1": "250,5x", "amo_rate_1": "160"},
    )
    assert answer.status_code == 422
    assert 'id="unit_price_1" name="unit_price_1" value="250,5x"' in answer.text
    assert re.search(r'name="unit_price_1"[^>]*aria-invalid="true" aria-describedby="unit_price_1-error"', answer.text)
    assert 'id="unit_price_1-error"' in answer.text
    assert "Saisissez un montant en euros" in answer.text
    assert 'id="amo_rate_1-error"' in answer.text
    assert key_of(answer.text) == key  # nothing was written: the same form may go again
    assert claims_in_database(runtime, world) == 0

    unknown = send(world, "/claims", {**FRAMES, "check_id": str(uuid.uuid4()), "idempotency_key": key})
    assert unknown.status_code == 422
    assert "Aucun contrôle des droits de votre cabinet ne porte cette référence." in unknown.text
    empty = send(world, "/approvals", {"care_domain": "OPTI", "check_id": check, "idempotency_key": key})
    assert empty.status_code == 422
    assert 'id="act_code_1-error"' in empty.text
    assert claims_in_database(runtime, world) == 0

    # Corrected, the same form goes through, amounts typed either way.
    fixed = send(world, "/claims", {**FRAMES, "check_id": check, "idempotency_key": key, "unit_price_1": "250.00"})
    target(fixed, "claims")
    assert claims_in_database(runtime, world) == 1


def test_every_reason_code_is_explained_in_french_and_english() -> None:
    with open_care_po() as po:
        catalogue = {m.id: m.string for m in read_po(po) if m.id}
    assert set(CLAIM_REASON_WORDS) == set(ClaimReason)
    assert set(APPROVAL_REASON_WORDS) == set(ApprovalReason)
    assert set(CLAIM_STATUS_WORDS) == set(ClaimStatus)
    for words in [*CLAIM_REASON_WORDS.values(), *APPROVAL_REASON_WORDS.values()]:
        assert catalogue.get(words), f"no French for {words!r}"
        assert catalogue[words] != words


def open_care_po() -> Any:
    from importlib import resources

    return resources.files("rempart").joinpath("web", "locale", "fr", "LC_MESSAGES", "care.po").open("rb")


# -- remittances -----------------------------------------------------------------------------------


def test_the_remittance_after_a_payment_run_lists_the_claim(app: FastAPI, runtime: Runtime, world: World) -> None:
    approval_id = ask_approval(world, new_check(world))
    claim_id = target(send(world, "/claims", claim_form_from(world, approval_id)), "claims")
    assert page(world, "/remittances").status_code == 200

    admin = PortalUser.invited(
        app, runtime, login="admin@remparts.test", roles={Role.INSURER_ADMIN}, insurer_id=world.insurer.id
    )
    run = admin.post(f"/api/v1/insurers/{world.insurer.id}/payment-runs", json={"cutoff_date": TODAY.isoformat()})
    assert run.status_code == 201, run.text
    paid = run.json()["total_cents"]
    assert run.json()["claim_count"] == 1

    listed = page(world, "/remittances")
    assert world.insurer.amc_number in listed.text
    assert i18n_euros(paid) in listed.text
    remittance_id = re.findall(r'href="/remittances/([0-9a-f-]{36})"', listed.text)[0]
    detail = page(world, f"/remittances/{remittance_id}")
    assert detail.status_code == 200
    assert f'href="/claims/{claim_id}"' in detail.text
    assert "Bordereau de paiement" in detail.text
    assert "Payée" in page(world, f"/claims/{claim_id}").text

    english(world)
    assert "Remittance" in page(world, f"/remittances/{remittance_id}").text
    assert i18n_euros(paid, "en") in page(world, "/remittances").text


# -- walls -----------------------------------------------------------------------------------------


def test_another_practice_gets_the_not_found_page_for_these_ids(app: FastAPI, runtime: Runtime, world: World) -> None:
    check = new_check(world)
    approval_id = ask_approval(world, check)
    number = world.counter.practice.get(f"/api/v1/prior-approvals/{approval_id}").json()["approval_number"]
    claim_id = target(send(world, "/claims", claim_form_from(world, approval_id)), "claims")
    admin = PortalUser.invited(
        app, runtime, login="admin@remparts.test", roles={Role.INSURER_ADMIN}, insurer_id=world.insurer.id
    )
    assert (
        admin.post(
            f"/api/v1/insurers/{world.insurer.id}/payment-runs", json={"cutoff_date": TODAY.isoformat()}
        ).status_code
        == 201
    )
    remittance_id = re.findall(r'href="/remittances/([0-9a-f-]{36})"', page(world, "/remittances").text)[0]

    stranger = open_counter(app, runtime, login="autre@optique.test")
    for path in (
        f"/approvals/{approval_id}",
        f"/claims/{claim_id}",
        f"/remittances/{remittance_id}",
        f"/claims/new?approval={approval_id}",
    ):
        seen = stranger.page(path)
        assert seen.status_code == 404, path
        assert seen.headers["content-type"].startswith("text/html")
        assert "existe pas" in seen.text
        assert number not in seen.text
        assert "2210546" not in seen.text
    for path in ("/approvals", "/claims", "/remittances"):
        seen = stranger.page(path)
        assert seen.status_code == 200
        assert approval_id not in seen.text
        assert claim_id not in seen.text
        assert remittance_id not in seen.text
    cancel = stranger.user.client.post(
        f"/approvals/{approval_id}/cancel",
        data={"csrf_token": stranger.user.csrf_token or ""},
        follow_redirects=False,
    )
    assert cancel.status_code == 404
    # The stranger's form quoting our check finds no check: nothing billed.
    form = stranger.page(f"/claims/new?check={check}")
    foreign = stranger.user.client.post(
        "/claims",
        data={
            "csrf_token": stranger.user.csrf_token or "",
            **FRAMES,
            "check_id": check,
            "idempotency_key": key_of(form.text),
        },
        follow_redirects=False,
    )
    assert foreign.status_code == 422
    assert world.counter.practice.get(f"/api/v1/prior-approvals/{approval_id}").json()["status"] == "granted"


def test_a_form_without_its_csrf_token_is_refused_and_writes_nothing(runtime: Runtime, world: World) -> None:
    check = new_check(world)
    approval_id = ask_approval(world, check)
    fields = claim_form_from(world, approval_id)

    for path, data in (
        ("/claims", fields),
        ("/approvals", {**FRAMES, "check_id": check, "idempotency_key": str(uuid.uuid4())}),
        (f"/approvals/{approval_id}/cancel", {}),
    ):
        refused = send(world, path, data, csrf=False)
        assert refused.status_code == 403, path
        assert refused.headers["content-type"].startswith("text/html")
        assert "Rien n'a été modifié" in refused.text or "Nothing was changed" in refused.text
        forged = send(world, path, {**data, "csrf_token": "forged"}, csrf=False)
        assert forged.status_code == 403, path

    assert claims_in_database(runtime, world) == 0
    approvals = world.counter.practice.get(f"/api/v1/prior-approvals/{approval_id}").json()
    assert approvals["status"] == "granted"
    assert f"/approvals/{approval_id}" in page(world, "/approvals").text
    assert re.findall(r'href="/approvals/([0-9a-f-]{36})"', page(world, "/approvals").text) == [approval_id]


def test_the_pages_in_english(world: World) -> None:
    english(world)
    approval_id = ask_approval(world, new_check(world))
    detail = page(world, f"/approvals/{approval_id}")
    assert "Granted" in detail.text
    assert "Patient's remainder" in detail.text
    form = page(world, f"/claims/new?approval={approval_id}")
    assert "Bill the insurer" in form.text
    assert 'value="250.00"' in form.text  # amounts written back as an English speaker types them
    assert "100 % Santé class" in form.text
    assert "Prior approvals" in page(world, "/approvals").text
    assert "No insurer has paid your practice" in page(world, "/remittances").text
