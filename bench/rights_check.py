"""Rights checks per second and their latency through the whole stack, against a bare indexed
lookup served by the same server in the same run: ``python -m bench.rights_check``.

For each backend (SQLite, and PostgreSQL when it answers) the benchmark:

1. builds a scratch database: an insurer with the demo products, ``--members`` synthetic contracts,
   ``--practices`` pharmacies each with its own practice-software client (private_key_jwt) and a
   few patients of its own (a pharmacy checks the same faces all day; detection would rightly slow
   down a client sweeping through thousands of distinct people);
2. starts ``--workers`` (2) server processes of ``bench.rights_check_app:app``, one port each, on
   127.0.0.1, the load spread evenly over them as a load balancer would (Redis for detection
   and DPoP replay when it answers, the application role under PostgreSQL row-level security);
3. fetches one DPoP-bound token per client, signs a fresh DPoP proof for every request beforehand
   (in two processes, before the clock starts: the load generator shares the machine);
4. measures, with keep-alive HTTP/1.1 connections from one asyncio process:
   - ``full``: closed loop on ``POST /api/v1/rights-checks`` — auth (token, DPoP signature and
     replay check, acting professional), blind index, coverage, access log, detection;
   - ``bare``: closed loop on ``POST /bench/bare-lookup`` — parse, one indexed SELECT, answer;
   - ``paced``: open loop at ``--rate`` checks/s (latency counted from the scheduled send time, so
     a stalled server shows in p99);
5. reports checks/s, p50/p99, the share of the bare lookup, and the goals of issue 4; and, for
   context, the same servers answering a no-op route on the event loop and in a worker thread
   (``noop``, ``noop-thread``: the framework alone, and with the hop every database route makes).

Bounded: every phase lasts ``--seconds`` (default 5; full and bare alternate ``--rounds`` times, 3,
so that the machine's other work falls on both alike) and stops early if its pre-signed requests
run out; the whole run takes about a minute and a half per backend.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis
from joserfc import jwt
from joserfc.jwk import ECKey
from stdnum import luhn

from bench.common import (
    CLOCK_OFFSET_VARIABLE,
    CpuMeter,
    backends,
    load_population,
    scratch_runtime,
    wait_until_serving,
    working_day_offset,
)
from rempart.eligibility.service import RightsQuery, check_rights
from rempart.identity.clients import create_client
from rempart.identity.context import TOKEN_PATH
from rempart.identity.deps import ACTING_RPPS_HEADER
from rempart.identity.permissions import Role, permissions_of
from rempart.identity.principal import Channel, PracticePrincipal
from rempart.identity.tokens import ASSERTION_TYPE, GRANT_TYPE
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.professionals.service import attach_professional, create_practice, register_professional
from rempart.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
AMC = "88450101"
ORIGIN = "http://127.0.0.1:8000"  # the public origin DPoP proofs name (the server's setting)
CHECK_PATH = "/api/v1/rights-checks"
BARE_PATH = "/bench/bare-lookup"
# The framework alone, on the event loop and in a worker thread (bench.rights_check_app).
NOOP_PATHS = {"noop": "/bench/noop", "noop-thread": "/bench/noop-thread"}
REDIS_URL = os.environ.get("REMPART_BENCH_REDIS_URL") or os.environ.get(
    "REMPART_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"
)
GOALS = {"sqlite": 3000, "postgresql": 2000}
CLOCK_OFFSET = working_day_offset()  # detection sees a Tuesday morning (bench.common)
THREADS = int(os.environ.get("REMPART_BENCH_THREADS", "12"))  # per server process, for synchronous routes
REQUEST_TIMEOUT = 30.0  # seconds; an answer slower than this counts as an error (status 0)


# -- the scratch world -------------------------------------------------------------------------------


@dataclass
class Pharmacy:
    client_id: uuid.UUID
    practice_id: uuid.UUID
    professional_id: uuid.UUID
    rpps: str
    signing_key: ECKey
    dpop_key: ECKey
    patients: list[MemberRecord]
    token: str = ""

    def caller(self) -> PracticePrincipal:
        """The principal the API makes of this pharmacy's software, for in-process measurements."""
        return PracticePrincipal(
            practice_id=self.practice_id,
            professional_id=self.professional_id,
            rpps=self.rpps,
            profession=Profession.PHARMACIST,
            permissions=permissions_of(frozenset({Role.PRACTICE_SOFTWARE})),
            channel=Channel.API,
            client_id=self.client_id,
        )


def _rpps(rng: random.Random) -> str:
    body = "10" + "".join(rng.choice("0123456789") for _ in range(8))
    return body + luhn.calc_check_digit(body)


@dataclass
class World:
    pharmacies: list[Pharmacy]
    ended: MemberRecord | None  # a member whose contract has ended, for the miss timings


def build_world(runtime: Runtime, *, members: int, practices: int, per_practice: int) -> World:
    today = datetime.now(UTC).date()
    now = datetime.now(UTC)
    rng = random.Random(4)
    _insurer, records = load_population(
        runtime, amc_number=AMC, name="Mutuelle du banc d'essai", members=members, seed=9, today=today
    )
    in_force = [r for r in records if r.contract_start <= today and (r.contract_end is None or today <= r.contract_end)]
    rng.shuffle(in_force)
    pharmacies = []
    with runtime.sessions.begin() as session:
        for n in range(practices):
            practice = create_practice(
                session=session,
                name=f"Pharmacie {n}",
                profession=Profession.PHARMACIST,
                finess=f"{900_000_000 + n:09d}",
            )
            professional = register_professional(session=session, rpps=_rpps(rng), profession=Profession.PHARMACIST)
            attach_professional(session=session, practice_id=practice.id, professional_id=professional.id, now=now)
            signing = ECKey.generate_key("P-256", private=True)
            client, _ = create_client(
                session=session,
                practice_id=practice.id,
                name="Logiciel de facturation",
                public_jwk=dict(signing.as_dict(private=False)),
                now=now,
            )
            pharmacies.append(
                Pharmacy(
                    client_id=client.id,
                    practice_id=practice.id,
                    professional_id=professional.id,
                    rpps=professional.rpps,
                    signing_key=signing,
                    dpop_key=ECKey.generate_key("P-256", private=True),
                    patients=in_force[n * per_practice : (n + 1) * per_practice],
                )
            )
    if any(len(p.patients) < per_practice for p in pharmacies):
        raise SystemExit("not enough members in force for that many practices: raise --members")
    ended = next((r for r in records if r.contract_end is not None and r.contract_end < today), None)
    return World(pharmacies, ended)


def miss_timings(runtime: Runtime, world: World, *, rounds: int) -> dict[str, list[float]]:
    """The rights check service, in process, for a hit and each kind of miss, interleaved round by
    round so that the machine's noise falls on every kind alike (detection and HTTP left out)."""
    first, ended = world.pharmacies[0], world.ended
    caller = first.caller()
    patient, other = first.patients[0], first.patients[1]
    base = RightsQuery(AMC, patient.member_number, patient.nir, patient.birth_date, patient.birth_rank)
    kinds = {
        "hit": base,
        "unknown insurer": replace(base, amc_number="99999999"),
        "unknown card": replace(base, member_number="0999999999"),
        "wrong NIR": replace(base, nir=other.nir),
        "wrong date of birth": replace(base, birth_date=patient.birth_date - timedelta(days=1)),
    }
    if ended is not None:
        kinds["ended contract"] = RightsQuery(AMC, ended.member_number, ended.nir, ended.birth_date, ended.birth_rank)
    samples: dict[str, list[float]] = {name: [] for name in kinds}
    now = datetime.now(UTC)
    for round_no in range(rounds + 20):
        for name, query in kinds.items():
            started = time.perf_counter()
            with runtime.sessions() as session:
                check_rights(session=session, keys=runtime.keys, caller=caller, query=query, now=now)
            if round_no >= 20:  # the first rounds warm caches up
                samples[name].append(time.perf_counter() - started)
    return samples


# -- signing, ahead of time --------------------------------------------------------------------------


def _b64url_sha256(value: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest()).rstrip(b"=").decode()


def dpop_proof(key: ECKey, *, method: str, url: str, iat: int, access_token: str | None = None) -> str:
    claims: dict[str, Any] = {"jti": uuid.uuid4().hex, "htm": method, "htu": url, "iat": iat}
    if access_token is not None:
        claims["ath"] = _b64url_sha256(access_token)
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    return jwt.encode(header, claims, key, algorithms=["ES256"], default_type=None)


def _sign_batch(job: tuple[dict[str, Any], str, int, int]) -> list[str]:
    """In a worker process: ``count`` proofs for one client's key and token."""
    private_jwk, token, iat, count = job
    key = ECKey.import_key(private_jwk)
    return [dpop_proof(key, method="POST", url=ORIGIN + CHECK_PATH, iat=iat, access_token=token) for _ in range(count)]


def check_requests(pharmacies: list[Pharmacy], count: int, pool: ProcessPoolExecutor) -> list[bytes]:
    """``count`` complete HTTP requests, round robin over pharmacies and their patients."""
    per = -(-count // len(pharmacies))
    iat = int(time.time())
    jobs = [(p.dpop_key.as_dict(private=True), p.token, iat, per) for p in pharmacies]
    proofs = list(pool.map(_sign_batch, jobs, chunksize=max(1, len(jobs) // 8)))
    out: list[bytes] = []
    for i in range(per):
        for p, mine in zip(pharmacies, proofs, strict=True):
            patient = p.patients[i % len(p.patients)]
            body = json.dumps(
                {
                    "amc_number": AMC,
                    "member_number": patient.member_number,
                    "nir": patient.nir,
                    "birth_date": patient.birth_date.isoformat(),
                    "birth_rank": patient.birth_rank,
                }
            ).encode()
            head = (
                f"POST {CHECK_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nAuthorization: DPoP {p.token}\r\nDPoP: {mine[i]}\r\n"
                f"{ACTING_RPPS_HEADER}: {p.rpps}\r\n\r\n"
            )
            out.append(head.encode() + body)
    return out[:count]


def bare_requests(pharmacies: list[Pharmacy]) -> list[bytes]:
    out = []
    for p in pharmacies:
        for patient in p.patients:
            body = json.dumps({"amc_number": AMC, "member_number": patient.member_number}).encode()
            head = (
                f"POST {BARE_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            out.append(head.encode() + body)
    return out


# -- the server --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(runtime: Runtime, *, workers: int, redis_url: str, in_flight: int) -> Iterator[tuple[list[int], list[int]]]:
    """``workers`` server processes, each ``uvicorn bench.rights_check_app:app`` on a port of its own.

    Not ``uvicorn --workers N``: its processes share one listening socket, and a burst of new
    connections mostly lands on whichever process is awake, so one process would serve most of the
    load while the other idles. The load generator spreads its connections over the ports evenly,
    as a load balancer in front of the processes would.
    """
    settings = runtime.settings
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}",
        "REMPART_ENVIRONMENT": "development",
        "REMPART_DATABASE_URL": settings.database_url,
        "REMPART_KEK_FILE": str(settings.kek_file),
        "REMPART_VAR_DIR": str(settings.var_dir),
        "REMPART_REDIS_URL": redis_url,
        "REMPART_PUBLIC_ORIGIN": ORIGIN,
        "REMPART_LOG_JSON": "true",
        "REMPART_SERVER_THREADS": str(THREADS),
        "REMPART_MAX_IN_FLIGHT": str(in_flight),
        CLOCK_OFFSET_VARIABLE: str(CLOCK_OFFSET),
    }
    ports = [_free_port() for _ in range(workers)]
    log_path = Path(settings.var_dir) / "server.log"
    log_file = log_path.open("w")

    def command(port: int) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", "bench.rights_check_app:app",
            "--host", "127.0.0.1", "--port", str(port),
            # --limit-concurrency counts connections and tasks together.
            "--no-access-log", "--log-level", "warning", "--limit-concurrency", str(2 * in_flight + 8),
        ]  # fmt: skip

    processes = [
        subprocess.Popen(command(port), cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT) for port in ports
    ]
    try:
        wait_until_serving(ports, processes, log_path)
        yield ports, [process.pid for process in processes]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        log_file.close()
        errors = [line for line in log_path.read_text().splitlines() if "error" in line.lower()]
        if errors:
            print(f"  server log: {len(errors)} error line(s), e.g. {errors[0][:200]}")
        keep = os.environ.get("REMPART_BENCH_KEEP_LOG")
        if keep:
            Path(keep).write_text(log_path.read_text())


def fetch_tokens(ports: list[int], pharmacies: list[Pharmacy]) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}") as client:
        for p in pharmacies:
            now = int(time.time())
            assertion = jwt.encode(
                {"alg": "ES256", "kid": p.signing_key.thumbprint()},
                {
                    "iss": str(p.client_id),
                    "sub": str(p.client_id),
                    "aud": ORIGIN + TOKEN_PATH,
                    "iat": now,
                    "exp": now + 60,
                    "jti": uuid.uuid4().hex,
                },
                p.signing_key,
                algorithms=["ES256"],
            )
            response = client.post(
                TOKEN_PATH,
                data={"grant_type": GRANT_TYPE, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion},
                headers={"DPoP": dpop_proof(p.dpop_key, method="POST", url=ORIGIN + TOKEN_PATH, iat=now)},
            )
            response.raise_for_status()
            p.token = response.json()["access_token"]


# -- the load ----------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds
    statuses: Counter[int] = field(default_factory=Counter)
    ran_out: bool = False
    cpu: Counter[str] = field(default_factory=Counter)  # CPU seconds per part (CpuMeter)

    @classmethod
    def merged(cls, name: str, rounds: list[Phase]) -> Phase:
        whole = cls(name)
        for phase in rounds:
            whole.seconds += phase.seconds
            whole.latencies.extend(phase.latencies)
            whole.statuses.update(phase.statuses)
            whole.ran_out |= phase.ran_out
            whole.cpu.update(phase.cpu)
        return whole

    @property
    def done(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def cpu_ms(self, part: str) -> float:
        """CPU milliseconds per answered request spent by ``part``."""
        return self.cpu[part] / self.done * 1000 if self.done else float("nan")

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def closed_loop(
    ports: list[int], requests: list[bytes], *, connections: int, seconds: float, name: str, cycle: bool = False
) -> Phase:
    """Every connection sends its next request as soon as the last is answered. Pre-signed requests
    are sent once each (a DPoP proof is single-use); with ``cycle``, the list is sent over and over."""
    phase = Phase(name)
    cursor = _cycle(requests) if cycle else iter(requests)
    started = time.perf_counter()
    stop = started + seconds

    async def worker(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop:
                request = next(cursor, None)
                if request is None:
                    phase.ran_out = True
                    return
                t0 = time.perf_counter()
                try:
                    status = await asyncio.wait_for(_exchange(reader, writer, request), REQUEST_TIMEOUT)
                except (OSError, asyncio.IncompleteReadError, TimeoutError):
                    status = 0  # connection lost or no answer in time: counted, then reconnect
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                phase.latencies.append(time.perf_counter() - t0)
                phase.statuses[status] += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker(ports[i % len(ports)]) for i in range(connections)))
    phase.seconds = time.perf_counter() - started
    return phase


def _cycle(items: list[bytes]) -> Iterator[bytes]:
    while True:
        yield from items


async def open_loop(ports: list[int], requests: list[bytes], *, rate: float, seconds: float, connections: int) -> Phase:
    phase = Phase("paced")
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    total = min(len(requests), int(rate * seconds))
    phase.ran_out = total < int(rate * seconds)

    async def producer() -> None:
        start = time.perf_counter() + 0.05
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((due, requests[i]))
        for _ in range(connections):
            queue.put_nowait(None)

    async def worker(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (item := await queue.get()) is not None:
                due, request = item
                try:
                    status = await asyncio.wait_for(_exchange(reader, writer, request), REQUEST_TIMEOUT)
                except (OSError, asyncio.IncompleteReadError, TimeoutError):
                    status = 0
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                phase.latencies.append(time.perf_counter() - due)
                phase.statuses[status] += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(producer(), *(worker(ports[i % len(ports)]) for i in range(connections)))
    phase.seconds = time.perf_counter() - started
    return phase


# -- the run -----------------------------------------------------------------------------------------


def redis_available() -> str:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError:
        print(f"(Redis at {REDIS_URL} does not answer: detection and replay stores stay in process)")
        return ""
    return REDIS_URL


def run_backend(backend: str, args: argparse.Namespace, pool: ProcessPoolExecutor) -> dict[str, Phase]:
    redis_url = redis_available()
    with scratch_runtime(backend, redis_url=redis_url) as runtime:
        t0 = time.perf_counter()
        world = build_world(
            runtime, members=args.members, practices=args.practices, per_practice=args.patients_per_practice
        )
        pharmacies = world.pharmacies
        print(f"[{backend}] world: {args.members} contracts, {len(pharmacies)} pharmacies "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)  # fmt: skip
        misses = miss_timings(runtime, world, rounds=args.miss_rounds)
        # Each process may have every client connection in flight at once.
        with server(runtime, workers=args.workers, redis_url=redis_url, in_flight=args.connections) as (ports, pids):
            meter = CpuMeter(pids, redis_url=redis_url, postgresql=backend == "postgresql")

            def measured(phase_run: Coroutine[Any, Any, Phase]) -> Phase:
                before = meter.reading()
                phase = asyncio.run(phase_run)
                phase.cpu.update(meter.spent(before, meter.reading()))
                return phase

            fetch_tokens(ports, pharmacies)
            bare = bare_requests(pharmacies)
            phases: dict[str, Phase] = {}
            # Warm-up: every worker, connection pool, key cache and prepared statement, and a dozen
            # checks per client so that detection's once-a-day notices (out of the usual hours on a
            # weekend, say) are raised before the clock starts rather than inside one phase.
            warm = check_requests(pharmacies, len(pharmacies) * 12, pool)
            asyncio.run(closed_loop(ports, warm[:20], connections=1, seconds=10, name="warm"))
            asyncio.run(closed_loop(ports, warm[20:], connections=args.connections, seconds=10, name="warm"))
            asyncio.run(closed_loop(ports, bare, connections=args.connections, seconds=1, name="bare", cycle=True))

            # Full and bare alternate, round after round, so that whatever else the machine is
            # doing falls on both alike; the share is taken over all rounds.
            full_rounds, bare_rounds = [], []
            for _ in range(args.rounds):
                requests = check_requests(pharmacies, int(args.max_rate * args.seconds), pool)
                each = {"connections": args.connections, "seconds": args.seconds}
                full_rounds.append(measured(closed_loop(ports, requests, **each, name="full")))
                time.sleep(1)  # let the server finish what the closed loop left in flight
                bare_rounds.append(measured(closed_loop(ports, bare, **each, name="bare", cycle=True)))
                time.sleep(1)
            phases["full"], phases["bare"] = Phase.merged("full", full_rounds), Phase.merged("bare", bare_rounds)
            # Where the bare lookup's ceiling comes from: the framework alone, then with the hop to a
            # worker thread that every route reading the database makes. One round each: context
            # for the figures above, not part of the goals.
            for name, path in NOOP_PATHS.items():
                noop = [f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()]
                phases[name] = measured(closed_loop(ports, noop, **each, name=name, cycle=True))
                time.sleep(1)
            ROUND_SHARES[backend] = [f.rate / b.rate for f, b in zip(full_rounds, bare_rounds, strict=True) if b.rate]
            if phases["full"].rate >= args.rate:
                paced = check_requests(pharmacies, int(args.rate * args.seconds), pool)
                time.sleep(2)
                phases["paced"] = asyncio.run(
                    open_loop(ports, paced, rate=args.rate, seconds=args.seconds, connections=args.connections)
                )
            # Below that throughput the paced phase could only queue up: it is not run.
            # And at half the throughput just measured: the latency of a server that keeps up.
            half = max(1.0, phases["full"].rate / 2)
            paced_half = check_requests(pharmacies, int(half * args.seconds), pool)
            time.sleep(2)
            phases["half"] = asyncio.run(
                open_loop(ports, paced_half, rate=half, seconds=args.seconds, connections=args.connections)
            )
            phases["half"].name = f"@{half:.0f}/s"
    MISSES[backend] = misses
    return phases


MISSES: dict[str, dict[str, list[float]]] = {}
ROUND_SHARES: dict[str, list[float]] = {}


def report(backend: str, phases: dict[str, Phase], args: argparse.Namespace) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\n[{backend}] {args.workers} server processes, {args.connections} connections, "
        f"{os.cpu_count()} cores, load average {load} (other work on the machine shares the cores)"
    )
    print(f"  {'phase':<12}{'requests':>10}{'errors':>8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for phase in phases.values():
        note = "  (pre-signed requests ran out)" if phase.ran_out else ""
        print(
            f"  {phase.name:<12}{phase.done:>10}{phase.errors:>8}{phase.rate:>10.0f}"
            f"{phase.pct(0.5):>9.2f}{phase.pct(0.99):>9.2f}{note}"
        )
        if phase.errors:
            print(f"         statuses: {dict(phase.statuses)}")
    full, bare, half = phases["full"], phases["bare"], phases["half"]
    paced = phases.get("paced")
    share = full.rate / bare.rate if bare.rate else float("nan")
    goal = GOALS[backend]
    rounds = ", ".join(f"{r:.0%}" for r in ROUND_SHARES.get(backend, []))
    print(
        f"  rights checks: {full.rate:.0f}/s = {share:.0%} of the bare lookup ({bare.rate:.0f}/s); by round: {rounds}"
    )
    if paced is None:
        latency = f"not measured: the server does not reach {args.rate:.0f}/s on this machine now"
    else:
        verdict = "met" if paced.pct(0.99) <= 25 else "NOT met"
        latency = f"{verdict} (p50 {paced.pct(0.5):.1f} ms, p99 {paced.pct(0.99):.1f} ms)"
    print(
        f"  goals: >= {goal}/s {'met' if full.rate >= goal else 'NOT met'}; "
        f">= 50 % of bare {'met' if share >= 0.5 else 'NOT met'}; "
        f"p99 <= 25 ms at {args.rate:.0f}/s {latency}"
    )
    print(
        f"  at half the measured throughput ({half.rate:.0f}/s): "
        f"p50 {half.pct(0.5):.1f} ms, p99 {half.pct(0.99):.1f} ms"
    )
    noops = [phases[name] for name in NOOP_PATHS if name in phases]
    if noops:
        print(
            "  the framework on these servers: "
            + ", ".join(f"{p.name} {p.rate:.0f}/s (server CPU {p.cpu_ms('server'):.2f} ms)" for p in noops)
            + f", bare lookup {bare.rate:.0f}/s ({bare.cpu_ms('server'):.2f} ms)"
        )
    if bare.rate < goal:
        print(
            f"  the goal of {goal}/s is above the bare lookup itself: these servers answer fewer requests"
            " than that for one indexed SELECT with no security work at all"
        )
    print("  CPU per request (ms), by part:")
    for phase in (full, bare, *noops):
        print("    " + f"{phase.name:<12}" + " · ".join(f"{part} {phase.cpu_ms(part):.2f}" for part in phase.cpu))
    full_total, bare_total = (sum(phase.cpu_ms(part) for part in phase.cpu) for phase in (full, bare))
    server_times = full.cpu_ms("server") / bare.cpu_ms("server")
    print(
        f"  a rights check costs the server {server_times:.1f}x the bare lookup's CPU, "
        f"and every part together {full_total / bare_total:.1f}x: on cores doing nothing else, checks could reach "
        f"{bare_total / full_total:.0%} of the bare lookup's throughput"
    )
    misses = MISSES.get(backend, {})
    if misses:
        medians = {name: statistics.median(values) * 1e6 for name, values in misses.items()}
        print("  service time per kind of answer, in process (median µs, interleaved):")
        print("    " + ", ".join(f"{name} {value:.0f}" for name, value in medians.items()))
        miss_medians = [v for name, v in medians.items() if name != "hit"]
        spread = (max(miss_medians) - min(miss_medians)) / min(miss_medians)
        print(f"    spread between kinds of miss: {spread:.0%} of the fastest")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rights_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measured phase")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the full and bare phases")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections of each phase")
    parser.add_argument("--rate", type=float, default=1000.0, help="checks/s of the paced (open-loop) phase")
    parser.add_argument("--max-rate", type=float, default=4000.0, help="pre-signed requests per second of phase")
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--practices", type=int, default=60)
    parser.add_argument("--patients-per-practice", type=int, default=3)
    parser.add_argument("--miss-rounds", type=int, default=300, help="samples per kind of miss (in process)")
    args = parser.parse_args(argv)
    chosen = args.backend or backends()
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = {backend: run_backend(backend, args, pool) for backend in chosen}
    for backend, phases in results.items():
        report(backend, phases, args)


if __name__ == "__main__":
    main(sys.argv[1:])
