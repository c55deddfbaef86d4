"""The practice admin's pages: colleagues and invitations, the billing software's clients and keys,
the practice's security events and containment state, as a practice admin reads and uses them."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from joserfc.jwk import ECKey
from sqlalchemy import func, select

from rempart.detection import explain
from rempart.detection.models import ContainmentLevel, KillSwitchScope, SubjectKind
from rempart.detection.service import record_step, set_kill_switch
from rempart.identity.accounts import suspend_account
from rempart.identity.deps import read_form_csrf
from rempart.identity.models import Account, ApiClient, ApiClientKey, SecurityEvent
from rempart.identity.permissions import Role
from rempart.professionals.models import Professional
from rempart.runtime import Runtime
from rempart.web import i18n
from tests.portal.conftest import World
from tests.support.portal import PortalUser, invite
from tests.support.practice_client import make_rpps
from tests.support.routes import Route, api_routes

_ENROL_LINK = re.compile(r'value="(https?://[^"]+/enrol#[^"]+)"')


def public_jwk() -> tuple[dict[str, Any], ECKey]:
    key = ECKey.generate_key("P-256", private=True)
    return dict(key.as_dict(private=False)), key


def send(world: World, path: str, data: dict[str, str]) -> Any:
    """Post a form as the browser does: its fields and the page's ``csrf_token`` (a mapping, which
    the test client sends without a deprecation warning)."""
    token = world.counter.user.csrf_token or ""
    return world.counter.user.client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)


def main_of(page: str) -> str:
    """The page's own content, without the layout (whose CSRF token is random text)."""
    return page.split('<main id="main"', 1)[1].split("</main>", 1)[0]


def english(world: World) -> None:
    world.counter.user.client.cookies.set("lang", "en")


def event_count(runtime: Runtime, practice_id: uuid.UUID) -> int:
    with runtime.sessions() as session:
        return (
            session.scalar(
                select(func.count()).select_from(SecurityEvent).where(SecurityEvent.practice_id == practice_id)
            )
            or 0
        )


def register_software(world: World, name: str = "Caisse atelier") -> tuple[uuid.UUID, str]:
    jwk, key = public_jwk()
    world.counter.page("/practice/clients/new")
    answer = send(world, "/practice/clients/new", {"name": name, "public_jwk": json.dumps(jwk)})
    assert answer.status_code == 303, answer.text
    client_id = uuid.UUID(answer.headers["location"].rsplit("#client-", 1)[1])
    return client_id, key.thumbprint()


# -- the practice and its colleagues ---------------------------------------------------------------


def test_the_overview_lists_the_practice_s_professionals_and_accounts_in_french(world: World) -> None:
    page = world.counter.page("/practice")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="fr">' in page.text
    assert "Optique du Port" in page.text
    assert world.counter.practice.rpps in page.text
    assert "optique@port.test" in page.text
    assert "Administrateur du cabinet" in page.text
    assert "Confrères et consœurs" in page.text
    assert 'href="/practice/security"' in page.text
    assert "Aucune invitation en attente." in page.text


def test_the_overview_reads_in_english_on_request(world: World) -> None:
    english(world)
    page = world.counter.page("/practice")

    assert '<html lang="en">' in page.text
    assert "Colleagues" in page.text
    assert "Practice administrator" in page.text
    assert "No invitation is waiting." in page.text


def test_inviting_a_colleague_shows_the_enrolment_link_once_and_the_link_works(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    rpps = world.counter.practice.add_professional()
    world.counter.page("/practice/invite")
    answer = send(world, "/practice/invite", {"login": "Collegue@Port.test", "rpps": rpps})

    assert answer.status_code == 201, answer.text
    assert "collegue@port.test" in answer.text
    link = _ENROL_LINK.search(answer.text)
    assert link is not None, answer.text
    token = link.group(1).split("#", 1)[1]
    assert "une seule fois" in answer.text

    overview = world.counter.page("/practice")
    assert "collegue@port.test" in overview.text
    assert "Invitations en attente" in overview.text
    assert token not in overview.text  # the link is shown once, on the answer to the form only
    assert token not in world.counter.page("/practice/security").text

    # Sending the form again (a reload) creates nothing and shows no link.
    again = send(world, "/practice/invite", {"login": "collegue@port.test", "rpps": rpps})
    assert again.status_code == 422
    assert "/enrol#" not in again.text

    colleague = PortalUser.browser(app, login="collegue@port.test")
    assert colleague.enrol(token).status_code == 200
    english(world)
    events = world.counter.page("/practice/security").text
    assert "Colleague invited" in events
    assert "Account collegue@port.test" in events


@pytest.mark.parametrize(
    ("fields", "invalid"),
    [
        ({"login": "not-an-address", "rpps": "valid"}, {"login"}),
        ({"login": "a@port.test", "rpps": "12345678901"}, {"rpps"}),  # a bad check digit
        ({"login": "", "rpps": ""}, {"login", "rpps"}),
        ({"login": "b@port.test", "rpps": "unknown"}, {"rpps"}),  # valid, but not of this practice
        ({"login": "optique@port.test", "rpps": "valid"}, {"login"}),  # taken
    ],
)
def test_an_invitation_with_bad_fields_comes_back_marked_and_writes_nothing(
    runtime: Runtime, world: World, fields: dict[str, str], invalid: set[str]
) -> None:
    colleague_rpps = world.counter.practice.add_professional()
    values = {
        "login": fields["login"],
        "rpps": {"valid": colleague_rpps, "unknown": make_rpps()}.get(fields["rpps"], fields["rpps"]),
    }
    before = event_count(runtime, world.counter.practice.practice_id)
    world.counter.page("/practice/invite")

    answer = send(world, "/practice/invite", values)

    assert answer.status_code == 422
    for name in ("login", "rpps"):
        marked = f'aria-invalid="true" aria-describedby="{name}-error' in answer.text
        assert marked == (name in invalid), (name, answer.text)
        assert (f'id="{name}-error"' in answer.text) == (name in invalid)
    assert "/enrol#" not in answer.text
    assert event_count(runtime, world.counter.practice.practice_id) == before
    with runtime.sessions() as session:
        logins = set(session.scalars(select(Account.login)))
    assert logins.isdisjoint({"a@port.test", "b@port.test", "not-an-address"})


# -- billing software: clients and keys ------------------------------------------------------------


def test_a_software_s_whole_life_shows_on_its_page_and_in_the_practice_s_security_events(
    runtime: Runtime, world: World
) -> None:
    english(world)
    client_id, first_kid = register_software(world)

    page = world.counter.page("/practice/clients?done=client-created")
    assert "Caisse atelier" in page.text
    assert first_kid in page.text
    assert "The software was registered with its public key." in page.text

    jwk, second = public_jwk()
    world.counter.page(f"/practice/clients/{client_id}/keys/new")
    added = send(world, f"/practice/clients/{client_id}/keys/new", {"public_jwk": json.dumps(jwk)})
    assert added.status_code == 303
    assert added.headers["location"] == f"/practice/clients?done=key-added#client-{client_id}"
    assert second.thumbprint() in world.counter.page("/practice/clients").text

    confirm = world.counter.page(f"/practice/clients/{client_id}/keys/{first_kid}/revoke")
    assert confirm.status_code == 200
    assert "refused at once" in confirm.text
    revoked = send(world, f"/practice/clients/{client_id}/keys/{first_kid}/revoke", {})
    assert revoked.status_code == 303
    with runtime.sessions() as session:
        key = session.get(ApiClientKey, (client_id, first_kid))
        assert key is not None
        assert key.status.value == "revoked"

    assert "cannot be undone" in world.counter.page(f"/practice/clients/{client_id}/revoke").text
    gone = send(world, f"/practice/clients/{client_id}/revoke", {})
    assert gone.status_code == 303
    page = world.counter.page("/practice/clients")
    section = page.text.split(f'id="client-{client_id}"', 1)[1]
    assert "Revoked" in section
    assert "Add a public key" not in section.split("</section>", 1)[0]
    with runtime.sessions() as session:
        client = session.get(ApiClient, client_id)
        assert client is not None
        assert client.status.value == "revoked"

    events = world.counter.page("/practice/security").text
    for what in ("Billing software registered", "Public key added", "Public key revoked", "Billing software revoked"):
        assert what in events
    assert first_kid in events
    assert second.thumbprint() in events
    assert "Billing software “Caisse atelier”" in events


def test_no_page_shows_a_private_key_and_one_pasted_by_mistake_is_not_kept(runtime: Runtime, world: World) -> None:
    key = ECKey.generate_key("P-256", private=True)
    private = dict(key.as_dict(private=True))
    before = event_count(runtime, world.counter.practice.practice_id)
    world.counter.page("/practice/clients/new")

    answer = send(world, "/practice/clients/new", {"name": "Fuite", "public_jwk": json.dumps(private)})

    assert answer.status_code == 422
    assert private["d"] not in answer.text
    assert 'aria-invalid="true" aria-describedby="public_jwk-error' in answer.text
    assert "clé privée" in answer.text
    assert event_count(runtime, world.counter.practice.practice_id) == before
    with runtime.sessions() as session:
        assert session.scalar(select(ApiClient.id).where(ApiClient.name == "Fuite")) is None
    listing = world.counter.page("/practice/clients")
    assert "Fuite" not in listing.text
    assert '"d"' not in listing.text


@pytest.mark.parametrize(
    ("name", "jwk", "invalid"),
    [
        ("Caisse", "not json", "public_jwk"),
        ("Caisse", "[1, 2]", "public_jwk"),
        ("Caisse", '{"kty": "EC", "crv": "P-256", "x": "abc", "y": "def"}', "public_jwk"),
        ("Caisse", '{"kty": "oct", "k": "c2VjcmV0"}', "public_jwk"),
        ("", "valid", "name"),
        ("x" * 101, "valid", "name"),
        ("Caisse", "", "public_jwk"),
    ],
)
def test_a_software_with_a_bad_key_or_name_comes_back_marked_and_writes_nothing(
    runtime: Runtime, world: World, name: str, jwk: str, invalid: str
) -> None:
    good, _ = public_jwk()
    before = event_count(runtime, world.counter.practice.practice_id)
    world.counter.page("/practice/clients/new")

    answer = send(
        world, "/practice/clients/new", {"name": name, "public_jwk": json.dumps(good) if jwk == "valid" else jwk}
    )

    assert answer.status_code == 422
    assert f'aria-invalid="true" aria-describedby="{invalid}-error' in answer.text
    assert answer.text.count('aria-invalid="true"') == 1
    assert event_count(runtime, world.counter.practice.practice_id) == before
    with runtime.sessions() as session:
        # Only the practice's own billing software, registered by the test's setup.
        assert session.scalar(select(func.count()).select_from(ApiClient)) == 1


def test_a_key_already_registered_is_refused_on_the_form(runtime: Runtime, world: World) -> None:
    client_id, _kid = register_software(world)
    # The practice software's own key is registered already (to another client).
    with runtime.sessions() as session:
        taken = session.scalars(
            select(ApiClientKey.public_jwk).where(ApiClientKey.client_id == world.counter.practice.client_id)
        ).one()
    world.counter.page(f"/practice/clients/{client_id}/keys/new")

    answer = send(world, f"/practice/clients/{client_id}/keys/new", {"public_jwk": taken})

    assert answer.status_code == 422
    assert 'id="public_jwk-error"' in answer.text


def test_another_practice_s_software_answers_not_found(app: FastAPI, runtime: Runtime, world: World) -> None:
    from tests.support.practice_client import PracticeClient

    other = PracticeClient.register(app, runtime, practice_name="Pharmacie de la Gare")

    for path in (f"/practice/clients/{other.client_id}/revoke", f"/practice/clients/{other.client_id}/keys/new"):
        page = world.counter.page(path)
        assert page.status_code == 404
        assert "Pharmacie de la Gare" not in page.text
    refused = send(world, f"/practice/clients/{other.client_id}/revoke", {})
    assert refused.status_code == 404
    with runtime.sessions() as session:
        client = session.get(ApiClient, other.client_id)
        assert client is not None
        assert client.status.value == "active"


def test_granting_access_needs_a_fresh_passkey_check(runtime: Runtime, world: World) -> None:
    world.counter.page("/practice/clients")
    world.clock.advance(minutes=6)
    jwk, _ = public_jwk()

    form = world.counter.page("/practice/clients/new")
    posted = send(world, "/practice/clients/new", {"name": "Tard", "public_jwk": json.dumps(jwk)})

    assert form.status_code == 200
    assert 'href="/step-up?next=/practice/clients/new"' in form.text
    assert posted.status_code == 401
    assert 'href="/step-up?next=' in posted.text
    with runtime.sessions() as session:
        assert session.scalar(select(ApiClient.id).where(ApiClient.name == "Tard")) is None
    # Revoking never waits for a passkey check.
    assert world.counter.page(f"/practice/clients/{world.counter.practice.client_id}/revoke").status_code == 200


# -- who may see these pages -----------------------------------------------------------------------


def test_a_professional_who_is_not_the_practice_admin_gets_the_refusal_page(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    practice = world.counter.practice
    plain = PortalUser.invited(
        app,
        runtime,
        login="salarie@port.test",
        roles={Role.PROFESSIONAL},
        practice_id=practice.practice_id,
        professional_id=practice.professional_id,
    )
    home = plain.get("/")
    token = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
    assert token is not None
    before = event_count(runtime, practice.practice_id)

    for path in ("/practice", "/practice/invite", "/practice/clients", "/practice/clients/new", "/practice/security"):
        page = plain.get(path)
        assert page.status_code == 403, path
        assert page.headers["content-type"].startswith("text/html")
        assert "Votre rôle ne le permet pas" in page.text
        assert practice.rpps not in page.text
    jwk, _ = public_jwk()
    refused = plain.client.post(
        "/practice/clients/new", data={"name": "Intrus", "public_jwk": json.dumps(jwk), "csrf_token": token.group(1)}
    )
    assert refused.status_code == 403
    refused = plain.client.post(
        "/practice/invite", data={"login": "x@port.test", "rpps": practice.rpps, "csrf_token": token.group(1)}
    )
    assert refused.status_code == 403
    refused = plain.client.post(f"/practice/clients/{practice.client_id}/revoke", data={"csrf_token": token.group(1)})
    assert refused.status_code == 403
    assert event_count(runtime, practice.practice_id) == before
    with runtime.sessions() as session:
        client = session.get(ApiClient, practice.client_id)
        assert client is not None
        assert client.status.value == "active"


def test_every_form_without_its_token_is_refused_and_changes_nothing(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    client_id, kid = register_software(world)
    rpps = world.counter.practice.add_professional()
    jwk, _ = public_jwk()
    before = event_count(runtime, world.counter.practice.practice_id)
    forms = {
        "/practice/invite": {"login": "sans-jeton@port.test", "rpps": rpps},
        "/practice/clients/new": {"name": "Sans jeton", "public_jwk": json.dumps(jwk)},
        f"/practice/clients/{client_id}/keys/new": {"public_jwk": json.dumps(jwk)},
        f"/practice/clients/{client_id}/keys/{kid}/revoke": {},
        f"/practice/clients/{client_id}/revoke": {},
    }
    posted = {route.path for route in _practice_forms(app)}
    assert posted == {re.sub(r"/[0-9a-f-]{36}", "/{client_id}", p).replace(kid, "{kid}") for p in forms}

    for path, fields in forms.items():
        for token in (None, "forged"):
            data = dict(fields) | ({"csrf_token": token} if token else {})
            answer = world.counter.user.client.post(path, data=data, follow_redirects=False)
            assert answer.status_code == 403, (path, answer.text)
            assert "jeton de sécurité" in answer.text

    assert event_count(runtime, world.counter.practice.practice_id) == before
    with runtime.sessions() as session:
        key = session.get(ApiClientKey, (client_id, kid))
        client = session.get(ApiClient, client_id)
        assert key is not None
        assert client is not None
        assert (key.status.value, client.status.value) == ("active", "active")
        keys = select(func.count()).select_from(ApiClientKey).where(ApiClientKey.client_id == client_id)
        assert session.scalar(keys) == 1
        assert session.scalar(select(Account.id).where(Account.login == "sans-jeton@port.test")) is None


def _practice_forms(app: FastAPI) -> list[Route]:
    return [route for route in api_routes(app) if route.path.startswith("/practice") and "POST" in route.methods]


def test_every_form_of_the_practice_pages_reads_its_csrf_token_first(app: FastAPI) -> None:
    forms = _practice_forms(app)
    assert len(forms) == 5
    for route in forms:
        assert route.dependant.dependencies[0].call is read_form_csrf, route.path


# -- security events and containment ---------------------------------------------------------------


def test_the_security_page_says_nothing_is_contained_when_nothing_is(world: World) -> None:
    page = world.counter.page("/practice/security")

    assert page.status_code == 200
    assert "fonctionnent normalement" in page.text


def test_the_containment_of_the_practice_shows_in_words_with_its_end_and_what_to_do(
    runtime: Runtime, world: World
) -> None:
    practice = world.counter.practice
    now = world.clock()
    with runtime.sessions.begin() as session:
        record_step(
            session,
            kind=SubjectKind.PRACTICE,
            subject_id=practice.practice_id,
            practice_id=practice.practice_id,
            level=ContainmentLevel.STEP_UP,
            until=now + timedelta(minutes=30),
            signal="distinct_1h",
            detail={"value": 61, "threshold": 60},
            now=now,
        )
        record_step(
            session,
            kind=SubjectKind.CLIENT,
            subject_id=practice.client_id,
            practice_id=practice.practice_id,
            level=ContainmentLevel.SUSPENDED,
            until=None,
            signal="misses_1h",
            detail={"value": 41, "threshold": 40},
            now=now,
        )
        record_step(  # over already: not shown
            session,
            kind=SubjectKind.PROFESSIONAL,
            subject_id=practice.professional_id,
            practice_id=practice.practice_id,
            level=ContainmentLevel.SLOW,
            until=now - timedelta(minutes=1),
            signal="off_hours",
            detail={},
            now=now - timedelta(minutes=10),
        )

    french = world.counter.page("/practice/security").text
    english(world)
    page = world.counter.page("/practice/security").text

    assert "The whole practice — Passkey check required" in page
    with i18n.speaking("en"):
        assert f"until {i18n.moment(now + timedelta(minutes=30), 'short')}" in page
    assert explain.for_practice("distinct_1h") in page
    assert "Billing software “Logiciel de facturation” — Suspended" in page
    assert "until the security team lifts it" in page
    assert explain.for_practice("misses_1h") in page
    assert "Slowed down" not in page
    assert "Le cabinet entier" in french
    assert "Vérification par passkey requise" in french
    for leak in ("distinct_1h", "misses_1h", "off_hours", "61", "41", "threshold"):
        assert leak not in main_of(page)
        assert leak not in main_of(french)


def test_a_kill_switch_on_the_practice_shows_and_says_care_goes_on(runtime: Runtime, world: World) -> None:
    with runtime.sessions.begin() as session:
        set_kill_switch(
            session=session,
            scope=KillSwitchScope.PRACTICE,
            target=str(world.counter.practice.practice_id),
            reason="phished account under review",
            operator_id=uuid.uuid4(),
            now=world.clock(),
        )
    english(world)

    page = world.counter.page("/practice/security").text

    assert "Rights checks are switched off for your practice." in page
    assert "signed attestation" in page
    assert "phished" not in page  # the operator's own words stay theirs


def test_when_detection_contains_the_practice_s_software_its_admin_reads_it(app: FastAPI, world: World) -> None:
    software = world.counter.practice
    patient = world.patients()[0]
    answers = []
    for n in range(60):
        fields: dict[str, object] = dict(world.card_fields(patient))
        fields["member_number"] = f"09{n:08d}"
        fields["birth_rank"] = patient.birth_rank
        answer = software.post("/api/v1/rights-checks", json=fields)
        answers.append(answer.status_code)
        if answer.status_code not in (404, 200):
            break
    assert answers[-1] in (403, 429), answers
    app.state.detection.drain()
    english(world)

    page = world.counter.page("/practice/security").text

    assert "Slowed down" in page or "Passkey check required" in page or "— Suspended" in page
    assert explain.for_practice("misses") in page or explain.for_practice("locked") in page
    assert "misses_" not in page
    assert "locked_" not in page


def test_every_sentence_detection_tells_a_practice_reads_in_french() -> None:
    french = i18n.translations("fr")
    for family in explain._WHAT:  # every sentence explain can write
        sentence = explain.for_practice(f"{family}_1h")
        assert french.gettext(sentence) != sentence, family
    assert french.gettext(explain.for_practice("unknown")) != explain.for_practice("unknown")


def test_the_professionals_of_another_practice_are_not_listed(app: FastAPI, runtime: Runtime, world: World) -> None:
    from tests.support.practice_client import PracticeClient

    other = PracticeClient.register(app, runtime, practice_name="Pharmacie de la Gare")
    with runtime.sessions() as session:
        assert session.scalar(select(Professional.id).where(Professional.rpps == other.rpps)) is not None

    page = world.counter.page("/practice").text

    assert other.rpps not in page
    assert world.counter.practice.rpps in page


def test_an_account_suspended_by_an_operator_shows_without_the_operator_s_words(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    practice = world.counter.practice
    invitation = invite(
        app,
        runtime,
        login="remplacant@port.test",
        roles={Role.PROFESSIONAL},
        practice_id=practice.practice_id,
        professional_id=practice.professional_id,
    )
    with runtime.sessions.begin() as session:
        suspend_account(
            session=session, account_id=invitation.account.id, now=world.clock(), reason="stolen laptop reported"
        )
    english(world)

    page = world.counter.page("/practice/security").text

    assert "Account remplacant@port.test — Suspended" in page
    assert "Until the security team lifts it." in page
    assert "stolen laptop" not in page


def test_a_colleague_may_be_invited_as_a_practice_admin_too(world: World) -> None:
    rpps = world.counter.practice.add_professional()
    world.counter.page("/practice/invite")

    answer = send(world, "/practice/invite", {"login": "adjointe@port.test", "rpps": rpps, "practice_admin": "yes"})

    assert answer.status_code == 201
    english(world)
    pending = world.counter.page("/practice").text.split('id="invitations"', 1)[1]
    assert "adjointe@port.test" in pending
    assert "Practice administrator, Professional" in pending


def test_the_practice_pages_answer_head_as_get(world: World) -> None:
    for path in ("/practice", "/practice/clients", "/practice/security", "/practice/invite", "/practice/clients/new"):
        answer = world.counter.user.client.head(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.content == b""
