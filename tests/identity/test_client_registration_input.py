"""What a practice admin types or pastes when registering software, and what anyone names their
passkey: bad values are a 422 naming the field (a 404 for a key id no key can have), on SQLite as
on PostgreSQL, which cannot store or even compare a NUL in text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from joserfc.jwk import ECKey

from rempart.identity.permissions import Role
from rempart.runtime import Runtime
from tests.support.portal import PortalUser, invite
from tests.support.practice_client import PracticeClient
from tests.support.problems import problem_of

PROBLEM = "application/problem+json"
WHOAMI = "/api/v1/auth/whoami"


@pytest.fixture
def practice_admin(app: FastAPI, runtime: Runtime, practice: PracticeClient) -> PortalUser:
    return PortalUser.invited(
        app,
        runtime,
        login="titulaire@pharmacie.test",
        roles={Role.PRACTICE_ADMIN, Role.PROFESSIONAL},
        practice_id=practice.practice_id,
        professional_id=practice.professional_id,
    )


def _new_jwk() -> dict[str, Any]:
    return dict(ECKey.generate_key("P-256", private=True).as_dict(private=False))


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        pytest.param({"name": "Logi\x00ciel"}, "name", id="name-with-nul"),
        pytest.param({"name": "Logiciel\nde caisse"}, "name", id="name-with-line-break"),
        pytest.param({"name": "   "}, "name", id="name-of-blanks"),
        pytest.param({"expires_at": "2099-01-01T00:00:00"}, "expires_at", id="expiry-without-zone"),
        pytest.param({"expires_at": "9999-12-31T23:00:00-05:00"}, "expires_at", id="expiry-past-year-9999-in-utc"),
    ],
)
def test_a_client_with_a_bad_name_or_expiry_is_a_422_naming_the_field(
    practice_admin: PortalUser, sent: dict[str, Any], field: str
) -> None:
    response = practice_admin.post(
        "/api/v1/practice/clients", json={"name": "Logiciel", "public_jwk": _new_jwk()} | sent
    )

    body = problem_of(response, 422, "validation-failed")
    assert field in json.dumps(body)
    assert practice_admin.get("/api/v1/practice/clients").status_code == 200
    assert len(practice_admin.get("/api/v1/practice/clients").json()) == 1  # nothing was created


def test_a_client_key_whose_type_is_not_a_string_is_a_422(practice_admin: PortalUser, practice: PracticeClient) -> None:
    created = practice_admin.post("/api/v1/practice/clients", json={"name": "Logiciel", "public_jwk": {"kty": ["EC"]}})
    added = practice_admin.post(f"/api/v1/practice/clients/{practice.client_id}/keys", json={"public_jwk": {"kty": {}}})

    problem_of(created, 422, "validation-failed")
    problem_of(added, 422, "validation-failed")


def test_revoking_a_key_id_no_key_can_have_is_a_404(practice_admin: PortalUser, practice: PracticeClient) -> None:
    path = f"/api/v1/practice/clients/{practice.client_id}/keys"

    for kid in ("ab%00cd", "x" * 300):
        problem_of(practice_admin.delete(f"{path}/{kid}"), 404, "not-found")
    assert practice.get(WHOAMI).status_code == 200  # the client's key is untouched


def test_a_passkey_name_with_control_characters_is_a_422_and_the_invitation_still_works(
    app: FastAPI, runtime: Runtime, practice: PracticeClient
) -> None:
    invitation = invite(
        app,
        runtime,
        login="preparatrice@pharmacie.test",
        roles={Role.PROFESSIONAL},
        practice_id=practice.practice_id,
        professional_id=practice.professional_id,
    )
    user = PortalUser.browser(app, login="preparatrice@pharmacie.test")

    refused = user.enrol(invitation.token, name="Lap\x00top")
    enrolled = user.enrol(invitation.token, name="  Laptop  ")

    assert [e["field"] for e in problem_of(refused, 422, "validation-failed")["errors"]] == ["name"]
    assert enrolled.status_code == 200, enrolled.text
    assert [p["name"] for p in user.get("/api/v1/me/passkeys").json()] == ["Laptop"]
