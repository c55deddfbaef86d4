"""The Redis counter store: one truth for every app process.

Each observation is one ``EVALSHA`` of ``lua/observe.lua``: containment levels, admission, every sliding
window (sorted sets scored by the engine's clock), the practice's usual hours and history, and the
kill-switch version, in one round trip and
atomically, so that three processes see one sequence of events. Any Redis error fails closed
(``CounterStoreUnavailable``, a 503 on the professional channels).

The insurer-wide and platform-wide counts (alerts of the periodic sweep) are gathered in process and
written once a second.

What keeps an observation cheap (about twenty Redis commands for an ordinary check):
- each subject's scalar state (level, strikes, last miss, the actor's devices and networks, the
  practice's usual hours and daily history) is one hash, read with one ``HMGET`` and written with
  at most one ``HSET``;
- a window is only counted where its signal can reach a step (``Floors``); the identity locks, the
  misses and the locked cards are only looked up when the subject missed recently;
- expiry is set when a subject first fills a window and renewed every 6 h with the trimming, not on
  every write (expiry is real time and only collects the keys of subjects gone quiet); the same
  tidy drops a practice's entries of who checked which beneficiary once the check has left the
  checker's day, so that an active practice's map holds a day of checks, not all of them;
- the command is sent ready-made, its constant parts encoded once, on a connection of the thread's
  own, and the answer comes back as packed binary numbers.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from rempart.detection.store import (
    DAY_MS,
    HOUR_MS,
    KEEP_AGGREGATES_MS,
    Admission,
    AggregateHour,
    CounterStoreUnavailable,
    Observation,
    ObservationResult,
    Rules,
    SubjectCounts,
)
from rempart.logs import get_logger

log = get_logger("rempart.detection.store")


# A line ``-- include: spoil_day.lua`` in a script stands for that file's text.
_INCLUDE = re.compile(r"^-- include: (\S+\.lua)\n", re.MULTILINE)


def _script(name: str) -> str:
    """A Lua script of ``detection/lua``, with the blocks it includes."""
    text = (files("rempart.detection") / "lua" / name).read_text(encoding="utf-8")
    return _INCLUDE.sub(lambda line: _script(line[1]), text)


# Read once, when the module is imported. The escalation and the notice both end by spoiling the
# practice's day for learning (``spoil_day.lua``).
_OBSERVE = _script("observe.lua")
_ESCALATE = _script("escalate.lua")
_NOTICE = _script("notice.lua")
_LIFT = _script("lift.lua")
_FOLLOW_UP = _script("follow_up.lua")

_ADMISSIONS = (
    Admission.ADMITTED,
    Admission.SLOWED,
    Admission.STEPPED_UP,
    Admission.SUSPENDED,
    Admission.IDENTITY_LOCKED,
)
_HEAD = 16
_PER_SUBJECT = 22
_FLUSH_EVERY = 1.0  # seconds
_FLUSH_SCOPES = 1000


@dataclass
class _HourCounts:
    checks: int = 0
    misses: int = 0
    beneficiaries: set[str] = field(default_factory=set)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


def _bulks(values: Iterable[object]) -> bytes:
    return b"".join(_bulk(v if isinstance(v, bytes) else str(v).encode()) for v in values)


class RedisStore:
    shared = True

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._observe_sha = _sha1(_OBSERVE)
        self._escalate: Script = client.register_script(_ESCALATE)
        self._follow_up: Script = client.register_script(_FOLLOW_UP)
        self._lift: Script = client.register_script(_LIFT)
        self._notice: Script = client.register_script(_NOTICE)
        self._pepper: bytes | None = None
        # The observation is sent as one ready-made command on a connection of each thread's own:
        # its constant parts (the rules; an actor's floors and subjects) are encoded once.
        self._local = threading.local()
        self._connections: list[redis.Connection] = []
        self._connections_lock = threading.Lock()
        self._encoded: dict[tuple[int, int], tuple[object, object, bytes]] = {}
        self._rules: tuple[Rules, bytes] | None = None
        self._heads: dict[int, bytes] = {}
        # Insurer-wide and platform-wide counts (for the sweep's alerts) are gathered here and
        # written once a second, not by every observation.
        self._pending_lock = threading.Lock()
        self._pending: dict[tuple[str, int], _HourCounts] = {}
        self._pending_latest: dict[str, int] = {}
        self._flushed = time.monotonic()

    @classmethod
    def from_url(cls, url: str, *, prefix: str, timeout: float = 2.0, connect_timeout: float = 1.0) -> RedisStore:
        """A stalled Redis fails the request closed after ``timeout`` seconds; a stopped one at once.
        An observation is never retried: its script may have run."""
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=connect_timeout)
        return cls(client, prefix=prefix)

    def _fail(self, exc: Exception) -> CounterStoreUnavailable:
        log.error("counter_store_unreachable", error_type=type(exc).__name__)
        return CounterStoreUnavailable()

    # -- the observation ------------------------------------------------------------------------

    def _connection(self) -> redis.Connection:
        conn: redis.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            kwargs = dict(self.client.connection_pool.connection_kwargs)
            conn = redis.Connection(**kwargs)  # type: ignore[no-untyped-call]
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def _constant_args(self, obs: Observation) -> bytes:
        rules = self._rules
        if rules is None or rules[0] is not obs.rules:
            r = obs.rules
            packed = _bulks(
                (
                    r.slow_interval_ms,
                    r.identity_lock_misses,
                    r.identity_lock_ms,
                    r.standing_misses_1h,
                    r.standing_hits_24h,
                    r.usual_min_total,
                    repr(r.usual_min_share),
                    repr(r.history_decay),
                    repr(r.history_growth),
                    r.known_keep_ms,
                    r.network_clean_days,
                    repr(r.returning_credit),
                    r.spread_practices,
                    repr(r.standing_miss_share),
                )
            )
            rules = self._rules = (obs.rules, packed)
        key = (id(obs.subjects), id(obs.floors))
        cached = self._encoded.get(key)
        if cached is None or cached[0] is not obs.subjects or cached[1] is not obs.floors:
            f = obs.floors
            values: list[object] = [
                f.distinct_5m,
                f.distinct_1h,
                f.insurers_24h,
                f.new_24h,
                f.unclaimed_24h,
                f.unclaimed_7d,
                len(obs.subjects),
            ]
            for spec in obs.subjects:
                values += [spec.key, spec.role.value, spec.grace_ms]
            if len(self._encoded) > 10_000:
                self._encoded.clear()
            # The objects are kept with their encoding: their ids cannot be reused while cached.
            cached = self._encoded[key] = (obs.subjects, obs.floors, _bulks(values))
        return rules[1] + cached[2]

    def _command(self, obs: Observation) -> bytes:
        n = len(obs.subjects)
        head = self._heads.get(n)
        if head is None:
            argc = 4 + 12 + 14 + 7 + 3 * n  # EVALSHA sha 0 prefix, the observation, rules, floors, subjects
            head = self._heads[n] = b"*%d\r\n" % argc + _bulks(
                (b"EVALSHA", self._observe_sha.encode(), b"0", self.prefix)
            )
        return (
            head
            + _bulks(
                (
                    obs.now_ms,
                    obs.obs_id,
                    b"1" if obs.hit else b"0",
                    obs.beneficiary,
                    obs.probe,
                    obs.attempt,
                    obs.insurer,
                    obs.device,
                    obs.network,
                    obs.hour_of_week,
                    obs.day,
                    b"1" if obs.default_off_hours else b"0",
                )
            )
            + self._constant_args(obs)
        )

    def _run_observe(self, command: bytes) -> bytes:
        conn = self._connection()
        for _ in range(2):
            try:
                conn.send_packed_command([command], check_health=False)  # type: ignore[no-untyped-call]
                answer = conn.read_response()
            except NoScriptError:
                # A restarted or flushed Redis: load the script; it did not run, so it runs once.
                self.client.script_load(_OBSERVE)
                continue
            except BaseException:
                conn.disconnect()  # type: ignore[no-untyped-call]
                raise
            assert isinstance(answer, bytes)
            return answer
        raise NoScriptError("the observation script could not be loaded")

    def observe(self, obs: Observation) -> ObservationResult:
        try:
            answer = self._run_observe(self._command(obs))
        except (redis.RedisError, OSError) as exc:
            raise self._fail(exc) from None
        n = len(obs.subjects)
        values = _answer_format(n).unpack(answer)
        governing = values[3]
        result = ObservationResult(
            admission=_ADMISSIONS[values[0]],
            retry_after_ms=values[1],
            rejections=values[2],
            governing=obs.subjects[governing - 1].key if governing else "",
            new_device=bool(values[4]),
            new_network=bool(values[5]),
            fresh_since_ms=values[6],
            off_hours=bool(values[7]),
            beneficiary_practices=values[8],
            kill_switch_version=values[9],
            new_beneficiary=bool(values[10]),
            network_fresh=bool(values[11]),
            network_new=values[12],
            network_returning=values[13],
            network_misses=values[14],
            network_checks=values[15],
        )
        for i, spec in enumerate(obs.subjects):
            v = values[_HEAD + i * _PER_SUBJECT : _HEAD + (i + 1) * _PER_SUBJECT]
            result.subjects.append(SubjectCounts(spec.key, spec.role, *v))
        if result.admission is Admission.ADMITTED:
            self._count_aggregates(obs)
        return result

    # -- insurer-wide and platform-wide counts --------------------------------------------------

    def _count_aggregates(self, obs: Observation) -> None:
        hour = obs.now_ms // HOUR_MS
        with self._pending_lock:
            for scope in ("all", obs.insurer) if obs.insurer else ("all",):
                counts = self._pending.get((scope, hour))
                if counts is None:
                    counts = self._pending[(scope, hour)] = _HourCounts()
                counts.checks += 1
                counts.misses += 0 if obs.hit else 1
                counts.beneficiaries.add(obs.beneficiary)
                if scope != "all":
                    self._pending_latest[scope] = max(obs.now_ms, self._pending_latest.get(scope, 0))
            due = time.monotonic() - self._flushed >= _FLUSH_EVERY or len(self._pending) > _FLUSH_SCOPES
        if due:
            self.flush()

    def flush(self) -> None:
        """Write the counts gathered since the last flush (every second, before a sweep reads
        them, and on close). Alerts only: a failed write is logged and its counts are dropped."""
        with self._pending_lock:
            pending, latest = self._pending, self._pending_latest
            self._pending, self._pending_latest, self._flushed = {}, {}, time.monotonic()
        if not pending:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for (scope, hour), counts in pending.items():
                key = f"{self.prefix}agg:{scope}:{hour}"
                pipe.pfadd(f"{key}:d", *counts.beneficiaries)
                pipe.hincrby(key, "c", counts.checks)
                if counts.misses:
                    pipe.hincrby(key, "m", counts.misses)
                pipe.pexpire(key, KEEP_AGGREGATES_MS)
                pipe.pexpire(f"{key}:d", KEEP_AGGREGATES_MS)
            if latest:
                pipe.zadd(f"{self.prefix}activeins", latest, gt=True)
                pipe.zremrangebyscore(f"{self.prefix}activeins", "-inf", max(latest.values()) - DAY_MS)
            pipe.execute()
        except redis.RedisError as exc:
            log.error("aggregates_not_written", error_type=type(exc).__name__)

    def follow_up(self, *, practice_key: str, beneficiary: str) -> None:
        try:
            self._follow_up(args=[self.prefix, practice_key, beneficiary])
        except redis.RedisError as exc:
            raise self._fail(exc) from None

    def escalate(
        self,
        *,
        subject: str,
        step: int,
        until_ms: int,
        now_ms: int,
        practice_key: str | None,
        network: str = "",
    ) -> tuple[int, int]:
        try:
            before, after = self._escalate(
                args=[self.prefix, subject, step, until_ms, now_ms, practice_key or "", network]
            )
        except redis.RedisError as exc:
            raise self._fail(exc) from None
        return int(before), int(after)

    def notice(
        self,
        *,
        subject: str,
        day: int,
        now_ms: int,
        practice_key: str | None,
        network: str = "",
        repeated: bool = True,
    ) -> int:
        try:
            args: list[str | int] = [self.prefix, subject, day, practice_key or "", network, int(repeated)]
            return int(self._notice(args=args))
        except redis.RedisError as exc:
            raise self._fail(exc) from None

    def ease(self, *, subject: str, step: int, now_ms: int) -> None:
        try:
            self.client.hset(
                f"{self.prefix}st:{subject}",
                mapping={"lvl": 0, "until": 0, "rej": 0, "peak": step, "peak_at": now_ms},
            )
        except redis.RedisError as exc:
            raise self._fail(exc) from None

    def lift(self, *, subject: str, forget_counts: bool) -> None:
        try:
            self._lift(args=[self.prefix, subject, "1" if forget_counts else "0"])
        except redis.RedisError as exc:
            raise self._fail(exc) from None

    def insurers_seen(self, *, subject: str, since_ms: int) -> list[str]:
        try:
            members = self.client.zrangebyscore(f"{self.prefix}ins:{subject}", f"({since_ms}", "+inf")
        except redis.RedisError as exc:
            raise self._fail(exc) from None
        return sorted(_s(m) for m in members)

    def kill_switches(self) -> tuple[int, frozenset[tuple[str, str]] | None]:
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.get(f"{self.prefix}ks")
            pipe.smembers(f"{self.prefix}kss")
            version, members = pipe.execute()
        except redis.RedisError as exc:
            raise self._fail(exc) from None
        pairs = (_s(m).split("|", 1) for m in members)
        return int(version or 0), frozenset((scope, target) for scope, target in pairs)

    def publish_kill_switches(self, switches: frozenset[tuple[str, str]]) -> int:
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(f"{self.prefix}kss")
            if switches:
                pipe.sadd(f"{self.prefix}kss", *(f"{scope}|{target}" for scope, target in sorted(switches)))
            pipe.incr(f"{self.prefix}ks")
            return int(pipe.execute()[-1])
        except redis.RedisError as exc:
            raise self._fail(exc) from None

    def aggregates(self, *, scope: str, hours: list[int]) -> list[AggregateHour]:
        self.flush()
        try:
            pipe = self.client.pipeline(transaction=False)
            for hour in hours:
                key = f"{self.prefix}agg:{scope}:{hour}"
                pipe.pfcount(f"{key}:d")
                pipe.hmget(key, ["c", "m"])
            raw = pipe.execute()
        except redis.RedisError as exc:
            raise self._fail(exc) from None
        out = []
        for i, hour in enumerate(hours):
            distinct, (checks, misses) = raw[2 * i], raw[2 * i + 1]
            out.append(AggregateHour(hour, int(distinct), int(checks or 0), int(misses or 0)))
        return out

    def active_insurers(self, *, since_ms: int) -> list[str]:
        self.flush()
        try:
            members = self.client.zrangebyscore(f"{self.prefix}activeins", f"({since_ms}", "+inf")
        except redis.RedisError as exc:
            raise self._fail(exc) from None
        return sorted(_s(m) for m in members)

    def claim(self, *, name: str) -> bool:
        try:
            return bool(self.client.set(f"{self.prefix}claim:{name}", b"1", nx=True, px=3_600_000))
        except redis.RedisError as exc:
            raise self._fail(exc) from None

    def pepper(self) -> bytes:
        if self._pepper is None:
            key = f"{self.prefix}pepper"
            try:
                self.client.set(key, secrets.token_bytes(32), nx=True)
                value = self.client.get(key)
            except redis.RedisError as exc:
                raise self._fail(exc) from None
            assert isinstance(value, bytes)
            self._pepper = value
        return self._pepper

    def ping(self) -> None:
        try:
            self.client.ping()
        except redis.RedisError as exc:
            raise self._fail(exc) from None

    def close(self) -> None:
        self.flush()
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.disconnect()  # type: ignore[no-untyped-call]
        self.client.close()


@lru_cache(maxsize=8)
def _answer_format(subjects: int) -> struct.Struct:
    """The script's answer: sixteen integers, then per subject seventeen integers and five doubles."""
    return struct.Struct(">16q" + "17q5d" * subjects)


def _sha1(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
