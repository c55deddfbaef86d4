"""Invariant 1: phishing-resistant login. Passkeys bound to the exact origin and RP id, with user
verification; a phished password or code opens nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from rempart.identity.models import Passkey
from rempart.identity.permissions import Role
from rempart.insurers.service import create_insurer
from rempart.runtime import Runtime
from tests.support.clock import FakeClock
from tests.support.portal import PortalUser, invite
from tests.support.problems import problem_of
from tests.support.routes import api_routes
from tests.support.webauthn import SoftAuthenticator

PROBLEM = "application/problem+json"


@pytest.fixture
def insurer_id(runtime: Runtime) -> Any:
    with runtime.sessions.begin() as session:
        return create_insurer(session=session, keys=runtime.keys, amc_number="12345678", name="Mutuelle A").id


def test_enrolment_then_login_on_the_right_origin(app: FastAPI, runtime: Runtime, insurer_id: Any) -> None:
    agent = PortalUser.invited(
        app, runtime, login="Agent@Mutuelle.test", roles={Role.CLAIMS_AGENT}, insurer_id=insurer_id
    )
    fresh_browser = PortalUser.browser(app, login="agent@mutuelle.test", authenticator=agent.authenticator)

    signed_in = fresh_browser.sign_in()

    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["roles"] == ["claims_agent"]
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    me = fresh_browser.get("/api/v1/me/account")
    assert me.status_code == 200
    assert me.json()["login"] == "agent@mutuelle.test"
    assert me.json()["insurer_id"] == str(insurer_id)


def test_an_assertion_made_on_a_phishing_page_is_refused(app: FastAPI, runtime: Runtime, insurer_id: Any) -> None:
    agent = PortalUser.invited(
        app, runtime, login="agent@mutuelle.test", roles={Role.CLAIMS_AGENT}, insurer_id=insurer_id
    )
    victim = PortalUser.browser(app, login=agent.login, authenticator=agent.authenticator)

    # The look-alike page relays our challenge; the browser writes the page's own origin in
    # clientDataJSON, and the authenticator scopes the key to the RP id the page may claim.
    relayed_origin = victim.sign_in(origin="https://rempart-secure-login.example")
    relayed_rp = victim.client.post("/api/v1/auth/login/options", json={"login": agent.login})
    credential = agent.authenticator.get(
        relayed_rp.json()["publicKey"], origin=victim.origin, rp_id="rempart-secure-login.example"
    )
    with_other_rp = victim.client.post(
        "/api/v1/auth/login/verify", json={"ceremony_id": relayed_rp.json()["ceremony_id"], "credential": credential}
    )

    assert problem_of(relayed_origin, 401, "login-failed") == problem_of(with_other_rp, 401, "login-failed")
    assert "set-cookie" not in relayed_origin.headers
    assert victim.get("/api/v1/me/account").status_code == 401
    # The owner sees that their passkey was refused (a phishing signal for them and the operators).
    refused = [e for e in agent.get("/api/v1/me/security-events").json() if e["kind"] == "login_failed"]
    assert [e["detail"]["reason"] for e in refused] == ["assertion_refused", "assertion_refused"]


def test_a_ceremony_posted_from_another_site_is_refused(app: FastAPI) -> None:
    browser = PortalUser.browser(app)

    cross_site = browser.client.post(
        "/api/v1/auth/login/options", json={"login": "agent@mutuelle.test"}, headers={"Origin": "https://evil.example"}
    )
    same_site = browser.client.post(
        "/api/v1/auth/login/options", json={"login": "agent@mutuelle.test"}, headers={"Origin": browser.origin}
    )

    problem_of(cross_site, 403, "csrf-refused")
    assert same_site.status_code == 200


def test_registration_from_another_origin_is_refused(app: FastAPI, runtime: Runtime, insurer_id: Any) -> None:
    invitation = invite(app, runtime, login="dpo@mutuelle.test", roles={Role.DPO}, insurer_id=insurer_id)
    browser = PortalUser.browser(app, login="dpo@mutuelle.test")

    response = browser.enrol(invitation.token, origin="https://evil.example")

    problem_of(response, 400, "passkey-ceremony-failed")


def test_a_replayed_assertion_is_refused(app: FastAPI, runtime: Runtime, insurer_id: Any) -> None:
    agent = PortalUser.invited(
        app, runtime, login="agent@mutuelle.test", roles={Role.CLAIMS_AGENT}, insurer_id=insurer_id
    )
    started = agent.login_options()
    credential = agent.authenticator.get(started.json()["publicKey"], origin=agent.origin)
    body = {"ceremony_id": started.json()["ceremony_id"], "credential": credential}
    attacker = PortalUser.browser(app)

    first = agent.client.post("/api/v1/auth/login/verify", json=body)
    replayed = attacker.client.post("/api/v1/auth/login/verify", json=body)
    # Even on a fresh ceremony the captured assertion signs the old challenge.
    again = attacker.login_options(agent.login)
    stale = attacker.client.post(
        "/api/v1/auth/login/verify", json={"ceremony_id": again.json()["ceremony_id"], "credential": credential}
    )

    assert first.status_code == 200
    problem_of(replayed, 401, "login-failed")
    problem_of(stale, 401, "login-failed")
    assert attacker.get("/api/v1/me/account").status_code == 401


def test_a_passkey_without_user_verification_is_refused(app: FastAPI, runtime: Runtime, insurer_id: Any) -> None:
    invitation = invite(app, runtime, login="agent@mutuelle.test", roles={Role.CLAIMS_AGENT}, insurer_id=insurer_id)
    browser = PortalUser.browser(
        app, login="agent@mutuelle.test", authenticator=SoftAuthenticator(user_verifying=False)
    )

    problem_of(browser.enrol(invitation.token), 400, "passkey-ceremony-failed")


def test_a_cloned_passkey_is_flagged_disabled_and_the_owner_alerted(
    app: FastAPI, runtime: Runtime, insurer_id: Any
) -> None:
    agent = PortalUser.invited(
        app, runtime, login="agent@mutuelle.test", roles={Role.CLAIMS_AGENT}, insurer_id=insurer_id
    )
    thief = PortalUser.browser(app, login=agent.login, authenticator=agent.authenticator.clone())
    assert agent.sign_in().status_code == 200  # counter 1 on the real key

    cloned = thief.sign_in()  # the copy also says 1
    afterwards = agent.sign_in()

    problem_of(cloned, 401, "login-failed")
    problem_of(afterwards, 401, "login-failed")  # the key is disabled until the owner replaces it
    events = [e["kind"] for e in agent.get("/api/v1/me/security-events").json()]
    assert "passkey_clone_suspected" in events
    assert (agent.account_id, "passkey_clone_suspected") in app.state.identity.notifier.sent
    with runtime.sessions() as session:
        assert session.query(Passkey).one().clone_suspected_at is not None


def test_enrolment_links_work_once_and_expire(
    app: FastAPI, runtime: Runtime, insurer_id: Any, clock: FakeClock
) -> None:
    invitation = invite(app, runtime, login="agent@mutuelle.test", roles={Role.CLAIMS_AGENT}, insurer_id=insurer_id)
    late = invite(app, runtime, login="late@mutuelle.test", roles={Role.CLAIMS_AGENT}, insurer_id=insurer_id)
    first = PortalUser.browser(app, login="agent@mutuelle.test")
    assert first.enrol(invitation.token).status_code == 200

    again = PortalUser.browser(app).client.post("/api/v1/auth/enrolment/options", json={"token": invitation.token})
    clock.advance(days=8)
    expired = PortalUser.browser(app).client.post("/api/v1/auth/enrolment/options", json={"token": late.token})
    forged = PortalUser.browser(app).client.post("/api/v1/auth/enrolment/options", json={"token": "x" * 43})

    body = problem_of(again, 401, "enrolment-refused")
    assert body == problem_of(expired, 401, "enrolment-refused") == problem_of(forged, 401, "enrolment-refused")


def test_several_passkeys_and_removal_needs_a_fresh_passkey_check(
    app: FastAPI, runtime: Runtime, insurer_id: Any, clock: FakeClock
) -> None:
    admin = PortalUser.invited(
        app, runtime, login="admin@mutuelle.test", roles={Role.INSURER_ADMIN}, insurer_id=insurer_id
    )
    phone = SoftAuthenticator()
    started = admin.post("/api/v1/me/passkeys/options")
    assert started.status_code == 200, started.text  # just enrolled: the passkey check is fresh
    added = admin.post(
        "/api/v1/me/passkeys",
        json={
            "ceremony_id": started.json()["ceremony_id"],
            "credential": phone.create(started.json()["publicKey"], origin=admin.origin),
            "name": "Phone",
        },
    )
    assert added.status_code == 201, added.text
    assert len(admin.get("/api/v1/me/passkeys").json()) == 2
    # The phone alone now signs in.
    assert PortalUser.browser(app, login=admin.login, authenticator=phone).sign_in().status_code == 200

    clock.advance(minutes=10)
    keys = admin.get("/api/v1/me/passkeys").json()
    phone_ref = next(k["id"] for k in keys if k["name"] == "Phone")
    laptop_ref = next(k["id"] for k in keys if k["name"] == "Laptop")

    stale = admin.delete(f"/api/v1/me/passkeys/{phone_ref}")
    assert problem_of(stale, 401, "step-up-required")
    assert admin.step_up().status_code == 200
    assert admin.delete(f"/api/v1/me/passkeys/{phone_ref}").status_code == 204
    last = admin.delete(f"/api/v1/me/passkeys/{laptop_ref}")

    problem_of(last, 409, "conflict")
    assert [k["name"] for k in admin.get("/api/v1/me/passkeys").json()] == ["Laptop"]
    kinds = [e["kind"] for e in admin.get("/api/v1/me/security-events").json()]
    assert {"passkey_added", "passkey_removed", "step_up", "login"} <= set(kinds)


def test_no_password_or_code_path_opens_a_session(app: FastAPI, runtime: Runtime, insurer_id: Any) -> None:
    """Invariant 1: whatever a phishing page collects (login, password, TOTP/SMS code, even a
    recovery code) never yields a session that reads personal data."""
    agent = PortalUser.invited(
        app, runtime, login="agent@mutuelle.test", roles={Role.CLAIMS_AGENT}, insurer_id=insurer_id
    )
    codes = agent.post("/api/v1/me/recovery-codes").json()["codes"]
    phisher = PortalUser.browser(app)
    started = phisher.login_options(agent.login)

    attempts = [
        phisher.client.post(
            "/api/v1/auth/login/verify", json={"ceremony_id": started.json()["ceremony_id"], "password": "hunter2"}
        ),
        phisher.client.post(
            "/api/v1/auth/login/verify",
            json={"ceremony_id": started.json()["ceremony_id"], "otp": "123456", "credential": {}},
        ),
        phisher.client.post("/api/v1/auth/login/options", json={"login": agent.login, "password": "hunter2"}),
        phisher.client.post("/login", data={"login": agent.login, "password": "hunter2"}),
        phisher.client.post("/api/v1/auth/recovery", json={"login": agent.login, "code": codes[0]}),
    ]

    assert [a.status_code for a in attempts[:4]] == [422, 422, 422, 405]
    recovery = attempts[4]
    assert recovery.status_code == 200  # a recovery code buys a one-time enrolment link, not a session
    assert "set-cookie" not in recovery.headers
    assert phisher.get("/api/v1/me/account").status_code == 401
    assert phisher.get(f"/api/v1/insurers/{insurer_id}/staff").status_code == 401
    # ...and its use is shown to the owner at once.
    assert "recovery_code_used" in [e["kind"] for e in agent.get("/api/v1/me/security-events").json()]
    assert (agent.account_id, "recovery_code_used") in app.state.identity.notifier.sent
    # No route of the application takes a password, a TOTP or an SMS code.
    routes = api_routes(app)
    assert len(routes) > 20  # the whole application, nested routers included
    for route in routes:
        fields = {p.name.lower() for p in route.dependant.body_params} | {
            p.name.lower() for p in route.dependant.query_params
        }
        for model_field in route.dependant.body_params:
            annotation = getattr(model_field.field_info, "annotation", None)
            fields |= set(getattr(annotation, "model_fields", {}) or {})
        assert not fields & {"password", "passwd", "otp", "totp", "sms_code", "pin"}, route.path


def test_recovery_codes_are_single_use_and_re_enrol_a_passkey(app: FastAPI, runtime: Runtime, insurer_id: Any) -> None:
    agent = PortalUser.invited(
        app, runtime, login="agent@mutuelle.test", roles={Role.CLAIMS_AGENT}, insurer_id=insurer_id
    )
    codes = agent.post("/api/v1/me/recovery-codes").json()["codes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    new_device = PortalUser.browser(app, login=agent.login)

    used = new_device.client.post("/api/v1/auth/recovery", json={"login": agent.login, "code": codes[3].lower()})
    reused = new_device.client.post("/api/v1/auth/recovery", json={"login": agent.login, "code": codes[3]})

    assert used.status_code == 200, used.text
    problem_of(reused, 401, "recovery-failed")
    assert new_device.enrol(used.json()["enrolment_token"], name="New laptop").status_code == 200
    assert (
        PortalUser.browser(app, login=agent.login, authenticator=new_device.authenticator).sign_in().status_code == 200
    )
    with runtime.sessions() as session:
        hashes = [
            row[0] for row in session.execute(__import__("sqlalchemy").text("SELECT code_hash FROM recovery_codes"))
        ]
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert not any(code.replace("-", "")[1:] in h for code in codes for h in hashes)


def test_a_passkey_without_attestation_enrols_too(app: FastAPI, runtime: Runtime, insurer_id: Any) -> None:
    """Most passkeys send "none" attestation; Rempart relies on user verification, not on models."""
    invitation = invite(app, runtime, login="agent@mutuelle.test", roles={Role.CLAIMS_AGENT}, insurer_id=insurer_id)
    browser = PortalUser.browser(app, login="agent@mutuelle.test")
    started = browser.client.post("/api/v1/auth/enrolment/options", json={"token": invitation.token})
    credential = browser.authenticator.create(started.json()["publicKey"], origin=browser.origin, attestation="none")

    done = browser.client.post(
        "/api/v1/auth/enrolment/verify",
        json={"token": invitation.token, "ceremony_id": started.json()["ceremony_id"], "credential": credential},
    )

    assert done.status_code == 200, done.text
    assert (
        PortalUser.browser(app, login="agent@mutuelle.test", authenticator=browser.authenticator).sign_in().status_code
        == 200
    )
