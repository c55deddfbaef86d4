"""Shared state across app processes: kill switches reach every process within a second, and the
professional channels fail closed when the counter store is unreachable."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from sqlalchemy import select

from rempart.detection.engine import DetectionEngine
from rempart.detection.errors import ChannelDisconnected
from rempart.detection.models import Alert, AlertKind, DetectionEvent, EventKind, KillChannel, KillSwitchScope
from rempart.detection.redis_store import RedisStore
from rempart.detection.service import clear_kill_switch, set_kill_switch
from rempart.detection.store import CounterStoreUnavailable
from rempart.runtime import Runtime
from tests.detection.conftest import REDIS_URL, ManualClock, api_actor, drop_prefix


def test_a_kill_switch_reaches_every_process_within_a_second(
    processes: list[DetectionEngine], clock: ManualClock, runtime: Runtime
) -> None:
    a, b, c = processes
    actor = api_actor()
    operator = uuid.uuid4()
    for engine in processes:  # every process has looked at the switches recently
        engine.guard(actor)
    clock.advance(0.5)
    with runtime.sessions.begin() as session:
        switch = set_kill_switch(
            session=session,
            scope=KillSwitchScope.CHANNEL,
            target="practice_api",
            reason="Stolen software keys in use",
            operator_id=operator,
            now=clock.now(),
        )
    a.announce_kill_switches()
    with pytest.raises(ChannelDisconnected):
        a.guard(actor)  # the operator's process at once
    b.guard(actor)  # the others trust their copy for at most a second
    clock.advance(0.6)  # 1.1 s after their last look
    for engine in (b, c):
        with pytest.raises(ChannelDisconnected) as cut:
            engine.guard(actor)
        assert cut.value.problem()["offline_attestation"] is True
    with pytest.raises(ChannelDisconnected):  # observe checks too, whatever the route forgot
        c.observe(actor, hit=True, beneficiary_id=uuid.uuid4())
    portal = api_actor(channel=KillChannel.PROFESSIONAL_PORTAL, client_id=None, account_id=uuid.uuid4())
    for engine in processes:
        engine.guard(portal)

    with runtime.sessions.begin() as session:
        clear_kill_switch(
            session=session, switch_id=switch.id, reason="Keys rotated", operator_id=operator, now=clock.now()
        )
    b.announce_kill_switches()
    clock.advance(1)
    for engine in processes:
        engine.guard(actor)
    with runtime.sessions() as session:
        kinds = session.scalars(select(DetectionEvent.kind).where(DetectionEvent.subject_id == switch.id)).all()
    assert sorted(kinds) == [EventKind.KILL_SWITCH_CLEARED, EventKind.KILL_SWITCH_SET]


def test_an_insurer_and_a_practice_can_be_cut_off_alone(
    processes: list[DetectionEngine], clock: ManualClock, runtime: Runtime
) -> None:
    from tests.factories import make_insurer

    insurer = make_insurer(runtime)
    engine = processes[0]
    actor, neighbour = api_actor(), api_actor()
    with runtime.sessions.begin() as session:
        for scope, target in (
            (KillSwitchScope.INSURER, str(insurer.id)),
            (KillSwitchScope.PRACTICE, str(actor.practice_id)),
        ):
            set_kill_switch(
                session=session,
                scope=scope,
                target=target,
                reason="Incident 42",
                operator_id=uuid.uuid4(),
                now=clock.now(),
            )
    engine.announce_kill_switches()
    with pytest.raises(ChannelDisconnected):
        engine.guard(actor)
    engine.guard(neighbour)
    with pytest.raises(ChannelDisconnected):
        engine.guard(neighbour, insurer_id=insurer.id)
    engine.guard(neighbour, insurer_id=uuid.uuid4())


# -- a Redis of our own, stopped during the test ------------------------------------------------


def test_professional_channels_fail_closed_when_redis_is_down(
    own_redis: tuple[str, subprocess.Popen[bytes]], runtime: Runtime, clock: ManualClock
) -> None:
    url, server = own_redis
    engines = [
        DetectionEngine(store=RedisStore.from_url(url, prefix="rempart:det:"), sessions=runtime.sessions, clock=clock)
        for _ in range(3)
    ]
    actor = api_actor()
    try:
        for engine in engines:
            engine.guard(actor)
            engine.observe(actor, hit=True, beneficiary_id=uuid.uuid4())
        server.terminate()
        server.wait(timeout=10)
        for engine in engines:
            with pytest.raises(CounterStoreUnavailable) as closed:
                engine.observe(actor, hit=True, beneficiary_id=uuid.uuid4())
            problem = closed.value.problem()
            assert problem["status"] == 503
            assert problem["offline_attestation"] is True
            clock.advance(1.5)
            with pytest.raises(CounterStoreUnavailable):
                engine.guard(actor)  # the kill-switch copy has expired and cannot be refreshed
        for engine in engines:
            engine.drain()
        with runtime.sessions() as session:
            alerts = session.scalars(select(Alert).where(Alert.kind == AlertKind.COUNTER_STORE_UNREACHABLE)).all()
        assert len(alerts) == 1  # three processes, several failures: one alert
        assert alerts[0].severity.value == "critical"
    finally:
        for engine in engines:
            engine.close()


def test_the_database_is_the_record_of_kill_switches(
    processes: list[DetectionEngine], clock: ManualClock, runtime: Runtime, redis_prefix: str
) -> None:
    a, b, _ = processes
    actor = api_actor()
    # A copy in Redis that the record does not hold (a restored backup, an old run): a process
    # starting up trusts the database and puts the copy right.
    a.store.publish_kill_switches(frozenset({("channel", "practice_api")}))
    b.guard(actor)
    clock.advance(1.1)
    a.guard(actor)

    # Redis loses its copy (restart without persistence): the next look reads the record again.
    with runtime.sessions.begin() as session:
        set_kill_switch(
            session=session,
            scope=KillSwitchScope.PRACTICE,
            target=str(actor.practice_id),
            reason="Practice PC infected",
            operator_id=uuid.uuid4(),
            now=clock.now(),
        )
    a.announce_kill_switches()
    drop_prefix(REDIS_URL, redis_prefix)
    clock.advance(1.1)
    with pytest.raises(ChannelDisconnected):
        b.guard(actor)
