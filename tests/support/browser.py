"""A real browser on a real server: the app served by uvicorn on 127.0.0.1, Debian's Chromium
driven by Playwright with a virtual WebAuthn authenticator (DevTools), axe-core run in pages, and
screenshots kept as test artefacts (``var/artefacts/portal/<tab name>``, or under ``$REMPART_ARTEFACTS``).

    with live_server(app) as origin, chromium() as browser:
        tab = Tab.open(browser, origin)
        tab.goto("/login")
        tab.check_accessibility("login")
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from rempart.app import create_app
from rempart.detection.engine import DetectionEngine
from rempart.identity.context import IdentityServices
from rempart.runtime import Runtime
from tests.support.clock import FakeClock

CHROMIUM = Path("/usr/bin/chromium")
ARTEFACTS = Path(os.environ.get("REMPART_ARTEFACTS", "var/artefacts")) / "portal"
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(app: FastAPI, port: int) -> Iterator[str]:
    """``app`` served on 127.0.0.1:``port`` in a thread; yields the origin browsers use
    (``localhost``: browsers allow passkeys on plain http only there)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the test server did not start"
    try:
        yield f"http://localhost:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class _DetectionClock:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def now(self) -> datetime:
        return self.clock()


@contextmanager
def portal_server(runtime: Runtime, clock: FakeClock) -> Iterator[tuple[FastAPI, str]]:
    """The app on a free port, its sessions, passkey checks and detection on ``clock``, its
    counters in a namespace of their own; yields the app and the origin browsers use."""
    port = free_port()
    origin = f"http://localhost:{port}"
    app = create_app(runtime)
    settings = runtime.settings.model_copy(update={"public_origin": origin, "rp_id": "localhost"})
    prefix = f"t{uuid.uuid4().hex}"
    app.state.identity = IdentityServices.build(settings, clock=clock, prefix=prefix)
    app.state.detection = DetectionEngine.build(runtime, clock=_DetectionClock(clock), prefix=prefix)
    try:
        with live_server(app, port) as live:
            yield app, live
    finally:
        app.state.detection.close()


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright  # only browser tests need it

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Tab:
    """One browser tab with its own passkey authenticator, console and accessibility record."""

    page: Any
    origin: str
    console_errors: list[str] = field(default_factory=list)
    violations: dict[str, list[str]] = field(default_factory=dict)
    shots: list[Path] = field(default_factory=list)
    folder: Path = ARTEFACTS

    @classmethod
    def open(cls, browser: Any, origin: str, *, name: str = "tab") -> Tab:
        page = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR").new_page()
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
        tab = cls(page=page, origin=origin, folder=ARTEFACTS / name)
        page.on("console", lambda m: tab.console_errors.append(m.text) if m.type == "error" else None)
        page.set_default_timeout(15_000)
        return tab

    def goto(self, path: str) -> Any:
        return self.page.goto(path if path.startswith("http") else self.origin + path)

    def shot(self, name: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{len(self.shots) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    def check_accessibility(self, name: str) -> list[str]:
        """axe-core in the page as it stands: the serious and critical violations, kept by name."""
        from axe_playwright_python.sync_playwright import Axe

        results = Axe().run(self.page)
        found = [
            f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"]
            if v.get("impact") in {"serious", "critical"}
        ]
        self.violations[name] = found
        return found

    def look(self, name: str) -> None:
        """A screenshot and an accessibility check of the page as it stands."""
        self.shot(name)
        self.check_accessibility(name)

    def text(self) -> str:
        return str(self.page.inner_text("body"))
