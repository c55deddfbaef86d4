"""Fail closed, on the real rights check: when the events table refuses writes, the practice gets a
503 problem and nothing else, and nothing of the check is kept."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from rempart.app import create_app
from rempart.audit.models import AccessEvent
from rempart.detection.engine import DetectionEngine
from rempart.eligibility.models import RightsCheck
from rempart.identity.context import IdentityServices
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.audit.conftest import allow_event_writes, refuse_event_writes
from tests.eligibility.world import build_world
from tests.factories import TODAY
from tests.support.clock import FakeClock
from tests.support.practice_client import PracticeClient

NOW = datetime(TODAY.year, TODAY.month, TODAY.day, 9, 30, tzinfo=UTC)


class _Clock:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def now(self) -> datetime:
        return self.clock()


@pytest.fixture
def app(runtime: Runtime) -> Iterator[FastAPI]:
    clock = FakeClock(NOW)
    application = create_app(runtime)
    prefix = f"t{uuid.uuid4().hex}"
    application.state.identity = IdentityServices.build(runtime.settings, clock=clock, prefix=prefix)
    application.state.detection = DetectionEngine.build(runtime, clock=_Clock(clock), prefix=prefix)
    yield application
    application.state.detection.close()


def _counts(runtime: Runtime) -> tuple[int, int]:
    with runtime.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(AccessEvent)) or 0,
            session.scalar(select(func.count()).select_from(RightsCheck)) or 0,
        )


def test_the_rights_check_answers_503_and_discloses_nothing_when_the_log_refuses(
    app: FastAPI, runtime: Runtime
) -> None:
    world = build_world(runtime, members=6)
    patient = world.patient()
    card = {
        "amc_number": world.insurer.amc_number,
        "member_number": patient.member_number,
        "nir": patient.nir,
        "birth_date": patient.birth_date.isoformat(),
        "birth_rank": patient.birth_rank,
    }
    pharmacy = PracticeClient.register(app, runtime, profession=Profession.PHARMACIST)
    pharmacy.token()  # credentials first: their own security events are not the point here
    before = _counts(runtime)

    refuse_event_writes(runtime)
    try:
        refused = pharmacy.post("/api/v1/rights-checks", json=card)
        refused_batch = pharmacy.post("/api/v1/rights-checks/batch", json={"checks": [card]})
    finally:
        allow_event_writes(runtime)

    for response in (refused, refused_batch):
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/access-log-unavailable")
        assert "domains" not in response.text
        assert "check_id" not in response.text
    assert _counts(runtime) == before  # no event, and no rights check to quote later

    answered = pharmacy.post("/api/v1/rights-checks", json=card)
    assert answered.status_code == 200, answered.text
    assert _counts(runtime) == (before[0] + 1, before[1] + 1)
