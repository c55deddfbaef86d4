"""The access log's routes answer hostile or careless input with a 422 problem on both databases:
a date without a time zone or past the calendar, a page cursor that was never given, a checkpoint
number past 64 bits, a break-glass reason or ticket with control characters. Each was a 500."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from rempart.app import create_app
from rempart.audit.keys import load_signing_keys
from rempart.audit.models import AccessEvent, BreakGlassGrant
from rempart.audit.sealing import seal_all
from rempart.identity.context import IdentityServices
from rempart.identity.permissions import Role
from rempart.runtime import Runtime
from tests.audit.conftest import record_events
from tests.audit.test_access_log import _beneficiary_id
from tests.eligibility.world import World, build_world
from tests.factories import TODAY
from tests.support.clock import FakeClock
from tests.support.portal import PortalUser

NOW = datetime(TODAY.year, TODAY.month, TODAY.day, 9, 30, tzinfo=UTC)
PAST_BIGINT = str(2**63)


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    application = create_app(runtime)
    application.state.identity = IdentityServices.build(
        runtime.settings, clock=FakeClock(NOW), prefix=f"t{uuid.uuid4().hex}"
    )
    return application


@pytest.fixture
def world(runtime: Runtime) -> World:
    return build_world(runtime, members=3)


@pytest.fixture
def dpo(app: FastAPI, runtime: Runtime, world: World) -> PortalUser:
    return PortalUser.invited(app, runtime, login="dpo@remparts.test", roles={Role.DPO}, insurer_id=world.insurer.id)


def _refused(response: httpx.Response, field: str | None = None, slug: str = "validation-failed") -> dict[str, object]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["type"] == f"/problems/{slug}"
    if field is not None:
        assert [e["field"] for e in body["errors"]] == [field]  # type: ignore[attr-defined]
    return body


def _events(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AccessEvent)) or 0)


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "since",
    [
        "2026-11-01",  # a date: midnight where?
        "2026-11-01T08:00:00",  # no time zone
        "9999-12-31T23:00:00-05:00",  # past year 9999 in UTC
        "0001-01-01T00:00:00+05:00",  # before year 1 in UTC
    ],
)
def test_the_insurers_log_since_a_moment_without_a_time_zone_or_outside_the_calendar_is_a_422(
    runtime: Runtime, world: World, dpo: PortalUser, since: str
) -> None:
    before = _events(runtime)

    answer = dpo.get(f"/api/v1/insurers/{world.insurer.id}/access-log", params={"since": since})

    _refused(answer, "query.since")
    assert _events(runtime) == before  # no reading recorded: nothing was read
    fine = dpo.get(f"/api/v1/insurers/{world.insurer.id}/access-log", params={"since": "2026-11-01T08:00:00+01:00"})
    assert fine.status_code == 200, fine.text


@pytest.mark.parametrize(
    "cursor",
    [
        "2026-11-22T09:00:00+00:00|" + "9" * 30,  # an event number past 64 bits
        "2026-11-22T09:00:00+00:00|-" + "9" * 30,
        "0001-01-01T00:00:00+05:00|12",  # a time before year 1 in UTC
    ],
)
def test_a_page_cursor_no_one_was_given_is_a_422_in_both_views(
    app: FastAPI, runtime: Runtime, world: World, dpo: PortalUser, cursor: str
) -> None:
    person = _beneficiary_id(runtime, world, world.patient())
    me = PortalUser.invited(
        app, runtime, login="patient@exemple.test", roles={Role.BENEFICIARY}, insurer_id=world.insurer.id,
        beneficiary_id=person,
    )  # fmt: skip

    for user, path in ((dpo, f"/api/v1/insurers/{world.insurer.id}/access-log"), (me, "/api/v1/me/access-log")):
        body = _refused(user.get(path, params={"cursor": _cursor(cursor)}), slug="cursor-invalid")
        assert body["detail"] == "the page cursor is not one this service gave"


def test_checkpoint_numbers_past_64_bits_are_a_422(runtime: Runtime, world: World, dpo: PortalUser) -> None:
    record_events(runtime, 3, insurer_id=world.insurer.id)
    seal_all(runtime.sessions, signer=load_signing_keys(runtime.settings), now=NOW)
    base = f"/api/v1/insurers/{world.insurer.id}/access-log"

    _refused(dpo.get(f"{base}/checkpoints", params={"since": PAST_BIGINT}), "query.since")
    _refused(dpo.get(f"{base}/consistency", params={"from": 1, "to": PAST_BIGINT}), "query.to")
    _refused(dpo.get(f"{base}/consistency", params={"from": "9" * 30}), "query.from")

    # The largest number a checkpoint can have is a number like any other: none so far.
    assert dpo.get(f"{base}/checkpoints", params={"since": str(2**63 - 1)}).json()["heads"] == []
    missing = dpo.get(f"{base}/consistency", params={"from": 1, "to": str(2**63 - 1)})
    assert (missing.status_code, missing.json()["detail"]) == (404, f"no checkpoint {2**63 - 1}")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("reason", "Card refused at\x00 every pharmacy"),
        ("reason", "Card refused at every pharmacy\x1b[2J"),
        ("ticket", "INC\x002026"),
        ("ticket", "INC-2026\n114"),
    ],
)
def test_a_break_glass_request_with_control_characters_is_a_422_and_nothing_is_granted(
    app: FastAPI, runtime: Runtime, world: World, field: str, value: str
) -> None:
    person = _beneficiary_id(runtime, world, world.patient())
    alice = PortalUser.invited(app, runtime, login="alice@rempart.test", roles={Role.SECURITY_OPERATOR})
    body = {"insurer_id": str(world.insurer.id), "beneficiary_id": str(person)}
    body |= {"reason": "Card refused at every pharmacy", "ticket": "INC-2026-114", field: value}

    _refused(alice.post("/api/v1/break-glass", json=body), field)

    with runtime.sessions() as session:
        assert session.scalars(select(BreakGlassGrant)).all() == []
    # Line breaks in the reason are words laid out, not control characters.
    body |= {"reason": "Card refused at every pharmacy.\nMember called twice.", "ticket": "INC-2026-114"}
    assert alice.post("/api/v1/break-glass", json=body).status_code == 201
