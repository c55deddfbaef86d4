"""The real page and script in Chromium, with a virtual WebAuthn authenticator (DevTools): a staff
member enrols through the one-time link, then signs in with the passkey alone."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from rempart.app import create_app
from rempart.identity.context import IdentityServices
from rempart.identity.permissions import Role
from rempart.insurers.service import create_insurer
from rempart.runtime import Runtime
from tests.support.portal import invite

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(runtime: Runtime) -> Iterator[tuple[FastAPI, str]]:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("the browser journey runs once, on SQLite")
    port = _free_port()
    origin = f"http://localhost:{port}"  # browsers allow passkeys on http only for localhost
    app = create_app(runtime)
    settings = runtime.settings.model_copy(update={"public_origin": origin, "rp_id": "localhost"})
    app.state.identity = IdentityServices.build(settings, prefix=f"t{uuid.uuid4().hex}")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield app, origin
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_enrol_then_sign_in_with_a_passkey_in_chromium(live: tuple[FastAPI, str], runtime: Runtime) -> None:
    from playwright.sync_api import sync_playwright  # only browser tests need it

    app, origin = live
    with runtime.sessions.begin() as session:
        insurer = create_insurer(session=session, keys=runtime.keys, amc_number="12345678", name="Mutuelle A")
    invitation = invite(app, runtime, login="agent@mutuelle.test", roles={Role.CLAIMS_AGENT}, insurer_id=insurer.id)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            devtools = page.context.new_cdp_session(page)
            devtools.send("WebAuthn.enable")
            devtools.send(
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
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            page.goto(invitation.url(origin))
            page.click("#enrol-form button")
            page.wait_for_selector("body[data-signed-in]", state="attached", timeout=15_000)
            assert "enrol#" not in page.url  # the spent link is dropped from the address bar

            page.context.clear_cookies()
            page.goto(origin + "/login")
            page.fill("#login", "agent@mutuelle.test")
            page.click("#login-form button")
            page.wait_for_selector("body[data-signed-in]", state="attached", timeout=15_000)
            me = page.request.get(origin + "/api/v1/me/account").json()  # with the browser's cookies
            assert me["login"] == "agent@mutuelle.test"
            assert me["roles"] == ["claims_agent"]
            assert not [e for e in errors if "Content Security Policy" in e]
        finally:
            browser.close()
