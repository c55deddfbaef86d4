"""The Redis counter store: one truth for every app process.

Each observation is one ``EVALSHA`` of ``_OBSERVE``: containment levels, admission, every sliding
window (sorted sets scored by the engine's clock), the practice's usual hours and history, the
insurer-wide and platform-wide HyperLogLogs, and the kill-switch version, in one round trip and
atomically, so that three processes see one sequence of events. Any Redis error fails closed
(``CounterStoreUnavailable``, a 503 on the professional channels).

Key expiry is in real time and only collects garbage; windows are trimmed by score.
"""

from __future__ import annotations

import secrets
from typing import Any

import redis
from redis.commands.core import Script

from rempart.detection.store import (
    Admission,
    AggregateHour,
    CounterStoreUnavailable,
    Observation,
    ObservationResult,
    Role,
    SubjectCounts,
)
from rempart.logs import get_logger

log = get_logger("rempart.detection.store")

_OBSERVE = r"""
-- The arguments come as one string (unit separator between fields) and the answer leaves as one
-- string (commas): packing and parsing some fifty RESP items cost the client more than the script.
local function split(s, sep)
  local t, i = {}, 1
  while true do
    local j = string.find(s, sep, i, true)
    if not j then
      t[#t + 1] = string.sub(s, i)
      return t
    end
    t[#t + 1] = string.sub(s, i, j - 1)
    i = j + 1
  end
end
local ARGV = split(ARGV[1], '\31')
local P = ARGV[1]
local now = tonumber(ARGV[2])
local obs_id, hit, ben, probe = ARGV[3], ARGV[4] == '1', ARGV[5], ARGV[6]
local insurer, device, network, how = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local day, default_off = tonumber(ARGV[11]), ARGV[12] == '1'
local slow_interval, lock_misses = tonumber(ARGV[13]), tonumber(ARGV[14])
local usual_min_total, usual_min_share = tonumber(ARGV[15]), tonumber(ARGV[16])
local decay, n = tonumber(ARGV[17]), tonumber(ARGV[18])
local attempt, lock_ms = ARGV[19], tonumber(ARGV[20])
-- Expiry (real time) only collects the keys of subjects gone quiet; windows are trimmed by score.
local function keep(key, ms)
  redis.call('PEXPIRE', key, ms)
end
local MIN, HOUR, DAY = 60000, 3600000, 86400000
local KEEP_HOUR, KEEP_DAY, KEEP_LONG = 7200000, 93600000, 7776000000

local subj, role, grace = {}, {}, {}
for i = 1, n do
  local b = 20 + 3 * (i - 1)
  subj[i], role[i], grace[i] = ARGV[b + 1], ARGV[b + 2], tonumber(ARGV[b + 3])
end
local actor = subj[1]
local alvl = P .. 'lvl:' .. actor

local lv, pk, pka = {}, {}, {}
local top, gov = 0, ''
for i = 1, n do
  local h = redis.call('HMGET', P .. 'lvl:' .. subj[i], 'lvl', 'until', 'peak', 'peak_at')
  local l, u = tonumber(h[1]) or 0, tonumber(h[2]) or 0
  if l > 0 and (u == 0 or now < u) then lv[i] = l else lv[i] = 0 end
  pk[i], pka[i] = tonumber(h[3]) or 0, tonumber(h[4]) or 0
  if lv[i] > top then top, gov = lv[i], subj[i] end
end
local ks = tonumber(redis.call('GET', P .. 'ks') or '0')

-- Windows are counted by score; a sorted set is trimmed (and its expiry refreshed) only when it
-- gains a member, so a repeated beneficiary costs no write beyond its new score.
local function add(key, member, window, ttl)
  if redis.call('ZADD', key, now, member) == 1 then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    keep(key, ttl)
  end
end
local function since(key, window)
  return redis.call('ZCOUNT', key, '(' .. (now - window), '+inf')
end

local adm, retry = 'admitted', 0
if top >= 4 then
  adm = 'suspended'
elseif top == 3 then
  adm = 'stepped_up'
else
  -- The identity lock: this card and NIR missed here (this actor or practice) with another date of
  -- birth (or birth rank) within the lock period. Decided from the probe's history only, before
  -- this attempt counts, never from whether this attempt matches.
  if probe ~= '' then
    for i = 1, n do
      if role[i] == 'A' or role[i] == 'P' then
        local tried = redis.call('ZRANGEBYSCORE', P .. 'pm:' .. subj[i] .. ':' .. probe, '(' .. (now - lock_ms), '+inf',
          'WITHSCORES')
        local others, last = 0, 0
        for j = 1, #tried, 2 do
          if tried[j] ~= attempt then
            others = others + 1
            last = math.max(last, tonumber(tried[j + 1]))
          end
        end
        if others >= lock_misses then
          adm, gov, retry = 'identity_locked', actor, math.max(retry, last + lock_ms - now)
        end
      end
    end
  end
  if adm == 'admitted' and top == 2 then
    local last = tonumber(redis.call('HGET', alvl, 'slow_last') or '0')
    if now - last < slow_interval then
      adm, retry = 'slowed', slow_interval - (now - last)
    else
      redis.call('HSET', alvl, 'slow_last', now)
      redis.call('PEXPIRE', alvl, KEEP_LONG)
    end
  end
end
if adm ~= 'admitted' then
  local rej
  if adm == 'identity_locked' then
    -- Counted within the hour: a locked card now and then (a typo corrected) never adds up.
    local rk = P .. 'lockrej:' .. actor
    add(rk, obs_id, HOUR, KEEP_HOUR)
    rej = since(rk, HOUR)
  else
    rej = redis.call('HINCRBY', alvl, 'rej', 1)
    redis.call('PEXPIRE', alvl, KEEP_LONG)
  end
  local out = {adm, retry, rej, gov, 0, 0, 0, 0, 0, ks}
  -- A locked identity tried again: the actor's retried identities, misses and distinct identities
  -- within the hour (the engine's ladder for guessing); nothing else is counted for a refusal.
  local d1, misses, locked = 0, 0, 0
  if adm == 'identity_locked' then
    local lk = P .. 'locked:' .. actor
    if redis.call('ZADD', lk, now, probe) == 1 then
      redis.call('ZREMRANGEBYSCORE', lk, '-inf', now - HOUR)
      keep(lk, KEEP_HOUR)
    end
    locked = redis.call('ZCOUNT', lk, '(' .. (now - HOUR), '+inf')
    d1 = redis.call('ZCOUNT', P .. 'seen:' .. actor, '(' .. (now - HOUR), '+inf')
    misses = redis.call('ZCOUNT', P .. 'mis:' .. actor, '(' .. (now - HOUR), '+inf')
  end
  for i = 1, n do
    local row = {lv[i], pk[i], pka[i], 0, 0, 0, 0, 0, 0, 0, 0, 0, '0', '0', '0'}
    if i == 1 then row[5], row[7], row[11] = d1, misses, locked end
    for _, v in ipairs(row) do
      out[#out + 1] = v
    end
  end
  return table.concat(out, ',')
end

local practice = ''
for i = 1, n do if role[i] == 'P' then practice = subj[i] end end
local off = default_off
if practice ~= '' then
  local hk = P .. 'hours:' .. practice
  local hv = redis.call('HMGET', hk, 't', how)
  local total, bucket = tonumber(hv[1]) or 0, tonumber(hv[2]) or 0
  if total >= usual_min_total then off = bucket < total * usual_min_share end
  redis.call('HINCRBY', hk, how, 1)
  if redis.call('HINCRBY', hk, 't', 1) % 100 == 1 then keep(hk, KEEP_LONG) end
end

local fk = P .. 'fresh:' .. actor
-- A device or network never seen for this actor; only a new network starts a "fresh" period (the
-- routes' device references may change with every session).
local function first_seen(kind, value, marks_fresh)
  if value == '' then return 0 end
  local k = P .. kind .. ':' .. actor
  if redis.call('SISMEMBER', k, value) == 1 then return 0 end
  local before = redis.call('SCARD', k)
  redis.call('SADD', k, value)
  keep(k, KEEP_LONG)
  if before > 0 then
    if marks_fresh then redis.call('SET', fk, now, 'PX', KEEP_LONG) end
    return 1
  end
  return 0
end
local newdev = first_seen('dev', device, false)
local newnet = first_seen('net', network, true)
local fresh = tonumber(redis.call('GET', fk) or '0')

local rows = {}
for i = 1, n do
  local s, r = subj[i], role[i]
  local seen = P .. 'seen:' .. s
  add(seen, ben, DAY, KEEP_DAY)
  local d5, d1, d24 = since(seen, 5 * MIN), since(seen, HOUR), since(seen, DAY)
  local mis = P .. 'mis:' .. s
  -- Distinct identities that missed: the same typo sent twice is one miss.
  if not hit then add(mis, ben, HOUR, KEEP_HOUR) end
  local misses = since(mis, HOUR)
  local unf, mat, ins, locked = 0, 0, 0, 0
  if r == 'A' or r == 'P' then
    local pend = P .. 'pend:' .. s
    if hit then add(pend, ben, DAY, KEEP_DAY) end
    local matured = now - grace[i]
    unf = redis.call('ZCOUNT', pend, '(' .. (now - DAY), matured)
    mat = redis.call('ZCOUNT', seen, '(' .. (now - DAY), matured)
    local ik = P .. 'ins:' .. s
    if hit and insurer ~= '' then add(ik, insurer, DAY, KEEP_DAY) end
    ins = since(ik, DAY)
  end
  if (r == 'A' or r == 'P') and (not hit) and probe ~= '' and attempt ~= '' then
    -- The attempt that missed, under its card and NIR: the next different one is locked out.
    local pmk = P .. 'pm:' .. s .. ':' .. probe
    redis.call('ZADD', pmk, now, attempt)
    redis.call('ZREMRANGEBYSCORE', pmk, '-inf', now - lock_ms)
    keep(pmk, lock_ms + HOUR)
  end
  if r == 'A' then
    locked = since(P .. 'locked:' .. s, HOUR)
  end
  local offc = 0
  if off then
    local ok = P .. 'off:' .. s
    add(ok, obs_id, HOUR, KEEP_HOUR)
    offc = since(ok, HOUR)
  end
  local b5, b1, b24 = 0, 0, 0
  if r == 'P' then
    local hk = P .. 'hist:' .. s
    local h = redis.call('HMGET', hk, 'day', 'dirty', 'c5', 'c1', 'c24', 'b5', 'b1', 'b24')
    local hday = tonumber(h[1]) or day
    local c5, c1, c24 = tonumber(h[3]) or 0, tonumber(h[4]) or 0, tonumber(h[5]) or 0
    b5, b1, b24 = tonumber(h[6]) or 0, tonumber(h[7]) or 0, tonumber(h[8]) or 0
    local rolled = hday ~= day or not h[1]
    if hday ~= day then
      local clean = h[2] ~= '1'
      b5 = math.max(b5 * decay, clean and c5 or 0)
      b1 = math.max(b1 * decay, clean and c1 or 0)
      b24 = math.max(b24 * decay, clean and c24 or 0)
      c5, c1, c24 = 0, 0, 0
    end
    if rolled or d5 > c5 or d1 > c1 or d24 > c24 then
      c5, c1, c24 = math.max(c5, d5), math.max(c1, d1), math.max(c24, d24)
      redis.call('HSET', hk, 'day', day, 'dirty', (hday ~= day) and '0' or (h[2] or '0'),
        'c5', c5, 'c1', c1, 'c24', c24, 'b5', tostring(b5), 'b1', tostring(b1), 'b24', tostring(b24))
      if rolled then keep(hk, KEEP_LONG) end
    end
  end
  rows[i] = {lv[i], pk[i], pka[i], d5, d1, d24, misses, unf, mat, ins, locked, offc,
    tostring(b5), tostring(b1), tostring(b24)}
end

local benp = 0
if hit then
  if practice ~= '' then
    local pby = P .. 'pby:' .. practice
    if redis.call('HSET', pby, ben, actor) == 1 then keep(pby, KEEP_DAY) end
  end
  local bk = P .. 'benp:' .. ben
  if practice ~= '' then add(bk, practice, DAY, KEEP_DAY) else add(bk, actor, DAY, KEEP_DAY) end
  benp = since(bk, DAY)
end
local hour = math.floor(now / HOUR)
local scopes = {'all'}
if insurer ~= '' then scopes[2] = insurer end
for _, sc in ipairs(scopes) do
  local ak = P .. 'agg:' .. sc .. ':' .. hour
  redis.call('PFADD', ak .. ':d', ben)
  if not hit then redis.call('HINCRBY', ak, 'm', 1) end
  if redis.call('HINCRBY', ak, 'c', 1) == 1 then
    -- A new hour for this scope: its buckets live two days.
    keep(ak, 2 * KEEP_DAY)
    keep(ak .. ':d', 2 * KEEP_DAY)
    if sc ~= 'all' then
      redis.call('ZADD', P .. 'activeins', now, sc)
      redis.call('ZREMRANGEBYSCORE', P .. 'activeins', '-inf', now - DAY)
    end
  end
end

local out = {adm, 0, 0, '', newdev, newnet, fresh, off and 1 or 0, benp, ks}
for i = 1, n do
  for _, v in ipairs(rows[i]) do out[#out + 1] = v end
end
return table.concat(out, ',')
"""

_ESCALATE = r"""
local P, subject = ARGV[1], ARGV[2]
local step, until_ms, now, practice = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local k = P .. 'lvl:' .. subject
local h = redis.call('HMGET', k, 'lvl', 'until', 'peak', 'peak_at')
local l, u = tonumber(h[1]) or 0, tonumber(h[2]) or 0
local before = 0
if l > 0 and (u == 0 or now < u) then before = l end
if step <= before then return {before, before} end
local peak, peak_at = tonumber(h[3]) or 0, tonumber(h[4]) or 0
if peak_at <= now - 86400000 then peak = 0 end
redis.call('HSET', k, 'lvl', step, 'until', until_ms, 'rej', 0, 'peak', math.max(peak, step), 'peak_at', now)
if step == 2 then redis.call('HSET', k, 'slow_last', now) end
redis.call('PEXPIRE', k, 7776000000)
if practice ~= '' and redis.call('EXISTS', P .. 'hist:' .. practice) == 1 then
  redis.call('HSET', P .. 'hist:' .. practice, 'dirty', '1')
end
return {before, step}
"""

_FOLLOW_UP = r"""
local P, practice, ben = ARGV[1], ARGV[2], ARGV[3]
redis.call('ZREM', P .. 'pend:' .. practice, ben)
local actor = redis.call('HGET', P .. 'pby:' .. practice, ben)
if actor then
  redis.call('ZREM', P .. 'pend:' .. actor, ben)
  redis.call('HDEL', P .. 'pby:' .. practice, ben)
end
return 1
"""

_PER_SUBJECT = 15
_HEAD = 10


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStore:
    shared = True

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._observe: Script = client.register_script(_OBSERVE)
        self._escalate: Script = client.register_script(_ESCALATE)
        self._follow_up: Script = client.register_script(_FOLLOW_UP)
        self._pepper: bytes | None = None

    @classmethod
    def from_url(cls, url: str, *, prefix: str, timeout: float = 2.0, connect_timeout: float = 1.0) -> RedisStore:
        """A stalled Redis fails the request closed after ``timeout`` seconds; a stopped one at once.
        An observation is never retried: its script may have run."""
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=connect_timeout)
        return cls(client, prefix=prefix)

    def _fail(self, exc: redis.RedisError) -> CounterStoreUnavailable:
        log.error("counter_store_unreachable", error_type=type(exc).__name__)
        return CounterStoreUnavailable()

    def observe(self, obs: Observation) -> ObservationResult:
        args: list[Any] = [
            self.prefix,
            obs.now_ms,
            obs.obs_id,
            "1" if obs.hit else "0",
            obs.beneficiary,
            obs.probe,
            obs.insurer,
            obs.device.replace("\x1f", ""),  # the separator of the packed arguments
            obs.network,
            obs.hour_of_week,
            obs.day,
            "1" if obs.default_off_hours else "0",
            obs.slow_interval_ms,
            obs.identity_lock_misses,
            obs.usual_min_total,
            repr(obs.usual_min_share),
            repr(obs.history_decay),
            len(obs.subjects),
            obs.attempt,
            obs.identity_lock_ms,
        ]
        for spec in obs.subjects:
            args += [spec.key, spec.role.value, spec.grace_ms]
        try:
            answer = self._observe(args=["\x1f".join(map(str, args))])
        except redis.RedisError as exc:
            raise self._fail(exc) from None
        raw = _s(answer).split(",")
        result = ObservationResult(
            admission=Admission(_s(raw[0])),
            retry_after_ms=int(raw[1]),
            rejections=int(raw[2]),
            governing=_s(raw[3]),
            new_device=bool(int(raw[4])),
            new_network=bool(int(raw[5])),
            fresh_since_ms=int(raw[6]),
            off_hours=bool(int(raw[7])),
            beneficiary_practices=int(raw[8]),
            kill_switch_version=int(raw[9]),
        )
        for i, spec in enumerate(obs.subjects):
            row = raw[_HEAD + i * _PER_SUBJECT : _HEAD + (i + 1) * _PER_SUBJECT]
            n = [int(v) for v in row[:12]]
            result.subjects.append(
                SubjectCounts(
                    key=spec.key,
                    role=Role(spec.role),
                    level=n[0],
                    peak=n[1],
                    peak_at_ms=n[2],
                    distinct_5m=n[3],
                    distinct_1h=n[4],
                    distinct_24h=n[5],
                    misses_1h=n[6],
                    unfollowed=n[7],
                    matured=n[8],
                    insurers_24h=n[9],
                    locked_identities_1h=n[10],
                    off_hours_1h=n[11],
                    base_5m=float(_s(row[12])),
                    base_1h=float(_s(row[13])),
                    base_24h=float(_s(row[14])),
                )
            )
        return result

    def follow_up(self, *, practice_key: str, beneficiary: str) -> None:
        try:
            self._follow_up(args=[self.prefix, practice_key, beneficiary])
        except redis.RedisError as exc:
            raise self._fail(exc) from None

    def escalate(
        self, *, subject: str, step: int, until_ms: int, now_ms: int, practice_key: str | None
    ) -> tuple[int, int]:
        try:
            before, after = self._escalate(args=[self.prefix, subject, step, until_ms, now_ms, practice_key or ""])
        except redis.RedisError as exc:
            raise self._fail(exc) from None
        return int(before), int(after)

    def ease(self, *, subject: str, step: int, now_ms: int) -> None:
        try:
            self.client.hset(
                f"{self.prefix}lvl:{subject}",
                mapping={"lvl": 0, "until": 0, "rej": 0, "peak": step, "peak_at": now_ms},
            )
        except redis.RedisError as exc:
            raise self._fail(exc) from None

    def lift(self, *, subject: str, forget_counts: bool) -> None:
        keys = [f"{self.prefix}lvl:{subject}"]
        if forget_counts:
            keys += [f"{self.prefix}{p}:{subject}" for p in ("seen", "mis", "pend", "ins", "locked", "lockrej", "off")]
        try:
            self.client.delete(*keys)
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
        self.client.close()
