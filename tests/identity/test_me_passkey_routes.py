"""``/api/v1/me/passkeys/options`` is a ceremony, never a passkey's id."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import FastAPI

from rempart.identity.permissions import Role
from rempart.insurers.service import create_insurer
from rempart.runtime import Runtime
from tests.support.portal import PortalUser
from tests.support.problems import problem_of


@pytest.fixture
def admin(app: FastAPI, runtime: Runtime) -> PortalUser:
    with runtime.sessions.begin() as session:
        insurer_id: Any = create_insurer(
            session=session, keys=runtime.keys, amc_number="12345678", name="Mutuelle A"
        ).id
    return PortalUser.invited(
        app, runtime, login="admin@mutuelle.test", roles={Role.INSURER_ADMIN}, insurer_id=insurer_id
    )


def test_delete_on_the_options_path_is_a_405_naming_post(admin: PortalUser) -> None:
    response = admin.delete("/api/v1/me/passkeys/options")

    problem_of(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "POST, OPTIONS"


def test_delete_on_a_path_that_is_no_uuid_is_a_404(admin: PortalUser) -> None:
    problem_of(admin.delete("/api/v1/me/passkeys/not-a-passkey"), 404, "not-found")


def test_delete_of_an_unknown_passkey_still_answers_as_before(admin: PortalUser) -> None:
    response = admin.delete(f"/api/v1/me/passkeys/{uuid.uuid4()}")

    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
