"""Detection fixtures: a controllable clock, counter stores (in process and Redis), engines, and
three engines sharing one Redis, each standing for one app process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from sqlalchemy.orm import Session

from rempart.detection.clock import ManualClock
from rempart.detection.engine import Actor, DetectionEngine
from rempart.detection.memory import MemoryStore
from rempart.detection.models import ContainmentLevel, KillChannel, SubjectKind
from rempart.detection.redis_store import RedisStore
from rempart.detection.store import CounterStore, CounterStoreUnavailable
from rempart.runtime import Runtime

REDIS_URL = os.environ.get("REMPART_TEST_REDIS_URL", "")
PARIS = ZoneInfo("Europe/Paris")
# A Tuesday morning at opening time.
START = datetime(2026, 3, 3, 9, 0, tzinfo=PARIS)


def need_redis() -> str:
    if not REDIS_URL:
        pytest.skip("needs REMPART_TEST_REDIS_URL (a Redis shared by the simulated processes)")
    return REDIS_URL


def drop_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    client.close()


@dataclass
class RecordingHooks:
    """Stands in for identity and the access log: remembers what containment asked of them."""

    suspended: list[tuple[SubjectKind, uuid.UUID]] = field(default_factory=list)
    reinstated: list[tuple[SubjectKind, uuid.UUID]] = field(default_factory=list)
    steps: list[tuple[SubjectKind, uuid.UUID, ContainmentLevel]] = field(default_factory=list)

    def suspend(
        self, session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, reason: str, now: datetime
    ) -> None:
        self.suspended.append((kind, subject_id))

    def reinstate(
        self, session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, reason: str, now: datetime
    ) -> None:
        self.reinstated.append((kind, subject_id))

    def step_recorded(
        self,
        session: Session,
        *,
        kind: SubjectKind,
        subject_id: uuid.UUID,
        level: ContainmentLevel,
        signal: str,
        actor: Actor | None,
        now: datetime,
    ) -> None:
        self.steps.append((kind, subject_id, level))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def hooks() -> RecordingHooks:
    return RecordingHooks()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    url = need_redis()
    prefix = f"rempart:test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    drop_prefix(url, prefix)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[CounterStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    prefix = request.getfixturevalue("redis_prefix")
    shared = RedisStore.from_url(REDIS_URL, prefix=prefix)
    yield shared
    shared.close()


@pytest.fixture
def engine(runtime: Runtime, store: CounterStore, clock: ManualClock, hooks: RecordingHooks) -> DetectionEngine:
    # Inline records: the unit tests read them right after each call.
    return DetectionEngine(store=store, sessions=runtime.sessions, clock=clock, hooks=hooks, background=False)


@pytest.fixture
def processes(
    runtime: Runtime, redis_prefix: str, clock: ManualClock, hooks: RecordingHooks
) -> Iterator[list[DetectionEngine]]:
    """Three app processes: each its own engine and Redis connection, one shared Redis."""
    engines = [
        DetectionEngine(
            store=RedisStore.from_url(REDIS_URL, prefix=redis_prefix),
            sessions=runtime.sessions,
            clock=clock,
            hooks=hooks,
        )
        for _ in range(3)
    ]
    yield engines
    for e in engines:
        e.close()


def api_actor(profession: str = "pharmacist", **overrides: Any) -> Actor:
    values: dict[str, Any] = {
        "channel": KillChannel.PRACTICE_API,
        "practice_id": uuid.uuid4(),
        "profession": profession,
        "client_id": uuid.uuid4(),
        "professional_id": uuid.uuid4(),
        "device": "jkt-" + uuid.uuid4().hex[:8],
        "address": "192.0.2.10",
    }
    values.update(overrides)
    return Actor(**values)


def portal_actor(profession: str = "pharmacist", **overrides: Any) -> Actor:
    values: dict[str, Any] = {
        "channel": KillChannel.PROFESSIONAL_PORTAL,
        "practice_id": uuid.uuid4(),
        "profession": profession,
        "account_id": uuid.uuid4(),
        "professional_id": uuid.uuid4(),
        "device": "passkey-" + uuid.uuid4().hex[:8],
        "address": "192.0.2.20",
    }
    values.update(overrides)
    return Actor(**values)


# -- the app, as one or several processes --------------------------------------------------------


def make_app(runtime: Runtime, clock: ManualClock, *, prefix: str, identity_prefix: str) -> Any:
    """One app process: its own identity services and detection engine on the shared stores."""
    from rempart.app import create_app
    from rempart.identity.context import IdentityServices

    application = create_app(runtime)
    application.state.identity = IdentityServices.build(runtime.settings, clock=clock.now, prefix=identity_prefix)
    application.state.detection = DetectionEngine.build(runtime, clock=clock, prefix=prefix)
    return application


@pytest.fixture
def app(runtime: Runtime, clock: ManualClock) -> Iterator[Any]:
    prefix = f"rempart:test:{uuid.uuid4().hex[:12]}:"
    application = make_app(runtime, clock, prefix=prefix, identity_prefix=f"t{uuid.uuid4().hex}")
    yield application
    application.state.detection.close()
    if REDIS_URL:
        drop_prefix(REDIS_URL, prefix)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of the test's own on 127.0.0.1 (nothing kept on disk), for tests that stop
    it: its URL and process."""
    need_redis()
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    server = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    probe = RedisStore.from_url(url, prefix="probe:")
    for _ in range(100):  # wait for it to accept connections (at most ~5 s)
        try:
            probe.ping()
            break
        except CounterStoreUnavailable:
            time.sleep(0.05)
    probe.close()
    yield url, server
    if server.poll() is None:
        server.terminate()
        server.wait(timeout=10)
