"""The demo's practice-software credentials and enrolment links work as written in demo.json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from rempart.identity.demo import contribute
from rempart.runtime import Runtime
from tests.factories import make_insurer
from tests.support.portal import PortalUser
from tests.support.practice_client import PracticeClient


def test_demo_credentials_get_a_token_and_links_enrol(app: FastAPI, runtime: Runtime) -> None:
    make_insurer(runtime)
    doc: dict[str, Any] = {}
    contribute(runtime, doc)

    software = doc["practice_software"][0]
    practice = PracticeClient.from_credentials(
        app, runtime, client_id=software["client_id"], private_jwk=software["private_jwk"], rpps=software["rpps"]
    )
    assert practice.get("/api/v1/auth/whoami").json()["rpps"] == software["rpps"]
    roles = {link["roles"] for link in doc["enrolment_links"]}
    assert {"platform_admin", "security_operator", "insurer_admin", "claims_agent", "dpo"} <= roles
    link = next(link for link in doc["enrolment_links"] if link["roles"] == "claims_agent")
    agent = PortalUser.browser(app, login=link["login"])
    assert agent.enrol(link["url"].split("#", 1)[1]).status_code == 200
