"""A CSRF token that is not ASCII (a header's Latin-1 bytes, a form field's accented letters) is a
stale token like any other: 403 csrf-refused, not a 500 from comparing it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI

from rempart.identity.deps import FORM_CSRF, AnyCaller, requires
from rempart.identity.permissions import Permission, Role
from rempart.insurers.service import create_insurer
from rempart.runtime import Runtime
from tests.support.portal import PortalUser


@pytest.fixture
def agent(app: FastAPI, runtime: Runtime) -> PortalUser:
    with runtime.sessions.begin() as session:
        insurer_id = create_insurer(session=session, keys=runtime.keys, amc_number="12345678", name="Mutuelle A").id
    return PortalUser.invited(
        app, runtime, login="agent@mutuelle.test", roles={Role.CLAIMS_AGENT}, insurer_id=insurer_id
    )


def _refused(response: Any) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/csrf-refused"


def test_a_csrf_header_that_is_not_ascii_is_refused_like_a_stale_one(agent: PortalUser) -> None:
    response = agent.client.post("/api/v1/me/sessions/revoke-all", headers=[(b"X-CSRF-Token", "jeton-périmé".encode())])

    _refused(response)
    assert agent.get("/api/v1/me/account").status_code == 200  # nothing was revoked


def test_a_csrf_form_field_that_is_not_ascii_is_refused_like_a_stale_one(agent: PortalUser, app: FastAPI) -> None:
    forms = APIRouter()

    @forms.post("/test-form", dependencies=[FORM_CSRF, requires(Permission.ACCOUNT_SELF_MANAGE)])
    def submit(caller: AnyCaller) -> dict[str, str]:
        return {"account": str(caller.account_id)}

    app.include_router(forms)

    # A portal form: the refusal is the readable page, with the problem's status and reference.
    page = agent.client.post("/test-form", data={"csrf_token": "jeton-périmé"})
    assert page.status_code == 403
    assert page.headers["content-type"].startswith("text/html")
    assert "403 csrf-refused" in page.text
    assert agent.client.post("/test-form", data={"csrf_token": agent.csrf_token or ""}).status_code == 200
