"""The app as practice software and insurer staff reach it over HTTP, with every response of the
professional routes recorded and, after each test, searched for the identities of the people the
test created (NIR, names, date of birth): none may appear."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI

from rempart.app import create_app
from rempart.detection.engine import DetectionEngine
from rempart.identity.context import IdentityServices
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime
from rempart.tenancy import DEFAULT_APP_ROLE, rls_active, use_app_role
from tests.e2e.scan import ResponseRecorder, identities_in
from tests.factories import TODAY
from tests.support.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(TODAY.year, TODAY.month, TODAY.day, 9, 30, tzinfo=UTC))


class _DetectionClock:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def now(self) -> datetime:
        return self.clock()


@pytest.fixture
def population() -> list[MemberRecord]:
    """Tests add the members they create; their identities are searched for in every response."""
    return []


@pytest.fixture
def recorder() -> list[ResponseRecorder]:
    return []


@pytest.fixture(params=["owner", "app_role"])
def app_runtime(request: pytest.FixtureRequest, runtime: Runtime) -> Iterator[Runtime]:
    """The runtime the app serves with. On PostgreSQL the app also runs as the application role,
    which row-level security binds (the tests' own connection is the owner, which it does not)."""
    if request.param == "owner":
        yield runtime
        return
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("row-level security exists on PostgreSQL only")
    served = Runtime.build(runtime.settings)
    use_app_role(served.engine, DEFAULT_APP_ROLE)
    with served.sessions() as session:
        assert rls_active(session)
    yield served
    served.close()


@pytest.fixture
def app(app_runtime: Runtime, clock: FakeClock, recorder: list[ResponseRecorder]) -> Iterator[FastAPI]:
    application = create_app(app_runtime)
    prefix = f"t{uuid.uuid4().hex}"
    application.state.identity = IdentityServices.build(app_runtime.settings, clock=clock, prefix=prefix)
    # Detection on the same clock, with counters of its own in the shared Redis.
    application.state.detection = DetectionEngine.build(app_runtime, clock=_DetectionClock(clock), prefix=prefix)

    def keep(inner: object) -> ResponseRecorder:
        wrapped = ResponseRecorder(inner)  # type: ignore[arg-type]
        recorder.append(wrapped)
        return wrapped

    application.add_middleware(keep)  # type: ignore[arg-type]
    yield application
    application.state.detection.close()


@pytest.fixture(autouse=True)
def no_identity_in_professional_responses(
    recorder: list[ResponseRecorder], population: list[MemberRecord]
) -> Iterator[None]:
    yield
    allowed = {TODAY + timedelta(days=k) for k in range(-30, 400)}
    allowed |= {r.contract_start for r in population} | {r.contract_end for r in population if r.contract_end}
    leaks = [
        f"{seen.method} {seen.path} ({seen.status}) shows {what}"
        for wrapper in recorder
        for seen in wrapper.responses
        for what in identities_in(seen.body, population, allowed_dates=allowed)
    ]
    assert not leaks, leaks


@pytest.fixture
def scanned(recorder: list[ResponseRecorder]) -> list[ResponseRecorder]:
    return recorder
