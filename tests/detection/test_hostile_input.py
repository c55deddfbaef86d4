"""The security console's routes answer hostile or careless input with a 422 problem on both
databases: an alert window without a time zone or outside the calendar, a page cursor no
next link gave, a
reason holding control characters (a NUL cannot be stored by PostgreSQL; SQLite's CHECK on the
length stops at it). Each was a 500."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from rempart.detection.models import KillSwitch
from rempart.identity.permissions import Role
from rempart.runtime import Runtime
from tests.factories import make_insurer
from tests.support.portal import PortalUser


@pytest.fixture
def operator(app: Any, runtime: Runtime) -> PortalUser:
    return PortalUser.invited(app, runtime, login="vigie@rempart.test", roles={Role.SECURITY_OPERATOR})


def _refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("since", "2026-11-01"),  # a date: midnight where?
        ("since", "2026-11-01T08:00:00"),  # no time zone
        ("until", "9999-12-31T23:00:00-05:00"),  # past year 9999 in UTC
        ("until", "0001-01-01T00:00:00+05:00"),  # before year 1 in UTC
    ],
)
def test_an_alert_window_without_a_time_zone_or_outside_the_calendar_is_a_422(
    operator: PortalUser, name: str, value: str
) -> None:
    _refused(operator.get("/api/v1/alerts", params={name: value}), f"query.{name}")
    assert operator.get("/api/v1/alerts", params={name: "2026-11-01T08:00:00+01:00"}).status_code == 200


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        base64.urlsafe_b64encode(f"0001-01-01T00:00:00+05:00|{uuid.UUID(int=1)}".encode()).decode(),  # before year 1
        base64.urlsafe_b64encode(b"2026-11-22T09:00:00|not-an-id").decode(),
    ],
)
def test_an_alert_cursor_no_next_link_gave_is_a_422_for_operators_and_insurer_staff(
    app: Any, runtime: Runtime, operator: PortalUser, cursor: str
) -> None:
    insurer = make_insurer(runtime)
    dpo = PortalUser.invited(app, runtime, login="dpo@remparts.test", roles={Role.DPO}, insurer_id=insurer.id)

    for answer in (
        operator.get("/api/v1/alerts", params={"cursor": cursor}),
        dpo.get(f"/api/v1/insurers/{insurer.id}/alerts", params={"cursor": cursor}),
    ):
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"].endswith("/problems/cursor-invalid")
    # Offsets are no part of the lists any more: the parameter is not read.
    assert operator.get("/api/v1/alerts", params={"offset": str(2**63)}).json() == {"alerts": [], "limit": 50}


@pytest.mark.parametrize("reason", ["phished\x00 login at a pharmacy", "phished login\x1b[2J at a pharmacy"])
def test_a_reason_with_control_characters_is_a_422_and_no_switch_moves(
    runtime: Runtime, operator: PortalUser, reason: str
) -> None:
    _refused(
        operator.post("/api/v1/kill-switches", json={"scope": "channel", "target": "practice_api", "reason": reason}),
        "reason",
    )
    with runtime.sessions() as session:
        assert session.scalars(select(KillSwitch)).all() == []

    # Line breaks and tabs are laid-out words: kept, as spaces.
    switch = operator.post(
        "/api/v1/kill-switches",
        json={"scope": "channel", "target": "practice_api", "reason": "phished login\nat a pharmacy"},
    )
    assert switch.status_code == 201, switch.text
    assert switch.json()["reason"] == "phished login at a pharmacy"
    _refused(operator.post(f"/api/v1/kill-switches/{switch.json()['id']}/clear", json={"reason": reason}), "reason")
    assert operator.get("/api/v1/kill-switches").json()[0]["active"] is True
