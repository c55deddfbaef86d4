"""The real page and script in Chromium, with a virtual WebAuthn authenticator (DevTools): a staff
member enrols through the one-time link and is shown their recovery codes once, signs in with the
passkey alone, adds a second passkey, confirms a step-up, and recovers with a code from the login page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI

from rempart.identity.permissions import Role
from rempart.insurers.service import create_insurer
from rempart.runtime import Runtime
from tests.support.browser import ARTEFACTS, CHROMIUM, Tab, needs_chromium, portal_server
from tests.support.clock import FakeClock
from tests.support.portal import invite

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture
def live(runtime: Runtime) -> Iterator[tuple[FastAPI, str]]:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("the browser journey runs once, on SQLite")
    with portal_server(runtime, FakeClock(datetime.now(UTC))) as served:
        yield served


def test_enrol_then_sign_in_with_a_passkey_in_chromium(live: tuple[FastAPI, str], runtime: Runtime) -> None:
    from playwright.sync_api import sync_playwright  # only browser tests need it

    app, origin = live
    with runtime.sessions.begin() as session:
        insurer = create_insurer(session=session, keys=runtime.keys, amc_number="12345678", name="Mutuelle A")
    invitation = invite(app, runtime, login="agent@mutuelle.test", roles={Role.CLAIMS_AGENT}, insurer_id=insurer.id)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()  # its authenticators are added and removed below
            devtools = page.context.new_cdp_session(page)
            devtools.send("WebAuthn.enable")

            def new_device() -> str:
                """A virtual authenticator: a device of the person's, holding its own passkeys."""
                added = devtools.send(
                    "WebAuthn.addVirtualAuthenticator",
                    {
                        "options": {
                            "protocol": "ctap2",
                            "transport": "internal",
                            "hasResidentKey": True,
                            "hasUserVerification": True,
                            "isUserVerified": True,
                            "automaticPresenceSimulation": True,
                        }
                    },
                )
                return str(added["authenticatorId"])

            def drop_device(authenticator_id: str) -> None:
                devtools.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator_id})

            laptop = new_device()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            page.goto(invitation.url(origin))
            page.click("#enrol-form button")
            page.wait_for_selector("#recovery-codes li", timeout=15_000)  # the codes, shown once
            page.wait_for_selector("body[data-signed-in]", state="attached")
            assert "enrol#" not in page.url  # the spent link is dropped from the address bar
            codes = page.locator("#recovery-codes code").all_inner_texts()
            assert len(codes) >= 8
            assert page.locator("#enrol-form").count() == 0  # the spent link's form is gone
            tab = Tab(page=page, origin=origin, folder=ARTEFACTS / "account")
            tab.look("enrol-recovery-codes")
            page.click("#recovery-continue")
            page.wait_for_url(origin + "/")

            page.context.clear_cookies()
            page.goto(origin + "/login?next=/account")
            page.fill("#login", "agent@mutuelle.test")
            page.click("#login-form button")
            page.wait_for_url(origin + "/account", timeout=15_000)
            me = page.request.get(origin + "/api/v1/me/account").json()  # with the browser's cookies
            assert me["login"] == "agent@mutuelle.test"
            assert me["roles"] == ["claims_agent"]

            # A second passkey, on another device (an authenticator refuses a second passkey of
            # the same account), from the account's page (the passkey was just used: no step-up).
            drop_device(laptop)
            phone = new_device()
            page.goto(origin + "/account/passkeys")
            page.fill("#new-passkey-name", "Second")
            page.click("#add-passkey-form button")
            page.wait_for_url(origin + "/account/passkeys?done=added", timeout=15_000)
            assert page.locator("tbody tr").count() == 2

            # Every account page: photographed, and no serious or critical axe-core violation.
            for path in (
                "/account",
                "/account/security-events",
                "/account/sessions",
                "/account/passkeys",
                "/account/recovery-codes",
                "/step-up?next=/account",
            ):
                tab.goto(path)
                tab.look("account" + path.split("?")[0].replace("/", "-").removeprefix("-account"))
            assert not {name: found for name, found in tab.violations.items() if found}

            # Step-up: confirm with the passkey, then back where the person was going.
            page.goto(origin + "/step-up?next=/account/sessions")
            page.click("#step-up-form button")
            page.wait_for_url(origin + "/account/sessions", timeout=15_000)

            # Lost passkeys: a recovery code from the login page opens the enrolment of a new one,
            # which ends with new recovery codes. The script speaks the page's language.
            drop_device(phone)  # every passkey lost; a new device
            new_device()
            page.context.clear_cookies()
            page.context.add_cookies([{"name": "lang", "value": "en", "url": origin}])
            page.goto(origin + "/login")
            page.click("details summary")
            page.fill("#recovery-login", "agent@mutuelle.test")
            page.fill("#recovery-code", "not-a-code")
            page.click("#recovery-form button")
            page.wait_for_selector("#status.bad", timeout=15_000)
            assert page.inner_text("#status").startswith("Code refused")
            page.fill("#recovery-code", codes[0])
            page.click("#recovery-form button")
            page.wait_for_url(lambda url: url.startswith(origin + "/enrol#"), timeout=15_000)
            page.click("#enrol-form button")
            page.wait_for_selector("#recovery-codes li", timeout=15_000)
            assert not set(page.locator("#recovery-codes code").all_inner_texts()) & set(codes)
            assert not [e for e in errors if "Content Security Policy" in e]
        finally:
            browser.close()
