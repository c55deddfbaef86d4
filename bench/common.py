"""What benchmarks share: a scratch database per backend, the same runtime the app builds."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from itertools import groupby
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from rempart.config import Settings
from rempart.db import make_engine
from rempart.demo import PRODUCTS, product_guarantees
from rempart.insurers.models import Insurer
from rempart.insurers.service import create_insurer, create_product
from rempart.members.service import write_members
from rempart.members.synth import synth_members
from rempart.members.validation import MemberRecord
from rempart.migrate import upgrade
from rempart.protection.kek import LocalKeyRing
from rempart.runtime import Runtime

PG_URL = os.environ.get("REMPART_BENCH_DATABASE_URL") or os.environ.get(
    "REMPART_TEST_DATABASE_URL", "postgresql://127.0.0.1:5432/test"
)


def backends() -> list[str]:
    """SQLite always; PostgreSQL when it answers."""
    names = ["sqlite"]
    try:
        engine = create_engine(make_url(PG_URL).set(drivername="postgresql+psycopg"))
        with engine.connect():
            names.append("postgresql")
        engine.dispose()
    except Exception:  # noqa: BLE001 - any failure means "not available here"
        print(f"(PostgreSQL at {PG_URL} does not answer: SQLite only)")
    return names


@contextmanager
def scratch_runtime(backend: str, **settings: object) -> Iterator[Runtime]:
    """A migrated, empty database of its own, dropped afterwards."""
    with tempfile.TemporaryDirectory(prefix="rempart-bench-") as tmp:
        kek = Path(tmp) / "kek.json"
        kek.write_text(LocalKeyRing.new_document("kek-bench"))
        if backend == "sqlite":
            url = f"sqlite:///{tmp}/bench.db"
            admin = None
            name = ""
        else:
            name = f"rempart_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(make_url(PG_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = make_url(PG_URL).set(drivername="postgresql+psycopg", database=name).render_as_string(False)
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        runtime = Runtime.build(
            Settings(environment="test", database_url=url, kek_file=kek, var_dir=Path(tmp), **settings)  # type: ignore[arg-type]
        )
        try:
            yield runtime
        finally:
            runtime.close()
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


def load_population(
    runtime: Runtime, *, amc_number: str, name: str, members: int, seed: int, today: date
) -> tuple[Insurer, list[MemberRecord]]:
    """An insurer with the demo's products and ``members`` synthetic contracts, written in batches."""
    with runtime.sessions.begin() as session:
        insurer = create_insurer(session=session, keys=runtime.keys, amc_number=amc_number, name=name)
        for code, (label, rate, flat, ceiling) in PRODUCTS.items():
            create_product(
                session=session,
                insurer_id=insurer.id,
                code=code,
                name=label,
                guarantees=product_guarantees(rate, flat, ceiling),
            )
    records = list(synth_members(count=members, seed=seed, product_codes=list(PRODUCTS), today=today))
    contracts = [list(family) for _, family in groupby(records, key=lambda r: r.member_number)]
    for start in range(0, len(contracts), 500):
        with runtime.sessions.begin() as session:
            write_members(
                session=session,
                keys=runtime.keys,
                insurer_id=insurer.id,
                records=[r for family in contracts[start : start + 500] for r in family],
                today=today,
            )
    return insurer, records


# Detection learns when practices work: checks on a Sunday or at night raise a once-a-day notice per
# client, professional and practice, and that one-off cost would land in whichever phase first
# crosses the threshold, depending on when the benchmark is run. Benchmarks therefore show
# detection a Tuesday morning: the real clock shifted by a fixed offset, the same in every process
# (computed once by the runner and handed to the servers in REMPART_BENCH_CLOCK_OFFSET).
CLOCK_OFFSET_VARIABLE = "REMPART_BENCH_CLOCK_OFFSET"


def working_day_offset(now: datetime | None = None) -> float:
    """Seconds from now to this week's Tuesday at 10:00 in Paris."""
    here = (now or datetime.now(UTC)).astimezone(ZoneInfo("Europe/Paris"))
    tuesday = (here - timedelta(days=here.weekday() - 1)).replace(hour=10, minute=0, second=0, microsecond=0)
    return (tuesday - here).total_seconds()


class ShiftedClock:
    """The real clock plus a fixed offset (detection's ``Clock``)."""

    def __init__(self, offset_seconds: float) -> None:
        self.offset = timedelta(seconds=offset_seconds)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def wait_until_serving(
    ports: list[int], processes: list[subprocess.Popen[bytes]], log_path: Path, timeout: float = 60.0
) -> None:
    """Block until every server answers ``/healthz``; if one exits or time runs out, raise with the
    end of the servers' log."""
    deadline = time.monotonic() + timeout
    for port in ports:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)


# -- where the CPU goes -----------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux ``/proc``); 0 once it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state is field 3
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14 and 15)


def _postgres_cpu() -> float:
    """CPU seconds of every process named postgres on this machine (their sum, including other
    clients' backends: read it as an upper bound when the machine is shared)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += _process_cpu(int(entry.name))
            except OSError:
                continue
    return total


class CpuMeter:
    """CPU seconds spent, between two readings, by the server processes, Redis, PostgreSQL and
    this process (the load generator): what a request costs each part, whatever the machine's
    other work does to the throughput."""

    def __init__(self, server_pids: list[int], *, redis_url: str = "", postgresql: bool = False) -> None:
        self.server_pids = server_pids
        self.redis = redis.Redis.from_url(redis_url) if redis_url else None
        self.postgresql = postgresql

    def reading(self) -> dict[str, float]:
        parts = {"server": sum(_process_cpu(pid) for pid in self.server_pids), "load": time.process_time()}
        if self.redis is not None:
            info = self.redis.info("cpu")
            parts["Redis"] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        if self.postgresql:
            parts["PostgreSQL"] = _postgres_cpu()
        return parts

    @staticmethod
    def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {part: after[part] - before[part] for part in before}
