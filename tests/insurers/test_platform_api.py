"""The platform admin onboards insurers and lists them; nobody else can."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from rempart.app import create_app
from rempart.identity.context import IdentityServices
from rempart.identity.permissions import Role
from rempart.insurers.models import Insurer
from rempart.insurers.platform_api import router
from rempart.protection.models import InsurerKey
from rempart.runtime import Runtime
from tests.factories import load_members, make_insurer, population
from tests.support.clock import FakeClock
from tests.support.portal import PortalUser
from tests.support.practice_client import PracticeClient
from tests.support.problems import problem_of

PATH = "/api/v1/platform/insurers"


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    application = create_app(runtime)
    application.include_router(router)  # until app.py includes it
    application.state.identity = IdentityServices.build(
        runtime.settings, clock=FakeClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC)), prefix=f"t{uuid.uuid4().hex}"
    )
    return application


@pytest.fixture
def platform(app: FastAPI, runtime: Runtime) -> PortalUser:
    return PortalUser.invited(app, runtime, login="ops@rempart.test", roles={Role.PLATFORM_ADMIN})


def _insurers(runtime: Runtime) -> tuple[int, int]:
    with runtime.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(Insurer)) or 0,
            session.scalar(select(func.count()).select_from(InsurerKey)) or 0,
        )


def test_a_platform_admin_creates_then_lists(platform: PortalUser, runtime: Runtime) -> None:
    existing = make_insurer(runtime, amc_number="88450101", name="Mutuelle des Remparts")
    people = population(2)
    load_members(runtime, existing, people)

    created = platform.post(PATH, json={"amc_number": "12345678", "name": "Mutuelle X"})

    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["amc_number"], body["name"], body["products"], body["members"]) == ("12345678", "Mutuelle X", 0, 0)
    listed = platform.get(PATH)
    assert listed.status_code == 200, listed.text
    rows = {row["amc_number"]: row for row in listed.json()}
    assert set(rows) == {"12345678", "88450101"}
    assert rows["12345678"]["id"] == body["id"]
    assert rows["88450101"]["members"] == len(people)
    assert rows["88450101"]["products"] > 0
    assert set(rows["88450101"]) == {"id", "amc_number", "name", "created_at", "products", "members"}
    for person in people:
        assert person.nir not in listed.text
        assert person.last_name not in listed.text
    with runtime.sessions() as session:
        new = session.scalar(select(Insurer.id).where(Insurer.amc_number == "12345678"))
        assert session.scalar(select(func.count()).select_from(InsurerKey).where(InsurerKey.insurer_id == new))


def test_a_duplicate_amc_number_is_a_409(platform: PortalUser, runtime: Runtime) -> None:
    assert platform.post(PATH, json={"amc_number": "12345678", "name": "Mutuelle X"}).status_code == 201
    before = _insurers(runtime)

    problem_of(platform.post(PATH, json={"amc_number": "12345678", "name": "Mutuelle Y"}), 409, "conflict")

    assert _insurers(runtime) == before


@pytest.mark.parametrize(
    "body",
    [
        {"amc_number": "1234567", "name": "Mutuelle X"},
        {"amc_number": "12345678901", "name": "Mutuelle X"},
        {"amc_number": "１２３４５６７８", "name": "Mutuelle X"},
        {"amc_number": 12345678, "name": "Mutuelle X"},
        {"amc_number": "12345678", "name": ""},
        {"amc_number": "12345678", "name": "   "},
        {"amc_number": "12345678", "name": "x" * 201},
        {"amc_number": "12345678", "name": "Mutuelle\nX"},
        {"amc_number": "12345678"},
        {"amc_number": "12345678", "name": "Mutuelle X", "admin": True},
    ],
)
def test_bad_input_is_a_422_problem_and_writes_nothing(platform: PortalUser, runtime: Runtime, body: object) -> None:
    problem_of(platform.post(PATH, json=body), 422, "validation-failed")

    assert _insurers(runtime) == (0, 0)


def test_an_insurer_admin_is_refused(app: FastAPI, runtime: Runtime) -> None:
    insurer = make_insurer(runtime)
    admin = PortalUser.invited(
        app, runtime, login="admin@mutuelle.test", roles={Role.INSURER_ADMIN}, insurer_id=insurer.id
    )

    problem_of(admin.post(PATH, json={"amc_number": "12345678", "name": "Mutuelle X"}), 403, "permission-denied")
    problem_of(admin.get(PATH), 403, "permission-denied")
    assert _insurers(runtime)[0] == 1


def test_practice_software_is_refused(app: FastAPI, runtime: Runtime) -> None:
    practice = PracticeClient.register(app, runtime)

    problem_of(practice.post(PATH, json={"amc_number": "12345678", "name": "Mutuelle X"}), 403, "permission-denied")
    problem_of(practice.get(PATH), 403, "permission-denied")
    assert _insurers(runtime) == (0, 0)


def test_nobody_signed_in_is_a_401(app: FastAPI) -> None:
    anonymous = PortalUser.browser(app)

    assert anonymous.get(PATH).status_code == 401
