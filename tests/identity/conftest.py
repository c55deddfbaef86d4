from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI

from rempart.app import create_app
from rempart.identity.context import IdentityServices
from rempart.runtime import Runtime
from tests.support.clock import FakeClock
from tests.support.practice_client import PracticeClient


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(runtime: Runtime, clock: FakeClock) -> FastAPI:
    application = create_app(runtime)
    # A namespace of its own in the shared Redis, and a clock the test moves.
    application.state.identity = IdentityServices.build(runtime.settings, clock=clock, prefix=f"t{uuid.uuid4().hex}")
    return application


@pytest.fixture
def practice(app: FastAPI, runtime: Runtime) -> PracticeClient:
    return PracticeClient.register(app, runtime)
