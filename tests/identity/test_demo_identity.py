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


def test_the_demo_runs_again_on_its_own_database(app: FastAPI, runtime: Runtime) -> None:
    """``make demo`` twice: the second run keeps the practices and accounts of the first, gives the
    billing software new working credentials and fresh links to accounts still waiting for a
    passkey, and says which ones are already enrolled."""
    make_insurer(runtime)
    first: dict[str, Any] = {}
    contribute(runtime, first)
    agent_link = next(link for link in first["enrolment_links"] if link["roles"] == "claims_agent")
    agent = PortalUser.browser(app, login=agent_link["login"])
    assert agent.enrol(agent_link["url"].split("#", 1)[1]).status_code == 200

    again: dict[str, Any] = {}
    contribute(runtime, again)

    before, after = first["practice_software"][0], again["practice_software"][0]
    assert (after["finess"], after["rpps"]) == (before["finess"], before["rpps"])  # the same pharmacy
    assert after["client_id"] != before["client_id"]
    practice = PracticeClient.from_credentials(
        app, runtime, client_id=after["client_id"], private_jwk=after["private_jwk"], rpps=after["rpps"]
    )
    assert practice.get("/api/v1/auth/whoami").status_code == 200
    links = {link["login"]: link for link in again["enrolment_links"]}
    assert len(links) == len(first["enrolment_links"])
    assert links[agent_link["login"]]["url"] == ""
    assert "already enrolled" in links[agent_link["login"]]["note"]
    dpo = next(link for link in again["enrolment_links"] if link["roles"] == "dpo")
    assert dpo["url"] not in {link["url"] for link in first["enrolment_links"]}
    assert PortalUser.browser(app, login=dpo["login"]).enrol(dpo["url"].split("#", 1)[1]).status_code == 200
