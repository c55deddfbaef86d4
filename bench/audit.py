"""The access log: how fast ``audit verify`` checks a large log, and what the log costs the rights
check. ``python -m bench.audit [--events N] [--checks N] [--backend sqlite|postgresql]``.

1. verify: N events are generated inside the database (SQL, no Python per row), numbered as the
   sealer numbers them, then sealed into checkpoints of ``--batch`` events with the sealer's own
   checkpoint builder (what the sealer does minus its UPDATE, timed as "seal (hash+sign)"). Then
   ``verify`` (content digests, chain, signatures, log tree) is timed with one process and with
   ``--jobs`` (default: one per core), each right after the baseline it is compared with: the same
   columns of every event handed over by the database on one connection, unordered and unhashed
   (PostgreSQL: a plain binary COPY; SQLite: the rows fetched as stored, which costs Python more per
   event than verify's stream, so there verify can pass 100 % of it). ``verify --deep`` (every
   leaf and batch root recomputed, on the last ``--deep-events`` at most) is timed too, and the real
   sealer, UPDATE included, on ``--sealer-events`` unsealed events. Goal: verify >= 500,000 events/s.
2. rights check in process: ``check_rights`` (the service the API calls: blind index, contract and
   guarantee lookups, the check row) on a synthetic population, in rounds alternating the log on
   (event recorded, a sealer thread running) and off (``record_access`` replaced by a no-op), same
   process, same database: the log's cost per check in microseconds, and its share of this service
   call alone (a diagnostic: no authentication, DPoP, detection or framework).
3. rights check over HTTP: ``POST /api/v1/rights-checks`` as practice software calls it, the same
   app served twice (``bench.detection_app``, ``REMPART_BENCH_ACCESS_LOG`` on and off, the sealer
   running in both), short slices alternating (``bench.detection.over_http``). Goal: the log costs
   <= 15 % of the rights check's throughput.
"""

from __future__ import annotations

import argparse
import os
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from sqlalchemy import func, select, text
from stdnum import luhn

from bench.common import backends, scratch_runtime
from bench.detection import over_http
from bench.rights_check import redis_available
from rempart.audit.canonical import SELECT_PG, SELECT_SQLITE, batch_bytes
from rempart.audit.content import content_to_sign
from rempart.audit.keys import LocalSigningKeys
from rempart.audit.models import AccessEvent, Checkpoint
from rempart.audit.partitions import ensure_partitions
from rempart.audit.sealing import SealerThread, build_checkpoint, seal_all
from rempart.audit.verify import verify_log
from rempart.demo import PRODUCTS, seed_insurers
from rempart.eligibility import service as eligibility
from rempart.eligibility.service import RightsQuery, check_rights
from rempart.identity.permissions import Role, permissions_of
from rempart.identity.principal import Channel, PracticePrincipal
from rempart.insurers.service import products_by_code
from rempart.members.service import write_members
from rempart.members.synth import synth_members
from rempart.professionals.models import Profession
from rempart.professionals.service import attach_professional, create_practice, register_professional
from rempart.runtime import Runtime

GOAL_VERIFY = 500_000
GOAL_COST = 0.15
CHUNK = 1_000_000
DAYS = 60

# One generated event: a rights check by one of 2,000 API clients of 1,000 pharmacies about one of
# 500,000 people, a third of them misses. UUIDs come from md5 so the generator stays in SQL.
_PG_INSERT = """
INSERT INTO access_events (event_id, occurred_at, operation, purpose, actor_kind, actor_id, practice_id,
    professional_id, profession, channel, device, address, insurer_id, beneficiary_id, fields, outcome,
    reference, seal_seq)
SELECT gen_random_uuid(), CAST(:t0 AS timestamptz) + g * CAST(:step AS interval), 'rights_check',
    'care_eligibility', 'practice_software', CAST(md5('c' || (g % 2000)) AS uuid),
    CAST(md5('p' || (g % 1000)) AS uuid), CAST(md5('r' || (g % 3000)) AS uuid), 'pharmacist', 'pro_api',
    'tok:' || substr(md5('t' || (g % 5000)), 1, 16), '192.0.2.' || (g % 250 + 1), CAST(:insurer AS uuid),
    CASE WHEN g % 3 = 2 THEN NULL ELSE CAST(md5('b' || (g % 500000)) AS uuid) END,
    CASE WHEN g % 3 = 2 THEN '' ELSE :fields END, CASE WHEN g % 3 = 2 THEN 'miss' ELSE 'disclosed' END,
    'chk_' || g, g
FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS g
"""
_SQLITE_INSERT = """
WITH RECURSIVE g(n) AS (SELECT :lo UNION ALL SELECT n + 1 FROM g WHERE n < :hi)
INSERT INTO access_events (event_id, occurred_at, operation, purpose, actor_kind, actor_id, practice_id,
    professional_id, profession, channel, device, address, insurer_id, beneficiary_id, fields, outcome,
    reference, seal_seq)
SELECT lower(hex(randomblob(16))),
    strftime('%Y-%m-%d %H:%M:%S', :t0 + n * :step_us / 1000000, 'unixepoch')
        || '.' || printf('%06d', (n * :step_us) % 1000000),
    'rights_check', 'care_eligibility', 'practice_software', printf('%032x', 1000000 + n % 2000),
    printf('%032x', 2000000 + n % 1000), printf('%032x', 3000000 + n % 3000), 'pharmacist', 'pro_api',
    printf('tok:%016x', n % 5000), '192.0.2.' || (n % 250 + 1), :insurer,
    CASE WHEN n % 3 = 2 THEN NULL ELSE printf('%032x', 4000000 + n % 500000) END,
    CASE WHEN n % 3 = 2 THEN '' ELSE :fields END, CASE WHEN n % 3 = 2 THEN 'miss' ELSE 'disclosed' END,
    'chk_' || n, n
FROM g
"""
_FIELDS = "ceilings_remaining,coverage_period,coverage_status,guarantees,prior_approval_rules,third_party_payment"


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "n/a"


def generate_events(runtime: Runtime, count: int, *, start: datetime) -> float:
    """Insert ``count`` numbered events spread over DAYS days from ``start``; returns seconds."""
    engine = runtime.engine
    postgres = engine.dialect.name == "postgresql"
    step_us = max(1, DAYS * 86_400_000_000 // max(count, 1))
    insurer = uuid.uuid4()
    started = time.perf_counter()
    with runtime.sessions.begin() as session:
        ensure_partitions(session, start=start, months=DAYS // 28 + 1)
    for lo in range(0, count, CHUNK):
        hi = min(count, lo + CHUNK) - 1
        with engine.begin() as conn:
            if postgres:
                params: dict[str, Any] = {
                    "t0": start,
                    "step": f"{step_us} microseconds",
                    "insurer": str(insurer),
                    "fields": _FIELDS,
                    "lo": lo,
                    "hi": hi,
                }
                conn.execute(text(_PG_INSERT), params)
            else:
                conn.execute(
                    text(_SQLITE_INSERT),
                    {
                        "t0": int(start.timestamp()),
                        "step_us": step_us,
                        "insurer": insurer.hex,
                        "fields": _FIELDS,
                        "lo": lo,
                        "hi": hi,
                    },
                )
        print(f"    generated {hi + 1:,} events ({_rate(hi + 1, time.perf_counter() - started)})", flush=True)
    if postgres:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE access_events"))
    return time.perf_counter() - started


def seal_numbered(runtime: Runtime, signer: LocalSigningKeys, count: int, batch: int) -> float:
    """Checkpoints over events already numbered 0..count-1, with the sealer's checkpoint builder."""
    started = time.perf_counter()
    last: Checkpoint | None = None
    now = datetime.now(UTC)
    events = AccessEvent.__table__
    for lo in range(0, count, batch):
        with runtime.sessions.begin() as session:
            earliest, latest = session.execute(
                select(func.min(events.c.occurred_at), func.max(events.c.occurred_at)).where(
                    events.c.seal_seq >= lo, events.c.seal_seq < lo + batch
                )
            ).one()
            conn = session.connection()
            data = batch_bytes(conn, lo, lo + batch)
            last = build_checkpoint(
                last=last,
                data=data,
                content=content_to_sign(conn, lo, lo + batch),
                earliest=earliest,
                latest=latest,
                signer=signer,
                now=now,
            )
            session.add(last)
    return time.perf_counter() - started


def read_ceiling(runtime: Runtime, count: int, *, binary: bool) -> float:
    """The baseline: events per second the database alone hands over on one connection, the same
    columns of every event, no order, not hashed (PostgreSQL: a plain COPY, binary or text, read
    with psycopg's ``Copy``; SQLite: the rows fetched as stored)."""
    started = time.perf_counter()
    with runtime.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            query = (
                f"COPY (SELECT seal_seq, {SELECT_SQLITE} FROM access_events) TO STDOUT (FORMAT binary)"
                if binary
                else f"COPY (SELECT seal_seq, {SELECT_PG} FROM access_events) TO STDOUT"
            )
            with cursor.copy(query) as copy:
                for _chunk in copy:
                    pass
        else:
            result = conn.exec_driver_sql(f"SELECT seal_seq, {SELECT_SQLITE} FROM access_events")
            while result.fetchmany(10_000):
                pass
    return count / (time.perf_counter() - started)


def bench_verify(runtime: Runtime, args: argparse.Namespace) -> dict[str, float]:
    signer = LocalSigningKeys.from_document(LocalSigningKeys.new_document("bench"))
    keys = signer.public_keys()
    count = args.events
    start = datetime.now(UTC) - timedelta(days=DAYS + 1)
    print(f"  generating {count:,} events ...", flush=True)
    generated = generate_events(runtime, count, start=start)
    sealed = seal_numbered(runtime, signer, count, args.batch)
    print(f"  seal (hash+sign, batches of {args.batch:,}): {sealed:.1f} s, {_rate(count, sealed)}", flush=True)

    results = {"events": count, "generate_s": generated, "seal_rate": count / sealed}
    postgres = runtime.engine.dialect.name == "postgresql"
    text_ceiling = read_ceiling(runtime, count, binary=False) if postgres else 0.0
    if postgres:
        print(f"  the old verify stream (text COPY) alone: {text_ceiling:,.0f} events/s", flush=True)
    results["text_ceiling"] = text_ceiling
    for attempt in range(args.repeat):
        for jobs in sorted({1, args.jobs}):
            # The baseline right before each run, so that the machine's other work weighs on both alike.
            ceiling = read_ceiling(runtime, count, binary=postgres)
            report = verify_log(runtime.engine, keys=keys, now=datetime.now(UTC) + timedelta(days=1), jobs=jobs)
            assert report.ok, [p.describe() for p in report.problems[:5]]
            assert report.events == count
            rate = report.events_per_second
            print(
                f"  verify #{attempt + 1} --jobs {jobs} ({report.processes} process(es)): {report.events:,} events, "
                f"{report.checkpoints:,} checkpoints in {report.seconds:.2f} s = {rate:,.0f} events/s; baseline "
                f"just before {ceiling:,.0f}/s, verify at {rate / ceiling:.0%} of it "
                f"(goal {GOAL_VERIFY:,}: {'met' if rate >= GOAL_VERIFY else 'NOT met'})",
                flush=True,
            )
            results[f"verify_rate_jobs{jobs}"] = max(results.get(f"verify_rate_jobs{jobs}", 0.0), rate)
            results[f"ceiling_jobs{jobs}"] = ceiling

    deep_checkpoints = max(1, min(count, args.deep_events) // args.batch)
    total_checkpoints = -(-count // args.batch)
    since = max(1, total_checkpoints - deep_checkpoints + 1)
    deep = verify_log(runtime.engine, keys=keys, since=since, deep=True, now=datetime.now(UTC) + timedelta(days=1))
    assert deep.ok
    print(
        f"  verify --deep (checkpoints {since}..{total_checkpoints}): {deep.events:,} events in "
        f"{deep.seconds:.2f} s = {deep.events_per_second:,.0f} events/s",
        flush=True,
    )
    results["deep_rate"] = deep.events_per_second

    # The real sealer, UPDATE included, on fresh unsealed events.
    with runtime.sessions.begin() as session:
        session.execute(text("DELETE FROM audit_checkpoints"))
        session.execute(text("DELETE FROM access_events"))
    generate_events(runtime, args.sealer_events, start=datetime.now(UTC) - timedelta(days=1))
    with runtime.sessions.begin() as session:
        session.execute(text("UPDATE access_events SET seal_seq = NULL"))
    started = time.perf_counter()
    numbers = seal_all(runtime.sessions, signer=signer, max_batch=args.batch)
    seconds = time.perf_counter() - started
    print(
        f"  sealer (select, hash, sign, UPDATE): {args.sealer_events:,} events in {len(numbers)} checkpoints, "
        f"{seconds:.1f} s = {_rate(args.sealer_events, seconds)}",
        flush=True,
    )
    results["sealer_rate"] = args.sealer_events / seconds
    return results


# -- rights check, log on versus off ----------------------------------------------------------------


def _world(runtime: Runtime, members: int) -> tuple[PracticePrincipal, list[RightsQuery]]:
    insurer = next(i for i in seed_insurers(runtime) if i.amc_number == "88450101")
    today = datetime.now(UTC).date()
    records = list(synth_members(count=members, seed=11, product_codes=list(PRODUCTS), today=today))
    with runtime.sessions.begin() as session:
        products = {code: p.id for code, p in products_by_code(session, insurer.id).items()}
        records = [r for r in records if r.product_code in products]
        write_members(
            session=session,
            keys=runtime.keys,
            insurer_id=insurer.id,
            records=records,
            product_ids=products,
            today=today,
        )
        practice = create_practice(
            session=session, name="Pharmacie du Rempart", profession=Profession.PHARMACIST, finess="750000001"
        )
        rpps = "1000000000" + luhn.calc_check_digit("1000000000")
        professional = register_professional(session=session, rpps=rpps, profession=Profession.PHARMACIST)
        attach_professional(
            session=session, practice_id=practice.id, professional_id=professional.id, now=datetime.now(UTC)
        )
    caller = PracticePrincipal(
        practice_id=practice.id,
        professional_id=professional.id,
        rpps=professional.rpps,
        profession=Profession.PHARMACIST,
        permissions=permissions_of(frozenset({Role.PRACTICE_SOFTWARE})),
        channel=Channel.API,
        client_id=uuid.uuid4(),
        address="192.0.2.10",
        credential_ref="tok:bench",
    )
    queries = []
    for i, r in enumerate(records):
        # One check in ten is a miss (a wrong date of birth), as at a real counter.
        birth = r.birth_date if i % 10 else r.birth_date.replace(day=1 if r.birth_date.day != 1 else 2)
        queries.append(RightsQuery(insurer.amc_number, r.member_number, r.nir, birth, r.birth_rank))
    return caller, queries


_NOT_RECORDED = uuid.UUID(int=0)


def _not_recorded(*_args: object, **_kwargs: object) -> uuid.UUID:
    return _NOT_RECORDED


@contextmanager
def _log_off() -> Iterator[None]:
    """The rights check exactly as with the log, minus ``record_access``."""
    with mock.patch.object(eligibility, "record_practice_access", _not_recorded):
        yield


def _block(runtime: Runtime, caller: PracticePrincipal, queries: list[RightsQuery], count: int) -> float:
    """Seconds for ``count`` rights checks, each in its own transaction as the API runs them."""
    started = time.perf_counter()
    for _ in range(count):
        query = queries[random.randrange(len(queries))]
        with runtime.sessions() as session:  # check_rights commits its access event itself
            check_rights(session=session, keys=runtime.keys, caller=caller, query=query, now=datetime.now(UTC))
    return time.perf_counter() - started


def bench_rights_check(runtime: Runtime, args: argparse.Namespace) -> dict[str, float]:
    """Log on and off alternate in small blocks so that the machine's drift hits both alike; the
    sealer runs throughout (with the log off it finds nothing to seal)."""
    caller, queries = _world(runtime, args.members)
    signer = LocalSigningKeys.from_document(LocalSigningKeys.new_document("bench"))
    _block(runtime, caller, queries, 50)  # warm caches and connections
    seconds = {"on": 0.0, "off": 0.0}
    pair_ratios = []
    sealer = SealerThread(runtime.engine, signer=signer, interval=1.0)
    if not args.no_sealer:
        sealer.start()
    try:
        for pair in range(args.checks // args.block):
            timed = {}
            for mode in ("on", "off") if pair % 2 == 0 else ("off", "on"):
                if mode == "on":
                    timed[mode] = _block(runtime, caller, queries, args.block)
                else:
                    with _log_off():
                        timed[mode] = _block(runtime, caller, queries, args.block)
                seconds[mode] += timed[mode]
            pair_ratios.append(timed["off"] / timed["on"])
    finally:
        if not args.no_sealer:
            sealer.stop()
    seal_all(runtime.sessions, signer=signer)
    each = args.checks // args.block * args.block
    on, off = each / seconds["on"], each / seconds["off"]
    cost = 1 - on / off
    median_cost = 1 - sorted(pair_ratios)[len(pair_ratios) // 2]
    # What the log adds to each check, in microseconds: the figure to hold down as the check itself
    # gets cheaper (the same cost is a larger share of a faster check).
    cost_us = (seconds["on"] - seconds["off"]) / each * 1e6
    with runtime.sessions() as session:
        recorded = session.scalar(text("SELECT count(*) FROM access_events"))
    print(
        f"  check_rights in process{' (sealer stopped)' if args.no_sealer else ''}, {each:,} per mode in blocks "
        f"of {args.block} alternating: log on {on:,.0f}/s, off {off:,.0f}/s: the log is {cost:.1%} of the "
        f"service call alone = {cost_us:,.0f} us per check (median over block pairs {median_cost:.1%}; "
        f"no authentication nor framework: the {GOAL_COST:.0%} goal is for the route, over HTTP below); "
        f"{recorded:,} events recorded and sealed",
        flush=True,
    )
    return {"on": on, "off": off, "cost": cost, "median_cost": median_cost, "cost_us": cost_us}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000, help="events for verify (the issue: 10,000,000)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="verify also run with this many processes (default: cores)",
    )
    parser.add_argument("--batch", type=int, default=10_000, help="events per checkpoint")
    parser.add_argument("--repeat", type=int, default=2, help="verify runs (best is kept)")
    parser.add_argument("--deep-events", type=int, default=200_000, help="events checked by verify --deep")
    parser.add_argument("--sealer-events", type=int, default=100_000, help="events sealed by the real sealer")
    parser.add_argument("--members", type=int, default=2_000, help="population for the rights checks")
    parser.add_argument("--checks", type=int, default=2_000, help="rights checks per mode (log on, log off)")
    parser.add_argument("--block", type=int, default=10, help="checks per block before switching mode")
    parser.add_argument("--no-sealer", action="store_true", help="rights checks without the sealer running")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append", help="default: both")
    parser.add_argument("--http-seconds", type=float, default=12.0, help="per side over HTTP (0: skip)")
    parser.add_argument("--skip-verify", action="store_true")
    parser.add_argument("--skip-rights", action="store_true")
    args = parser.parse_args(argv)
    redis_url = redis_available() if args.http_seconds > 0 and not args.skip_rights else ""
    for backend in args.backend or backends():
        print(f"\n-- {backend}", flush=True)
        if not args.skip_verify:
            with scratch_runtime(backend) as runtime:
                bench_verify(runtime, args)
        if not args.skip_rights:
            with scratch_runtime(backend) as runtime:
                bench_rights_check(runtime, args)
            if redis_url:
                # The rights check as practice software calls it: authentication, DPoP, detection
                # and the answer included, the same app served with the log on and off.
                over_http(
                    backend,
                    redis_url,
                    seconds=args.http_seconds,
                    connections=8,
                    workers=1,
                    switch="REMPART_BENCH_ACCESS_LOG",
                    subject="the access log",
                )
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
