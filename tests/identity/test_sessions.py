"""Invariant 3: server-side sessions, rotated, timed out, revocable; CSRF on every change."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import select

from rempart.app import create_app
from rempart.config import Settings
from rempart.identity.context import IdentityServices
from rempart.identity.deps import FORM_CSRF, AnyCaller, requires
from rempart.identity.models import AccountSession
from rempart.identity.permissions import Permission, Role
from rempart.insurers.service import create_insurer
from rempart.runtime import Runtime
from tests.support.clock import FakeClock
from tests.support.portal import PortalUser


@pytest.fixture
def insurer_id(runtime: Runtime) -> Any:
    with runtime.sessions.begin() as session:
        return create_insurer(session=session, keys=runtime.keys, amc_number="12345678", name="Mutuelle A").id


@pytest.fixture
def agent(app: FastAPI, runtime: Runtime, insurer_id: Any) -> PortalUser:
    return PortalUser.invited(
        app, runtime, login="agent@mutuelle.test", roles={Role.CLAIMS_AGENT}, insurer_id=insurer_id
    )


def _cookie(user: PortalUser) -> str:
    return next(iter(user.client.cookies.values()))


def test_the_database_holds_only_hashes_of_random_256_bit_session_ids(agent: PortalUser, runtime: Runtime) -> None:
    token = _cookie(agent)
    with runtime.sessions() as session:
        rows = session.scalars(select(AccountSession)).all()

    assert len(token) >= 43  # 32 random bytes, base64url
    assert all(token.encode() not in row.id_hash and len(row.id_hash) == 32 for row in rows)


def test_idle_timeout_is_15_minutes_and_activity_extends_it(agent: PortalUser, clock: FakeClock) -> None:
    clock.advance(minutes=14)
    assert agent.get("/api/v1/me/account").status_code == 200  # activity moves the idle clock
    clock.advance(minutes=14)
    assert agent.get("/api/v1/me/account").status_code == 200
    clock.advance(minutes=15)
    assert agent.get("/api/v1/me/account").status_code == 401


def test_absolute_timeout_is_12_hours_even_with_activity(agent: PortalUser, clock: FakeClock) -> None:
    for _ in range(47):  # 11 h 45 of steady activity
        clock.advance(minutes=15, seconds=-1)
        assert agent.get("/api/v1/me/account").status_code == 200
    clock.advance(minutes=16)
    assert agent.get("/api/v1/me/account").status_code == 401


def test_login_rotates_the_session_id(agent: PortalUser) -> None:
    before = _cookie(agent)
    assert agent.sign_in().status_code == 200
    after = _cookie(agent)
    stale = PortalUser.browser(agent.app)
    stale.client.cookies.set("rempart_session", before)

    assert before != after
    assert stale.get("/api/v1/me/account").status_code == 401
    assert agent.get("/api/v1/me/account").status_code == 200


def test_step_up_rotates_the_session_id_and_csrf_token(agent: PortalUser) -> None:
    before, csrf_before = _cookie(agent), agent.csrf_token
    assert agent.step_up().status_code == 200
    stale = PortalUser.browser(agent.app)
    stale.client.cookies.set("rempart_session", before)

    assert _cookie(agent) != before
    assert agent.csrf_token != csrf_before
    assert stale.get("/api/v1/me/account").status_code == 401
    assert agent.get("/api/v1/me/account").status_code == 200


def test_sessions_can_be_listed_and_revoked_one_by_one_or_all(agent: PortalUser, app: FastAPI) -> None:
    laptop = PortalUser.browser(app, login=agent.login, authenticator=agent.authenticator)
    assert laptop.sign_in().status_code == 200
    sessions = agent.get("/api/v1/me/sessions").json()
    assert len(sessions) == 2
    other = next(s for s in sessions if not s["current"])

    assert agent.delete(f"/api/v1/me/sessions/{other['id']}").status_code == 204
    assert laptop.get("/api/v1/me/account").status_code == 401
    assert agent.get("/api/v1/me/account").status_code == 200
    assert agent.delete(f"/api/v1/me/sessions/{uuid.uuid4()}").status_code == 404

    assert laptop.sign_in().status_code == 200
    assert agent.post("/api/v1/me/sessions/revoke-all").json() == {"revoked": 2}
    assert laptop.get("/api/v1/me/account").status_code == 401
    assert agent.get("/api/v1/me/account").status_code == 401
    assert laptop.sign_in().status_code == 200
    kinds = {e["kind"] for e in laptop.get("/api/v1/me/security-events").json()}
    assert {"session_revoked", "all_sessions_revoked"} <= kinds


def test_state_changes_need_the_csrf_token_and_our_origin(agent: PortalUser) -> None:
    missing = agent.client.post("/api/v1/me/sessions/revoke-all")
    wrong = agent.client.post("/api/v1/me/sessions/revoke-all", headers={"X-CSRF-Token": "forged"})
    cross_site = agent.client.post(
        "/api/v1/me/sessions/revoke-all",
        headers={"X-CSRF-Token": agent.csrf_token or "", "Origin": "https://evil.example"},
    )

    for response in (missing, wrong, cross_site):
        assert response.status_code == 403
        assert response.json()["type"].endswith("/csrf-refused")
    assert agent.get("/api/v1/me/account").status_code == 200  # nothing was revoked


def test_logout_ends_the_session(agent: PortalUser) -> None:
    token = _cookie(agent)
    assert agent.post("/api/v1/auth/logout").status_code == 204
    replay = PortalUser.browser(agent.app)
    replay.client.cookies.set("rempart_session", token)

    assert replay.get("/api/v1/me/account").status_code == 401


def test_containment_suspends_the_account_and_ends_its_sessions_at_once(
    agent: PortalUser, app: FastAPI, runtime: Runtime
) -> None:
    operator = PortalUser.invited(app, runtime, login="soc@rempart.test", roles={Role.SECURITY_OPERATOR})

    done = operator.post(f"/api/v1/security/accounts/{agent.account_id}/suspend", json={"reason": "bulk_access"})

    assert done.status_code == 204, done.text
    assert agent.get("/api/v1/me/account").status_code == 401
    assert agent.sign_in().status_code == 401
    seen = operator.get("/api/v1/security/events", params={"account_id": str(agent.account_id)}).json()
    assert "account_suspended" in [e["kind"] for e in seen]
    # The suspended account cannot look at the console's view, and nobody else's events are its.
    assert agent.get("/api/v1/security/events").status_code == 401


def test_security_events_are_shown_to_their_owner_and_to_operators_only(
    agent: PortalUser, app: FastAPI, runtime: Runtime, insurer_id: Any
) -> None:
    colleague = PortalUser.invited(app, runtime, login="dpo@mutuelle.test", roles={Role.DPO}, insurer_id=insurer_id)
    operator = PortalUser.invited(app, runtime, login="soc@rempart.test", roles={Role.SECURITY_OPERATOR})

    own = colleague.get("/api/v1/me/security-events").json()
    forbidden = colleague.get("/api/v1/security/events", params={"account_id": str(agent.account_id)})
    for_operator = operator.get("/api/v1/security/events", params={"account_id": str(agent.account_id)}).json()

    assert {e["account_id"] for e in own} == {str(colleague.account_id)}
    assert forbidden.status_code == 403
    assert {e["kind"] for e in for_operator} >= {"account_invited", "passkey_added", "login", "new_device"}
    assert {e["account_id"] for e in for_operator} == {str(agent.account_id)}


def test_cookies_are_secure_on_https(runtime: Runtime, settings: Settings, insurer_id: Any, clock: FakeClock) -> None:
    https = settings.model_copy(update={"public_origin": "https://rempart.example", "rp_id": "rempart.example"})
    app = create_app(runtime)
    app.state.identity = IdentityServices.build(https, clock=clock, prefix=f"t{uuid.uuid4().hex}")

    user = PortalUser.invited(
        app, runtime, login="agent@mutuelle.test", roles={Role.CLAIMS_AGENT}, insurer_id=insurer_id
    )
    signed_in = user.sign_in()

    cookie = signed_in.headers["set-cookie"]
    assert cookie.startswith("__Host-rempart_session=")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "Path=/" in cookie
    assert "strict" in cookie.lower()


def test_html_forms_carry_the_csrf_token_in_a_field(agent: PortalUser, app: FastAPI) -> None:
    forms = APIRouter()

    @forms.post("/test-form", dependencies=[FORM_CSRF, requires(Permission.ACCOUNT_SELF_MANAGE)])
    def submit(caller: AnyCaller) -> dict[str, str]:
        return {"account": str(caller.account_id)}

    app.include_router(forms)

    with_field = agent.client.post("/test-form", data={"csrf_token": agent.csrf_token or ""})
    without = agent.client.post("/test-form", data={"other": "x"})
    forged = agent.client.post("/test-form", data={"csrf_token": "forged"})

    assert with_field.status_code == 200
    assert with_field.json() == {"account": str(agent.account_id)}
    assert without.status_code == forged.status_code == 403
