"""The account pages as the person sees them: their account, security events, sessions, passkeys and
recovery codes, in French and in English; each change asked by a form with its CSRF token, redirected
after (the new recovery codes excepted: shown once), refused without the token or a fresh passkey."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx2 as httpx
import pytest

from tests.portal.conftest import World
from tests.support.portal import PortalUser

PAGES = {
    "/account": ("Mon compte", "My account"),
    "/account/security-events": ("Événements de sécurité", "Security events"),
    "/account/sessions": ("Sessions ouvertes", "Open sessions"),
    "/account/passkeys": ("Vos passkeys", "Your passkeys"),
    "/account/recovery-codes": ("Codes de secours", "Recovery codes"),
}
_SESSION_FORM = re.compile(r'action="/account/sessions/([0-9a-f-]{36})/revoke"')
_CODE = re.compile(r"<li><code>([^<]+)</code></li>")


def _api(user: PortalUser, path: str) -> Any:
    response = user.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def _second_browser(world: World) -> PortalUser:
    """The same person signed in on another device (same passkeys)."""
    user = world.counter.user
    other = PortalUser.browser(user.app, login=user.login, authenticator=user.authenticator)
    assert other.sign_in().status_code == 200
    return other


def _add_passkey(user: PortalUser, name: str) -> str:
    started = user.post("/api/v1/me/passkeys/options")
    assert started.status_code == 200, started.text
    credential = user.authenticator.create(started.json()["publicKey"], origin=user.origin)
    added = user.post(
        "/api/v1/me/passkeys",
        json={"ceremony_id": started.json()["ceremony_id"], "credential": credential, "name": name},
    )
    assert added.status_code == 201, added.text
    return str(added.json()["id"])


def _events(user: PortalUser) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = _api(user, "/api/v1/me/security-events")
    return events


def _form(world: World, path: str, data: dict[str, str]) -> httpx.Response:
    """Post a form as the browser does: its fields and the page's ``csrf_token``."""
    user = world.counter.user
    assert user.csrf_token
    return user.client.post(path, data={**data, "csrf_token": user.csrf_token}, follow_redirects=False)


def _assert_refused_page(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text


@pytest.mark.parametrize("path", sorted(PAGES))
def test_each_account_page_speaks_french_then_english(world: World, path: str) -> None:
    french, english = PAGES[path]
    page = world.counter.page(path)
    assert page.status_code == 200, page.text
    assert '<html lang="fr">' in page.text
    assert french in page.text
    assert "style=" not in page.text
    assert not re.search(r"<script(?![^>]*src=\"/static/)", page.text)  # no inline script

    world.counter.user.client.cookies.set("lang", "en")
    page = world.counter.page(path)
    assert page.status_code == 200
    assert '<html lang="en">' in page.text
    assert english in page.text
    assert french not in page.text

    head = world.counter.user.client.head(path)
    assert head.status_code == 200


def test_the_overview_names_the_account_its_roles_and_practice(world: World) -> None:
    page = world.counter.page("/account").text
    assert "optique@port.test" in page
    assert "Administrateur du cabinet" in page
    assert "Professionnel de santé" in page
    assert "Optique du Port" in page
    for link in ("/account/security-events", "/account/sessions", "/account/passkeys", "/account/recovery-codes"):
        assert f'href="{link}"' in page


def test_security_events_are_the_accounts_own_translated_and_dated(world: World) -> None:
    page = world.counter.page("/account/security-events").text
    assert "Première passkey créée (activation)" in page
    # Babel's French date: "7 déc. 2026, 10:30:00" style, Paris time.
    assert re.search(r"\d{1,2} \w+\.? \d{4}", page)

    world.counter.user.client.cookies.set("lang", "en")
    page = world.counter.page("/account/security-events").text
    assert "First passkey created (enrolment)" in page


def test_a_session_is_listed_and_revoked_one_by_one(world: World) -> None:
    other = _second_browser(world)
    page = world.counter.page("/account/sessions").text
    refs = _SESSION_FORM.findall(page)
    assert len(refs) == 2
    assert "Ce navigateur" in page  # the current session is marked
    sessions = _api(world.counter.user, "/api/v1/me/sessions")
    others = [s["id"] for s in sessions if not s["current"]]
    assert len(others) == 1

    done = _form(world, f"/account/sessions/{others[0]}/revoke", {})
    assert done.status_code == 303
    assert done.headers["location"] == "/account/sessions?done=revoked"
    assert other.get("/account", follow_redirects=False).status_code == 303  # signed out: sent to the login page
    page = world.counter.page("/account/sessions?done=revoked")
    assert page.status_code == 200
    assert "La session a été fermée." in page.text
    assert len(_SESSION_FORM.findall(page.text)) == 1
    assert any(e["kind"] == "session_revoked" for e in _events(world.counter.user))

    # An unknown session, or a malformed reference: a readable page, nothing changes.
    _assert_refused_page(_form(world, "/account/sessions/00000000-0000-0000-0000-000000000000/revoke", {}), 404)
    _assert_refused_page(_form(world, "/account/sessions/not-a-session/revoke", {}), 422)
    assert len(_api(world.counter.user, "/api/v1/me/sessions")) == 1


def test_end_other_sessions_keeps_this_one_and_end_all_signs_out(world: World) -> None:
    first, second = _second_browser(world), _second_browser(world)
    done = _form(world, "/account/sessions/revoke-others", {})
    assert done.status_code == 303
    assert first.get("/account", follow_redirects=False).status_code == 303
    assert second.get("/account", follow_redirects=False).status_code == 303
    assert world.counter.page("/account").status_code == 200
    page = world.counter.page("/account/security-events").text
    assert "Autres sessions fermées" in page

    done = _form(world, "/account/sessions/revoke-all", {})
    assert done.status_code == 303
    assert done.headers["location"] == "/login"
    assert world.counter.user.client.get("/account", follow_redirects=False).status_code == 303


def test_revoking_this_browsers_own_session_signs_out(world: World) -> None:
    mine = next(s["id"] for s in _api(world.counter.user, "/api/v1/me/sessions") if s["current"])
    world.counter.page("/account/sessions")
    done = _form(world, f"/account/sessions/{mine}/revoke", {})
    assert done.status_code == 303
    assert done.headers["location"] == "/login"
    assert world.counter.user.client.get("/account", follow_redirects=False).status_code == 303


def test_a_passkey_is_renamed_then_removed(world: World) -> None:
    user = world.counter.user
    second = _add_passkey(user, "Phone")
    page = world.counter.page("/account/passkeys").text
    assert "Phone" in page
    assert "Laptop" in page

    done = _form(world, f"/account/passkeys/{second}/rename", {"name": "  Pixel   du comptoir "})
    assert done.status_code == 303
    assert done.headers["location"] == "/account/passkeys?done=renamed"
    names = {p["id"]: p["name"] for p in _api(user, "/api/v1/me/passkeys")}
    assert names[second] == "Pixel du comptoir"
    assert "La passkey a été renommée." in world.counter.page("/account/passkeys?done=renamed").text
    assert "Passkey renommée" in world.counter.page("/account/security-events").text

    # A blank name is refused on a readable page; nothing changes.
    refused = _form(world, f"/account/passkeys/{second}/rename", {"name": "   "})
    _assert_refused_page(refused, 422)
    assert "Rien n'a été modifié." in refused.text
    assert {p["id"]: p["name"] for p in _api(user, "/api/v1/me/passkeys")}[second] == "Pixel du comptoir"

    # A name is text, never markup; another account's passkey or none at all: "not found".
    assert _form(world, f"/account/passkeys/{second}/rename", {"name": "<b>Pixel</b>"}).status_code == 303
    page = world.counter.page("/account/passkeys").text
    assert "&lt;b&gt;Pixel&lt;/b&gt;" in page
    assert "<b>Pixel</b>" not in page
    _assert_refused_page(_form(world, f"/account/passkeys/{uuid.uuid4()}/rename", {"name": "Mine"}), 404)
    _assert_refused_page(_form(world, f"/account/passkeys/{uuid.uuid4()}/remove", {}), 404)

    done = _form(world, f"/account/passkeys/{second}/remove", {})
    assert done.status_code == 303
    assert [p["id"] for p in _api(user, "/api/v1/me/passkeys")] == [next(iter(names.keys() - {second}))]
    assert "Passkey supprimée" in world.counter.page("/account/security-events").text


def test_the_last_passkey_is_not_removed(world: World) -> None:
    user = world.counter.user
    (only,) = _api(user, "/api/v1/me/passkeys")
    world.counter.page("/account/passkeys")
    refused = _form(world, f"/account/passkeys/{only['id']}/remove", {})
    _assert_refused_page(refused, 409)
    assert "C'est votre dernière passkey" in refused.text
    assert len(_api(user, "/api/v1/me/passkeys")) == 1


def test_new_recovery_codes_are_shown_once_and_replace_the_old_ones(world: World) -> None:
    user = world.counter.user
    old = _api(user, "/api/v1/me/account")  # the API's codes first, to see them replaced
    assert old["login"] == user.login
    old_codes = user.post("/api/v1/me/recovery-codes").json()["codes"]

    page = world.counter.page("/account/recovery-codes").text
    assert "Faire de nouveaux codes de secours" in page
    shown = _form(world, "/account/recovery-codes", {})
    assert shown.status_code == 200
    assert "no-store" in shown.headers["cache-control"]
    new_codes = _CODE.findall(shown.text)
    assert len(new_codes) >= 8
    assert not set(new_codes) & set(old_codes)
    assert "Je les ai conservés, continuer" in shown.text
    again = world.counter.page("/account/recovery-codes").text
    assert not any(code in again for code in new_codes)  # shown this once

    stranger = PortalUser.browser(user.app)
    assert stranger.post("/api/v1/auth/recovery", json={"login": user.login, "code": old_codes[0]}).status_code >= 400
    spent = stranger.post("/api/v1/auth/recovery", json={"login": user.login, "code": new_codes[0]})
    assert spent.status_code == 200, spent.text


def test_sensitive_changes_send_to_the_step_up_page_then_work(world: World) -> None:
    user = world.counter.user
    second = _add_passkey(user, "Phone")
    world.clock.advance(minutes=6)  # the passkey check is no longer recent; the session still lives

    page = world.counter.page("/account/passkeys").text
    assert 'href="/step-up?next=%2Faccount%2Fpasskeys"' in page
    for path, data in (
        (f"/account/passkeys/{second}/rename", {"name": "Other"}),
        (f"/account/passkeys/{second}/remove", {}),
    ):
        sent = _form(world, path, data)
        assert sent.status_code == 303
        assert sent.headers["location"] == "/step-up?next=%2Faccount%2Fpasskeys"
    assert len(_api(user, "/api/v1/me/passkeys")) == 2
    sent = _form(world, "/account/recovery-codes", {})
    assert sent.headers["location"] == "/step-up?next=%2Faccount%2Frecovery-codes"
    assert 'href="/step-up?next=%2Faccount%2Frecovery-codes"' in world.counter.page("/account/recovery-codes").text
    refused = user.post("/api/v1/me/passkeys/options")  # the script's cue to go to the step-up page
    assert refused.status_code == 401
    assert refused.json()["type"].endswith("/step-up-required")

    step_up = world.counter.page("/step-up?next=/account/passkeys")
    assert step_up.status_code == 200
    assert 'data-next="/account/passkeys"' in step_up.text
    assert 'data-ceremony="step-up"' in step_up.text
    assert world.counter.page("/step-up?next=https://evil.test/").text.count('data-next="/"') == 1

    assert user.step_up().status_code == 200
    world.counter.page("/account/passkeys")
    assert _form(world, f"/account/passkeys/{second}/rename", {"name": "Other"}).status_code == 303
    assert {p["name"] for p in _api(user, "/api/v1/me/passkeys")} == {"Laptop", "Other"}


def test_forms_without_their_csrf_token_are_refused_and_change_nothing(world: World) -> None:
    user = world.counter.user
    second = _add_passkey(user, "Phone")
    other = _second_browser(world)
    other_ref = next(s["id"] for s in _api(user, "/api/v1/me/sessions") if not s["current"])
    before = len(_events(user))
    for path, data in (
        (f"/account/sessions/{other_ref}/revoke", {}),
        ("/account/sessions/revoke-others", {}),
        ("/account/sessions/revoke-all", {}),
        (f"/account/passkeys/{second}/rename", {"name": "Stolen"}),
        (f"/account/passkeys/{second}/remove", {}),
        ("/account/recovery-codes", {}),
    ):
        for token in (None, "forged"):
            fields = dict(data, **({"csrf_token": token} if token else {}))
            refused = user.client.post(path, data=fields, follow_redirects=False)
            _assert_refused_page(refused, 403)
            assert "Rien n'a été modifié" in refused.text
    assert len(_events(user)) == before
    assert {p["name"] for p in _api(user, "/api/v1/me/passkeys")} == {"Laptop", "Phone"}
    assert len(_api(user, "/api/v1/me/sessions")) == 2
    assert other.get("/account", follow_redirects=False).status_code == 200
