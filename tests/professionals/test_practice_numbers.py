"""A FINESS or Assurance Maladie number is nine ASCII digits: the same number typed in full-width
or Arabic-Indic digits (which ``str.isdigit`` and the schema's ``\\d`` both accept) is refused, not a
second practice under a number no one else writes that way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from rempart.app import create_app
from rempart.identity.context import IdentityServices
from rempart.identity.permissions import Role
from rempart.professionals.models import Practice
from rempart.runtime import Runtime
from tests.support.clock import FakeClock
from tests.support.portal import PortalUser
from tests.support.practice_client import make_rpps


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    application = create_app(runtime)
    application.state.identity = IdentityServices.build(
        runtime.settings, clock=FakeClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC)), prefix=f"t{uuid.uuid4().hex}"
    )
    return application


@pytest.mark.parametrize("field", ["finess", "am_number"])
def test_a_practice_number_in_other_digits_is_refused_not_a_second_practice(
    app: FastAPI, runtime: Runtime, field: str
) -> None:
    platform = PortalUser.invited(app, runtime, login="ops@rempart.test", roles={Role.PLATFORM_ADMIN})

    def onboard(number: str, login: str) -> int:
        body = {"name": "Cabinet dentaire du Port", "profession": "dentist", field: number}
        body |= {"admin_login": login, "admin_rpps": make_rpps()}
        return platform.post("/api/v1/platform/practices", json=body).status_code

    assert onboard("130000001", "dr.port@dentiste.test") == 201
    assert onboard("\uff11\uff13\uff10\uff10\uff10\uff10\uff10\uff10\uff11", "bis@dentiste.test") == 422  # full width
    assert onboard("\u0661\u0663\u0660\u0660\u0660\u0660\u0660\u0660\u0661", "ter@dentiste.test") == 422  # Arabic-Indic

    with runtime.sessions() as session:
        assert len(session.scalars(select(Practice)).all()) == 1
