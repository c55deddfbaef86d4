"""What detection costs on the rights-check path: ``python -m bench.detection``.

Two measurements, in the same run:

1. **The engine alone**: observations per second and microseconds per observation, with the
   in-process store and with Redis (a ``redis-server`` of its own on 127.0.0.1, so that other users
   of a shared Redis neither slow it down nor pollute its command counts), and how many commands
   cross the network per observation (``EVALSHA`` calls: the round trips).
2. **The rights check with detection on and off**: the care service's ``check_rights`` (blind index,
   coverage, rights-check row, access event, commit) called in a loop by many pharmacies, each
   checking its own few patients, alternately bare ("off") and wrapped in ``guard`` + ``observe``
   exactly as the route does it ("on"), on SQLite and on PostgreSQL when it answers. Passes (one
   check per pharmacy) alternate off/on so that both see the same machine load; the report gives
   the throughput of each and detection's share of this service call alone (no authentication,
   no framework: a diagnostic, larger than its share of the route).

3. **The route over HTTP**: ``POST /api/v1/rights-checks`` served by two copies of the app
   (``bench.detection_app``: detection on, and off), on one scratch database and one Redis, with
   short closed-loop slices alternating between them; pre-signed DPoP requests from
   ``bench.rights_check``. This is the rights check as practice software sees it, and the cost
   the goal bounds (at most 15 %).

4. **Scenarios** (``bench.detection_scenarios``): simulated weeks of a pharmacy's, an optician's and
   a hospital's honest work, and of thieves with one of their keys (patient, hurried, guessing
   dates of birth), through three engines sharing one Redis: records disclosed, when the thief was
   suspended, honest checks refused. ``--only-scenarios`` runs this part alone.

Bounded: each phase lasts ``--seconds`` (default 3) or ``--http-seconds`` (default 12 per side);
the scenarios take about a minute per database; the whole run takes three to six minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis

from bench.common import (
    CLOCK_OFFSET_VARIABLE,
    ShiftedClock,
    backends,
    load_population,
    scratch_runtime,
    wait_until_serving,
    working_day_offset,
)
from bench.detection_scenarios import report
from rempart.detection.actor import Actor
from rempart.detection.clock import ManualClock
from rempart.detection.engine import DetectionEngine
from rempart.detection.memory import MemoryStore
from rempart.detection.models import KillChannel
from rempart.detection.redis_store import RedisStore
from rempart.detection.store import CounterStore
from rempart.eligibility.api import DetectionAdmission
from rempart.eligibility.service import RightsQuery, check_rights
from rempart.identity.permissions import Role, permissions_of
from rempart.identity.principal import Channel, PracticePrincipal
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.professionals.service import attach_professional, create_practice, register_professional
from rempart.runtime import Runtime

AMC = "88450101"


# -- a Redis of our own -------------------------------------------------------------------------------


@contextmanager
def own_redis() -> Iterator[str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        url = os.environ.get("REMPART_BENCH_REDIS_URL")
        print(f"(no redis-server binary: using {url or 'no Redis'})")
        yield url
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="rempart-bench-redis-") as tmp:
        server = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        try:
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            yield url
        finally:
            client.close()
            server.terminate()
            server.wait(timeout=10)


# -- 1. the engine alone ----------------------------------------------------------------------------------


def engine_alone(
    store: CounterStore, runtime: Runtime, seconds: float, *, busy: bool = False, redis_url: str | None = None
) -> tuple[float, float, str]:
    """Observations per second, client CPU seconds per observation and (``redis_url``) the Redis
    commands and server time per observation: 200 pharmacies, each checking
    its own 6 patients over and over (a pharmacy sees the same faces; more distinct people in a few
    seconds would rightly be slowed).

    ``busy``: each pharmacy has already checked 40 new patients over the last 2 h 30 (25 billed at once)
    and now checks 14 new ones in turn, so that every window is counted (the hour, five minutes,
    new patients waiting for a claim: none is under its floor) while no threshold is reached."""
    offset = working_day_offset()
    engine = DetectionEngine(store=store, sessions=runtime.sessions, clock=ShiftedClock(offset))
    actors = [
        Actor(
            channel=KillChannel.PRACTICE_API,
            practice_id=uuid.uuid4(),
            profession="pharmacist",
            client_id=uuid.uuid4(),
            professional_id=uuid.uuid4(),
            device="jkt",
            address="192.0.2.10",
        )
        for _ in range(200)
    ]
    insurer = uuid.uuid4()
    rotation = 14 if busy else 6
    patients = [[uuid.uuid4() for _ in range(rotation)] for _ in actors]
    if busy:
        # One patient every 3 minutes per pharmacy, from 2 h 30 to 30 minutes before now.
        clock = ManualClock(ShiftedClock(offset).now() - timedelta(minutes=150))
        earlier = DetectionEngine(store=store, sessions=runtime.sessions, clock=clock)
        seen = [[uuid.uuid4() for _ in range(40)] for _ in actors]
        for turn in range(40):
            for actor, theirs in zip(actors, seen, strict=True):
                earlier.observe(actor, hit=True, beneficiary_id=theirs[turn], insurer_id=insurer)
                if turn % 8 < 5:  # 25 of them billed at the counter
                    assert actor.practice_id is not None
                    earlier.claimed(practice_id=actor.practice_id, beneficiary_id=theirs[turn])
            clock.advance(timedelta(minutes=3))
        earlier.drain()
        flush = getattr(store, "flush", None)  # insurer-wide counts waiting to be written
        if flush is not None:
            flush()
    before = RedisCounts.of(redis_url) if redis_url else None
    done, rounds, started, cpu = 0, 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        for n, actor in enumerate(actors):
            engine.guard(actor, insurer_id=insurer)
            engine.observe(actor, hit=True, beneficiary_id=patients[n][rounds % rotation], insurer_id=insurer)
            done += 1
        rounds += 1
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    engine.drain()
    engine.close()  # writes the last second's insurer-wide and platform-wide counts
    counts = RedisCounts.of(redis_url).per_observation(before, done) if redis_url and before else ""
    return done / elapsed, cpu / done, counts


# -- 2. the rights check, detection off and on ---------------------------------------------------------------


@dataclass
class PharmacyCounter:
    principal: PracticePrincipal
    patients: list[MemberRecord]


def build_world(runtime: Runtime, *, members: int, practices: int, per_practice: int) -> list[PharmacyCounter]:
    today = datetime.now(UTC).date()
    now = datetime.now(UTC)
    _insurer, records = load_population(
        runtime, amc_number=AMC, name="Mutuelle du banc", members=members, seed=11, today=today
    )
    in_force = [r for r in records if r.contract_start <= today and (r.contract_end is None or today <= r.contract_end)]
    counters = []
    roles = frozenset({Role.PRACTICE_SOFTWARE})
    with runtime.sessions.begin() as session:
        for n in range(practices):
            practice = create_practice(
                session=session,
                name=f"Pharmacie {n}",
                profession=Profession.PHARMACIST,
                finess=f"{910_000_000 + n:09d}",
            )
            rpps = _rpps(n)
            pro = register_professional(session=session, rpps=rpps, profession=Profession.PHARMACIST)
            attach_professional(session=session, practice_id=practice.id, professional_id=pro.id, now=now)
            principal = PracticePrincipal(
                practice_id=practice.id,
                professional_id=pro.id,
                rpps=rpps,
                profession=Profession.PHARMACIST,
                permissions=permissions_of(roles),
                channel=Channel.API,
                client_id=uuid.uuid4(),
                address="192.0.2.10",
                credential_ref="tok:bench",
            )
            counters.append(PharmacyCounter(principal, in_force[n * per_practice : (n + 1) * per_practice]))
    return counters


def _rpps(n: int) -> str:
    from stdnum import luhn

    body = f"10{n:08d}"
    return body + luhn.calc_check_digit(body)


def one_check(runtime: Runtime, counter: PharmacyCounter, engine: DetectionEngine | None, turn: int) -> float:
    """One rights check as the route makes it; ``engine`` None is detection off. Returns seconds."""
    patient = counter.patients[turn % len(counter.patients)]
    query = RightsQuery(AMC, patient.member_number, patient.nir, patient.birth_date, patient.birth_rank)
    started = time.perf_counter()
    with runtime.sessions() as session:
        admission = None
        if engine:
            actor = Actor.of_practice(counter.principal)
            engine.guard(actor)
            admission = DetectionAdmission(engine, actor)  # observed before the access event is written
        check_rights(
            session=session,
            keys=runtime.keys,
            caller=counter.principal,
            query=query,
            now=datetime.now(UTC),
            admission=admission,
        )  # commits the access event itself
    return time.perf_counter() - started


def compare(runtime: Runtime, store_factory: Callable[[], CounterStore], seconds: float) -> tuple[float, float, int]:
    """Each pharmacy's checks alternate off, on, off, on… (which comes first alternates too), so both
    see the same machine load, drift included. Returns checks/s off and on, and checks made."""
    counters = build_world(runtime, members=1200, practices=80, per_practice=6)
    engine = DetectionEngine(store=store_factory(), sessions=runtime.sessions, clock=ShiftedClock(working_day_offset()))
    for turn in range(2):  # warm caches, keys, prepared statements and scripts
        for counter in counters:
            one_check(runtime, counter, engine, turn)
            one_check(runtime, counter, None, turn)
    spent = {False: 0.0, True: 0.0}
    checks, turn, started = 0, 0, time.perf_counter()
    while time.perf_counter() - started < 2 * seconds:
        for n, counter in enumerate(counters):
            first = (n + turn) % 2 == 0
            for on in (first, not first):
                spent[on] += one_check(runtime, counter, engine if on else None, turn)
            checks += 1
        turn += 1
    engine.drain()
    engine.close()
    return checks / spent[False], checks / spent[True], checks


@dataclass(frozen=True)
class RedisCounts:
    """``INFO commandstats`` at one moment: scripts run, their server time, and every other command
    (those a script issues are counted too, each under its own name)."""

    scripts: int
    script_usec: float
    commands: int

    @classmethod
    def of(cls, url: str) -> RedisCounts:
        client = redis.Redis.from_url(url)
        try:
            stats = client.info("commandstats")
        finally:
            client.close()
        scripts = [v for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval")]
        others = [v for k, v in stats.items() if k not in ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_info")]
        return cls(
            scripts=sum(int(v["calls"]) for v in scripts),
            script_usec=sum(float(v["usec"]) for v in scripts),
            commands=sum(int(v["calls"]) for v in others),
        )

    def per_observation(self, before: RedisCounts, observations: int) -> str:
        n = max(1, observations)
        return (
            f"{(self.scripts - before.scripts) / n:.2f} scripts (round trips), "
            f"{(self.commands - before.commands) / n:.1f} Redis commands and "
            f"{(self.script_usec - before.script_usec) / n:.0f} µs of Redis server time per observation"
        )


# -- 3. over HTTP: the same app served twice, detection off and on ---------------------------------------


@contextmanager
def served(
    runtime: Runtime, *, detection: str, redis_url: str, workers: int, switch: str = "REMPART_BENCH_DETECTION"
) -> Iterator[int]:
    """``uvicorn bench.detection_app:app`` on 127.0.0.1 with detection (or what ``switch`` names)
    ``on`` or ``off``."""
    from bench import rights_check as rc

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    settings = runtime.settings
    env = {
        **os.environ,
        "PYTHONPATH": f"{rc.ROOT}:{rc.ROOT / 'src'}",
        "REMPART_ENVIRONMENT": "development",
        "REMPART_DATABASE_URL": settings.database_url,
        "REMPART_KEK_FILE": str(settings.kek_file),
        "REMPART_VAR_DIR": str(settings.var_dir),
        "REMPART_REDIS_URL": redis_url,
        "REMPART_PUBLIC_ORIGIN": rc.ORIGIN,
        "REMPART_LOG_JSON": "true",
        switch: detection,
        CLOCK_OFFSET_VARIABLE: str(rc.CLOCK_OFFSET),  # detection sees a Tuesday morning (bench.common)
    }
    command = [sys.executable, "-m", "uvicorn", "bench.detection_app:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    log_path = Path(settings.var_dir) / f"server-{detection}.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(command, cwd=rc.ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_until_serving([port], [process], log_path)
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def over_http(
    backend: str,
    redis_url: str,
    *,
    seconds: float,
    connections: int,
    workers: int,
    switch: str = "REMPART_BENCH_DETECTION",
    subject: str = "detection",
) -> None:
    """The rights check over HTTP with ``subject`` off and on (``switch`` in the servers'
    environment), short slices alternating; prints the cost against the 15 % goal."""
    from bench import rights_check as rc

    with scratch_runtime(backend, redis_url=redis_url) as runtime:
        built = rc.build_world(runtime, members=1500, practices=60, per_practice=3)
        # bench.rights_check's world is a list of pharmacies, or an object holding them.
        pharmacies = getattr(built, "pharmacies", built)
        with (
            served(runtime, detection="off", redis_url=redis_url, workers=workers, switch=switch) as off_port,
            served(runtime, detection="on", redis_url=redis_url, workers=workers, switch=switch) as on_port,
        ):
            # bench.rights_check takes a list of ports (several server processes) or, before, one port.
            multi = "ports" in inspect.signature(rc.fetch_tokens).parameters

            def at(port: int) -> Any:
                return [port] if multi else port

            rc.fetch_tokens(at(off_port), pharmacies)
            slices = 6  # alternate short slices so that both see the same machine load
            per_slice = seconds / slices
            with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                total = int(2 * slices * per_slice * 600) + 4 * len(pharmacies)
                requests = rc.check_requests(pharmacies, total, pool)
            cursor = 0

            def take(n: int) -> list[bytes]:
                nonlocal cursor
                chunk = requests[cursor : cursor + n]
                cursor += n
                return chunk

            for port in (off_port, on_port):  # warm both
                asyncio.run(
                    rc.closed_loop(at(port), take(2 * len(pharmacies)), connections=connections, seconds=5, name="warm")
                )
            done = {"off": 0, "on": 0}
            spent = {"off": 0.0, "on": 0.0}
            statuses: dict[str, Counter[int]] = {"off": Counter(), "on": Counter()}
            budget = (len(requests) - cursor) // (2 * slices)
            for i in range(2 * slices):
                name = ("off", "on")[i % 2] if (i // 2) % 2 == 0 else ("on", "off")[i % 2]
                port = off_port if name == "off" else on_port
                phase = asyncio.run(
                    rc.closed_loop(at(port), take(budget), connections=connections, seconds=per_slice, name=name)
                )
                done[name] += phase.done
                spent[name] += phase.seconds
                statuses[name].update(phase.statuses)
        off, on = done["off"] / spent["off"], done["on"] / spent["on"]
        cost = (off - on) / off * 100
        verdict = "within" if cost <= 15 else "over"
        print(
            f"   {backend:10s}: off {off:6.0f} checks/s, on {on:6.0f} checks/s over HTTP "
            f"({workers} worker(s) each, {connections} connections): "
            f"{subject} costs {cost:5.1f} % ({verdict} the 15 % goal)"
        )
        for name in ("off", "on"):
            bad = {k: v for k, v in statuses[name].items() if k != 200}
            if bad:
                print(f"      {name}: non-200 answers {bad}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.detection", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measured phase")
    parser.add_argument("--http-seconds", type=float, default=12.0, help="HTTP load per side (0: skip)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="server processes per side")
    parser.add_argument("--only-scenarios", action="store_true", help="part 4 alone")
    args = parser.parse_args(argv)
    with own_redis() as redis_url:
        if not args.only_scenarios:
            measure(args, redis_url)
        print("\n4. scenarios: three app processes (engines) on one Redis, simulated days")
        for backend in backends():
            with scratch_runtime(backend) as runtime:
                print(f"   {backend}, counters in {'Redis' if redis_url else 'process (no redis-server here)'}")
                report(lambda rt=runtime: _engines(rt, redis_url))


def _engines(runtime: Runtime, redis_url: str | None) -> tuple[list[DetectionEngine], ManualClock, Callable[[], None]]:
    clock = ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    if redis_url:
        stores: list[CounterStore] = [RedisStore.from_url(redis_url, prefix=prefix) for _ in range(3)]
    else:
        stores = [MemoryStore()]  # one process: three processes need a shared store
    engines = [DetectionEngine(store=store, sessions=runtime.sessions, clock=clock) for store in stores]

    def close() -> None:
        for engine in engines:
            engine.close()

    return engines, clock, close


def measure(args: argparse.Namespace, redis_url: str | None) -> None:
    """Parts 1 to 3: what detection costs."""
    print("\n1. the engine alone (guard + observe, 200 pharmacies)")
    with scratch_runtime("sqlite") as runtime:
        for busy in (False, True):
            what = "14 new patients after 40 earlier (every window counted)" if busy else "6 patients each"
            print(f"   {what}:")
            rate, cpu, _ = engine_alone(MemoryStore(), runtime, args.seconds, busy=busy)
            print(f"   in process : {rate:9.0f} observations/s  {1e6 / rate:7.1f} µs each ({cpu * 1e6:.1f} µs CPU)")
            if redis_url:
                store = RedisStore.from_url(redis_url, prefix=f"bench:{uuid.uuid4().hex[:8]}:")
                rate, cpu, counts = engine_alone(store, runtime, args.seconds, busy=busy, redis_url=redis_url)
                print(f"   Redis      : {rate:9.0f} observations/s  {1e6 / rate:7.1f} µs each", end="")
                print(f" ({cpu * 1e6:.1f} µs CPU in the app),\n      {counts}")
    print("\n2. rights checks (check_rights + commit), detection off and on, alternated passes")
    for backend in backends():
        with scratch_runtime(backend) as runtime:
            prefix = f"bench:{uuid.uuid4().hex[:8]}:"
            factory: Callable[[], CounterStore]
            if redis_url:
                factory, store = (lambda p=prefix: RedisStore.from_url(redis_url, prefix=p)), "Redis"
            else:
                factory, store = MemoryStore, "in process"
            before = RedisCounts.of(redis_url) if redis_url else None
            off, on, checks = compare(runtime, factory, args.seconds)
            cost = (off - on) / off * 100
            print(
                f"   {backend:10s} ({store}): {checks} checks each way; off {off:6.0f} checks/s, "
                f"on {on:6.0f} checks/s: detection is {cost:5.1f} % of the service call alone "
                "(the goal is for the route: part 3)"
            )
            if redis_url and before is not None:
                after = RedisCounts.of(redis_url)
                print(f"      {after.per_observation(before, after.scripts - before.scripts)}")
    if args.http_seconds > 0 and redis_url:
        print("\n3. POST /api/v1/rights-checks over HTTP, the same app served with detection off and on")
        for backend in backends():
            over_http(backend, redis_url, seconds=args.http_seconds, connections=args.connections, workers=args.workers)


if __name__ == "__main__":
    main(sys.argv[1:])
