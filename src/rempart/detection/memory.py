"""The in-process counter store: the embedded default, exact, for one app process.

It follows the same rules as the Lua script of ``redis_store`` line for line (``test_stores`` compares
them on a random history); the engine's tests run against both.

What Redis collects by expiry (the keys of subjects gone quiet, of beneficiaries and cards no longer
checked), this store collects by sweeping every ``_TIDY`` of the engine's clock: each window loses
the members older than the longest span any count reads from it (``_KEEP``) and goes once empty;
who checked which beneficiary goes with the checker's pending check; the hourly counts go after
``KEEP_AGGREGATES_MS``, as in Redis. So what it holds is bounded by a day of activity (two days and
a bit for the hourly counts), however long the process runs. The per-subject state (level, known
devices and networks, usual hours, history) is one entry per account, client, professional or
practice, kept as Redis keeps it while the subject is active.
"""

from __future__ import annotations

import secrets
import threading
from collections import defaultdict

from rempart.detection.store import (
    DAY_MS,
    HOUR_MS,
    KEEP_AGGREGATES_MS,
    KEEP_PENDING_MS,
    MINUTE_MS,
    WEEK_MS,
    Admission,
    AggregateHour,
    Floors,
    Observation,
    ObservationResult,
    Role,
    Rules,
    SubjectCounts,
)

_SLOW, _STEP_UP, _SUSPEND = 2, 3, 4
_TIDY = HOUR_MS
# Each window's members are kept as long as the longest span a count reads them over (the identity
# locks, "pm", keep the lock period of the rules). The engine's readers ask no more: insurers_seen a
# day, active_insurers two hours (a day kept, as the Redis store trims it).
_KEEP = {
    "seen": DAY_MS,  # distinct 24 h / 1 h / 5 min; answered checks for standing
    "mis": DAY_MS,  # misses in the hour and the day; answered checks in the day (seen minus misses)
    "pend": KEEP_PENDING_MS,  # new beneficiaries waiting for a claim: the claim delay and a week
    "new": KEEP_PENDING_MS,  # beneficiaries new to the practice: 24 h, and as long as claims are awaited
    "prp": WEEK_MS,  # practices where an identity was tried, within a week
    "spr": DAY_MS,  # identities tried at many practices, checked by this account or client
    "ins": DAY_MS,  # insurers in 24 h
    "benp": DAY_MS,  # practices that checked a beneficiary in 24 h
    "activeins": DAY_MS,
    "off": HOUR_MS,
    "lockrej": HOUR_MS,
    "locked": HOUR_MS,
}


class _Window:
    """A sorted-set stand-in: member -> score (ms)."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: dict[str, int] = {}

    def add(self, member: str, score: int) -> None:
        self.items[member] = score

    def trim(self, upto: int) -> None:
        """Drop members scored at or before ``upto``."""
        if self.items and min(self.items.values()) <= upto:
            self.items = {m: s for m, s in self.items.items() if s > upto}

    def after(self, since: int) -> int:
        return sum(1 for s in self.items.values() if s > since)

    def between(self, since: int, until: int) -> int:
        """Members scored after ``since`` and at or before ``until``."""
        return sum(1 for s in self.items.values() if since < s <= until)

    def __len__(self) -> int:
        return len(self.items)


class _Level:
    __slots__ = ("level", "peak", "peak_at", "rejections", "slow_last", "until")

    def __init__(self) -> None:
        self.level = 0
        self.until = 0
        self.peak = 0
        self.peak_at = 0
        self.rejections = 0
        self.slow_last = 0

    def effective(self, now: int) -> int:
        return self.level if self.level > 0 and (self.until == 0 or now < self.until) else 0


_METRICS = 5  # a practice's learned daily peaks: distinct 5 min, 1 h, 24 h; new; unclaimed


class _History:
    __slots__ = ("base", "current", "day", "dirty")

    def __init__(self, day: int) -> None:
        self.day = day
        self.dirty = False
        self.current = [0.0] * _METRICS
        self.base = [0.0] * _METRICS


class _Network:
    """What one network carried for one practice until it was established (see ``Rules``)."""

    __slots__ = (
        "checks",
        "clean_days",
        "dirty_day",
        "established",
        "first",
        "last_day",
        "misses",
        "new",
        "returning",
        "seen",
    )

    def __init__(self, first: int) -> None:
        self.first = self.seen = first
        self.clean_days = 0
        self.last_day: int | None = None
        self.dirty_day: int | None = None
        self.established = False
        self.new = self.returning = self.misses = self.checks = 0


def learned(base: float, current: float, *, clean: bool, rules: Rules) -> float:
    """A learned daily peak at the end of a day: it decays, and grows from a clean day only, by at
    most ``history_growth`` (the first clean day sets it)."""
    if not clean:
        return base * rules.history_decay
    grown = current if base == 0 else min(current, base * rules.history_growth)
    return max(base * rules.history_decay, grown)


class MemoryStore:
    shared = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._levels: dict[str, _Level] = defaultdict(_Level)
        self._windows: dict[str, _Window] = defaultdict(_Window)
        self._hours: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self._known: dict[str, set[str]] = defaultdict(set)
        self._fresh: dict[str, int] = {}
        self._history: dict[str, _History] = {}
        # practice -> beneficiary -> when it was last checked there (hits)
        self._patients: dict[str, dict[str, int]] = defaultdict(dict)
        # "practice|network" -> what it carried; practices with an established network
        self._networks: dict[str, _Network] = {}
        self._established: set[str] = set()
        self._notice_days: dict[str, set[int]] = defaultdict(set)
        # practice -> new beneficiary -> the actor whose check of it a claim there clears
        self._checked_by: dict[str, dict[str, str]] = defaultdict(dict)
        # hour -> scope -> distinct beneficiaries; checks and misses
        self._hll: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self._agg: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        self._last_miss: dict[str, int] = {}  # subject -> when it last missed (within the hour)
        self._last_locked: dict[str, int] = {}  # actor -> when a locked identity was last refused (ditto)
        self._swept: int | None = None
        self._claims: set[str] = set()
        self._ks_version = 0
        self._pepper = secrets.token_bytes(32)

    # -- the observation -----------------------------------------------------------------------

    def observe(self, obs: Observation) -> ObservationResult:
        with self._lock:
            return self._observe(obs)

    def _network_state(self, practice: str, obs: Observation) -> tuple[_Network | None, bool, bool, int]:
        """The practice's view of this network, as of this observation: (state, fresh, established,
        clean days)."""
        if not practice or not obs.network:
            return None, False, False, 0
        rules = obs.rules
        net = self._networks.get(f"{practice}|{obs.network}")
        if net is None or (net.last_day is not None and obs.day - net.last_day > rules.known_keep_ms // DAY_MS):
            net = _Network(obs.now_ms)  # never seen, or not for as long as patients are remembered
        clean_days = net.clean_days
        if net.last_day is not None and net.last_day not in (obs.day, net.dirty_day):
            clean_days += 1  # its last day of traffic ended without an alert
        has_established = practice in self._established
        established = net.established or (
            clean_days >= rules.network_clean_days
            and (not has_established or rules.returning_credit * net.returning >= net.new)
        )
        return net, not established and has_established, established, clean_days

    def _out_of_standing(self, key: str, now: int, rules: Rules, *, fresh: bool, established: bool) -> bool:
        """Whether a card that missed once here gets no second date (see ``Rules``): from a network
        the practice has not established, never; from one it has, when misses are many in the hour
        and a large share of it; elsewhere, when misses are many or answered checks few."""
        if fresh:
            return True
        seen, misses = self._windows.get(f"seen:{key}", _EMPTY), self._windows.get(f"mis:{key}", _EMPTY)
        recent = misses.after(now - HOUR_MS)
        if established:
            return recent > rules.standing_misses_1h and recent >= rules.standing_miss_share * seen.after(now - HOUR_MS)
        hits = seen.after(now - DAY_MS) - misses.after(now - DAY_MS)
        return recent > rules.standing_misses_1h or hits < rules.standing_hits_24h

    def _observe(self, obs: Observation) -> ObservationResult:  # noqa: PLR0912, PLR0915 (mirrors the Lua)
        now, rules, floors = obs.now_ms, obs.rules, obs.floors
        if self._swept is None or now - self._swept >= _TIDY:
            self._sweep(now, rules)  # what it drops no count at ``now`` reads
        actor = obs.subjects[0].key
        practice = next((s.key for s in obs.subjects if s.role is Role.PRACTICE), "")
        net, fresh_network, established, clean_days = self._network_state(practice, obs)
        counts = [SubjectCounts(key=s.key, role=s.role) for s in obs.subjects]
        governing, top = "", 0
        for spec, c in zip(obs.subjects, counts, strict=True):
            lv = self._levels.get(spec.key)
            if lv is None:
                continue
            c.level, c.peak, c.peak_at_ms = lv.effective(now), lv.peak, lv.peak_at
            if c.level > top:
                governing, top = spec.key, c.level
        result = ObservationResult(admission=Admission.ADMITTED, subjects=counts, kill_switch_version=self._ks_version)
        if top >= _SUSPEND:
            result.admission = Admission.SUSPENDED
        elif top == _STEP_UP:
            result.admission = Admission.STEPPED_UP
        else:
            if obs.probe:
                # Decided from the probe's history and the subject's standing, never from whether
                # this attempt matches.
                for spec in obs.subjects:
                    if spec.role not in (Role.ACTOR, Role.PRACTICE):
                        continue
                    tried = self._windows.get(f"pm:{spec.key}:{obs.probe}")
                    others: dict[str, int] = {}
                    for member, at in tried.items.items() if tried else ():
                        attempt = member.partition("|")[0]  # a practice's entries name the actor too
                        if attempt != obs.attempt and at > now - rules.identity_lock_ms:
                            others[attempt] = max(at, others.get(attempt, 0))
                    if not others:
                        continue
                    locked = len(others) >= rules.identity_lock_misses
                    if not locked:
                        locked = self._out_of_standing(
                            spec.key, now, rules, fresh=fresh_network, established=established
                        )
                    if locked:
                        result.admission = Admission.IDENTITY_LOCKED
                        governing = actor
                        last = max(others.values())
                        result.retry_after_ms = max(result.retry_after_ms, last + rules.identity_lock_ms - now)
            if result.admission is Admission.ADMITTED and top == _SLOW:
                me = self._levels[actor]
                waited = now - me.slow_last
                if waited < rules.slow_interval_ms:
                    result.admission = Admission.SLOWED
                    result.retry_after_ms = rules.slow_interval_ms - waited
                else:
                    me.slow_last = now
        if result.admission is not Admission.ADMITTED:
            result.governing = governing
            if result.admission is not Admission.IDENTITY_LOCKED:
                me = self._levels[actor]
                me.rejections += 1
                result.rejections = me.rejections
            else:
                # Counted within the hour: a locked card now and then (a typo corrected) never adds up.
                refused = self._windows[f"lockrej:{actor}"]
                refused.add(obs.obs_id, now)
                refused.trim(now - HOUR_MS)
                result.rejections = refused.after(now - HOUR_MS)
                locked_cards = self._windows[f"locked:{actor}"]
                locked_cards.add(obs.probe, now)
                locked_cards.trim(now - HOUR_MS)
                self._last_locked[actor] = now
                mine = counts[0]
                mine.locked_identities_1h = locked_cards.after(now - HOUR_MS)
                mine.distinct_1h = self._windows[f"seen:{actor}"].after(now - HOUR_MS)
                mine.misses_1h = self._windows[f"mis:{actor}"].after(now - HOUR_MS)
            return result

        if practice:
            hours = self._hours[practice]
            total, bucket = hours[-1], hours[obs.hour_of_week]
            off = bucket < total * rules.usual_min_share if total >= rules.usual_min_total else obs.default_off_hours
            hours[obs.hour_of_week] += 1
            hours[-1] += 1
        else:
            off = obs.default_off_hours
        result.off_hours = off

        for value, attr in ((obs.device, "new_device"), (obs.network, "new_network")):
            if not value:
                continue
            known = self._known[f"{attr}:{actor}"]
            if value not in known:
                if known:
                    setattr(result, attr, True)
                    if attr == "new_network":
                        self._fresh[actor] = now
                known.add(value)
        result.fresh_since_ms = self._fresh.get(actor, 0)

        new, before = False, None
        if practice and obs.hit:
            patients = self._patients[practice]
            before = patients.get(obs.beneficiary)
            new = before is None or before <= now - rules.known_keep_ms
            patients[obs.beneficiary] = now
        result.new_beneficiary = new
        if net is not None:
            self._carried(practice, obs, net, clean_days, new=new, before=before)
            result.network_fresh = fresh_network
            result.network_new, result.network_returning = net.new, net.returning
            result.network_misses, result.network_checks = net.misses, net.checks
        spread = False
        if obs.probe:
            # Practices (or, without one, accounts and clients) where this card and NIR was tried.
            tried_at = self._windows[f"prp:{obs.probe}"]
            tried_at.add(practice or actor, now)
            spread = tried_at.after(now - WEEK_MS) >= rules.spread_practices

        for spec, c in zip(obs.subjects, counts, strict=True):
            self._count(obs, spec.key, spec.role, spec.grace_ms, c, off=off, new=new, spread=spread, floors=floors)
            if spec.role is Role.PRACTICE:
                self._history_of(obs, spec.key, c)

        if obs.hit:
            if practice and new:
                self._checked_by[practice][obs.beneficiary] = actor
            seen_by = self._windows[f"benp:{obs.beneficiary}"]
            seen_by.add(practice or actor, now)
            seen_by.trim(now - DAY_MS)
            result.beneficiary_practices = seen_by.after(now - DAY_MS)
        hour = now // HOUR_MS
        for scope in ("all", obs.insurer) if obs.insurer else ("all",):
            self._hll[hour][scope].add(obs.beneficiary)
            agg = self._agg[hour][scope]
            agg[0] += 1
            agg[1] += 0 if obs.hit else 1
            if scope != "all":
                self._windows["activeins"].add(scope, now)
        return result

    def _carried(
        self, practice: str, obs: Observation, net: _Network, clean_days: int, *, new: bool, before: int | None
    ) -> None:
        """Count this request on its network until the network is established."""
        if net.established:
            if net.last_day != obs.day:
                net.last_day, net.seen = obs.day, obs.now_ms  # still in use: not forgotten
            return
        key = f"{practice}|{obs.network}"
        self._networks[key] = net
        net.clean_days, net.last_day, net.seen = clean_days, obs.day, obs.now_ms
        rules = obs.rules
        has_established = practice in self._established
        if clean_days >= rules.network_clean_days and (
            not has_established or rules.returning_credit * net.returning >= net.new
        ):
            net.established = True
            self._established.add(practice)
            return
        net.checks += 1
        if not obs.hit:
            net.misses += 1
        elif new:
            net.new += 1
        elif before is not None and before < net.first:
            net.returning += 1

    def _count(  # noqa: PLR0912, PLR0915 (mirrors the Lua)
        self,
        obs: Observation,
        key: str,
        role: Role,
        grace: int,
        c: SubjectCounts,
        *,
        off: bool,
        new: bool,
        spread: bool,
        floors: Floors,
    ) -> None:
        now = obs.now_ms
        w = self._windows
        seen = w[f"seen:{key}"]
        seen.add(obs.beneficiary, now)
        misses = w[f"mis:{key}"]
        if not obs.hit:
            misses.add(obs.beneficiary, now)  # distinct identities: the same typo twice is one miss
            self._last_miss[key] = now
            c.misses_1h = misses.after(now - HOUR_MS)
        elif self._last_miss.get(key, 0) > now - HOUR_MS:
            c.misses_1h = misses.after(now - HOUR_MS)
        c.misses_24h = misses.after(now - DAY_MS)
        # Narrower windows only when the wider one reaches their floor (or misses need the hour).
        c.distinct_24h = c.distinct_1h = c.distinct_5m = seen.after(now - DAY_MS)
        if c.distinct_24h >= floors.distinct_1h or c.misses_1h:
            c.distinct_1h = c.distinct_5m = seen.after(now - HOUR_MS)
        if c.distinct_1h >= floors.distinct_5m:
            c.distinct_5m = seen.after(now - 5 * MINUTE_MS)
        fresh_patients = w[f"new:{key}"] if new else w.get(f"new:{key}", _EMPTY)
        if new:
            fresh_patients.add(obs.beneficiary, now)
        if c.distinct_24h >= floors.new_24h:
            c.new_24h = fresh_patients.after(now - DAY_MS)
        if role in (Role.ACTOR, Role.PRACTICE):
            pending = w[f"pend:{key}"] if new else w.get(f"pend:{key}", _EMPTY)
            insurers = w[f"ins:{key}"] if obs.hit and obs.insurer else w.get(f"ins:{key}", _EMPTY)
            if new:
                pending.add(obs.beneficiary, now)  # waits for a claim (a quote or approval is not care)
            if obs.hit and obs.insurer:
                insurers.add(obs.insurer, now)
            c.unclaimed_24h = pending.between(now - grace - DAY_MS, now - grace)
            c.unclaimed_7d = pending.between(now - grace - WEEK_MS, now - grace)
            if c.unclaimed_24h >= floors.unclaimed_24h:
                c.new_matured_24h = fresh_patients.between(now - grace - DAY_MS, now - grace)
            if c.unclaimed_7d >= floors.unclaimed_7d:
                c.new_matured_7d = fresh_patients.between(now - grace - WEEK_MS, now - grace)
            if c.distinct_24h >= floors.insurers_24h:
                c.insurers_24h = insurers.after(now - DAY_MS)
            if not obs.hit and obs.probe and obs.attempt:
                # The attempt that missed, under its card and NIR (the practice's entry names the actor).
                member = f"{obs.attempt}|{obs.subjects[0].key}" if role is Role.PRACTICE else obs.attempt
                tried = w[f"pm:{key}:{obs.probe}"]
                tried.add(member, now)
                tried.trim(now - obs.rules.identity_lock_ms)
        if role is Role.ACTOR and self._last_locked.get(key, 0) > now - HOUR_MS:
            c.locked_identities_1h = w[f"locked:{key}"].after(now - HOUR_MS)
        if role is Role.ACTOR:
            listed = w[f"spr:{key}"] if spread else w.get(f"spr:{key}", _EMPTY)
            if spread:
                listed.add(obs.probe, now)
            c.spread_24h = listed.after(now - DAY_MS)
        if off:
            off_window = w[f"off:{key}"]
            off_window.add(obs.obs_id, now)
            c.off_hours_1h = off_window.after(now - HOUR_MS)

    def _sweep(self, now: int, rules: Rules) -> None:  # noqa: PLR0912 (one pass over each kind of state)
        """Every ``_TIDY``, drop what no count can read any more, of every subject, beneficiary and
        card (Redis expires the keys of those gone quiet; here nothing else would). Counts are by
        time, so this changes none of them; it takes time in proportion to what is held (a day)."""
        self._swept = now
        windows = self._windows
        for key in list(windows):
            kind = key.partition(":")[0]
            window = windows[key]
            window.trim(now - (rules.identity_lock_ms if kind == "pm" else _KEEP[kind]))
            if not window:
                del windows[key]
        # An entry only serves to clear its actor's pending check on a claim: once that check has
        # left the actor's pending window (or was claimed or forgotten), a claim would clear
        # nothing the actor's counts read (a new check here writes the entry again).
        for practice in list(self._checked_by):
            checked = self._checked_by[practice]
            for ben in [b for b, actor in checked.items() if b not in _members(windows.get(f"pend:{actor}"))]:
                del checked[ben]
            if not checked:
                del self._checked_by[practice]
        # A patient not checked at a practice for ``known_keep_ms`` is new there again; a network
        # that carried nothing for that long is forgotten (established or not).
        for practice in list(self._patients):
            patients = self._patients[practice]
            for ben in [b for b, at in patients.items() if at <= now - rules.known_keep_ms]:
                del patients[ben]
            if not patients:
                del self._patients[practice]
        for key in [k for k, net in self._networks.items() if net.seen <= now - rules.known_keep_ms - 2 * DAY_MS]:
            del self._networks[key]
        for marks in (self._last_miss, self._last_locked):  # read within the hour only
            for key in [k for k, at in marks.items() if at <= now - HOUR_MS]:
                del marks[key]
        # The hourly counts, as long as Redis keeps them (the sweep of anomalies reads 25 hours).
        for hourly in (self._hll, self._agg):
            for hour in [h for h in hourly if (h + 1) * HOUR_MS <= now - KEEP_AGGREGATES_MS]:
                del hourly[hour]

    def sizes(self) -> dict[str, int]:
        """What the sweeps bound by time, in entries: window members (and windows; the checks
        waiting for a claim apart, kept a month and a week), who checked which beneficiary, the
        hourly counts (a beneficiary or a scope each), the recent marks, the practices' patients."""
        with self._lock:
            pending = [w for key, w in self._windows.items() if key.startswith(("pend:", "new:"))]
            return {
                "window_members": sum(len(w) for w in self._windows.values()) - sum(len(w) for w in pending),
                "windows": len(self._windows) - len(pending),
                "pending": sum(len(w) for w in pending),
                "patients": sum(len(p) for p in self._patients.values()),
                "checked_by": sum(len(c) for c in self._checked_by.values()),
                "hourly": sum(len(s) for scopes in self._hll.values() for s in scopes.values())
                + sum(len(scopes) for scopes in self._agg.values()),
                "marks": len(self._last_miss) + len(self._last_locked),
            }

    def _history_of(self, obs: Observation, key: str, c: SubjectCounts) -> None:
        h = self._history.get(key)
        if h is None:
            h = self._history[key] = _History(obs.day)
        if h.day != obs.day:
            h.base = [
                learned(b, cur, clean=not h.dirty, rules=obs.rules) for b, cur in zip(h.base, h.current, strict=True)
            ]
            h.current, h.dirty, h.day = [0.0] * _METRICS, False, obs.day
        today = (c.distinct_5m, c.distinct_1h, c.distinct_24h, c.new_24h, c.unclaimed_24h)
        h.current = [max(cur, float(v)) for cur, v in zip(h.current, today, strict=True)]
        c.base_5m, c.base_1h, c.base_24h, c.base_new, c.base_unclaimed = h.base

    # -- the rest of the protocol --------------------------------------------------------------

    def follow_up(self, *, practice_key: str, beneficiary: str) -> None:
        with self._lock:
            _members(self._windows.get(f"pend:{practice_key}")).pop(beneficiary, None)
            checked = self._checked_by.get(practice_key)
            actor = checked.pop(beneficiary, None) if checked else None
            if actor:
                _members(self._windows.get(f"pend:{actor}")).pop(beneficiary, None)

    def _spoil_day(self, practice_key: str | None, network: str) -> None:
        """Nothing is learned from the practice's day, nor counted as a clean day of the network."""
        if not practice_key:
            return
        if practice_key in self._history:
            self._history[practice_key].dirty = True
        net = self._networks.get(f"{practice_key}|{network}") if network else None
        if net is not None and net.last_day is not None:
            net.dirty_day = net.last_day

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
        with self._lock:
            self._spoil_day(practice_key, network)
            days = self._notice_days[subject]
            if repeated:
                days.add(day)
            for old in [d for d in days if d <= day - 7]:
                days.discard(old)
            return len(days)

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
        with self._lock:
            lv = self._levels[subject]
            before = lv.effective(now_ms)
            if step <= before:
                return before, before
            lv.level, lv.until, lv.rejections = step, until_ms, 0
            lv.peak = max(lv.peak if lv.peak_at > now_ms - DAY_MS else 0, step)
            lv.peak_at = now_ms
            if step == _SLOW:
                lv.slow_last = now_ms
            self._spoil_day(practice_key, network)
            return before, step

    def ease(self, *, subject: str, step: int, now_ms: int) -> None:
        with self._lock:
            lv = self._levels[subject]
            lv.level, lv.until, lv.rejections, lv.peak, lv.peak_at = 0, 0, 0, step, now_ms

    def lift(self, *, subject: str, forget_counts: bool) -> None:
        with self._lock:
            self._levels.pop(subject, None)
            # The identity locks its misses set: its own and its practice's entries naming it.
            own, naming = f"pm:{subject}:", f"|{subject}"
            for key in [k for k in self._windows if k.startswith("pm:")]:
                if key.startswith(own):
                    del self._windows[key]
                    continue
                items = self._windows[key].items
                for member in [m for m in items if m.endswith(naming)]:
                    del items[member]
            if forget_counts:
                for prefix in ("seen", "mis", "pend", "ins", "locked", "lockrej", "off", "new", "spr"):
                    self._windows.pop(f"{prefix}:{subject}", None)
                for marks in (self._last_miss, self._last_locked):
                    marks.pop(subject, None)
                self._notice_days.pop(subject, None)

    def insurers_seen(self, *, subject: str, since_ms: int) -> list[str]:
        with self._lock:
            return sorted(m for m, s in _members(self._windows.get(f"ins:{subject}")).items() if s > since_ms)

    def kill_switches(self) -> tuple[int, frozenset[tuple[str, str]] | None]:
        # One process: the database is the copy (read at most once a second by the engine).
        return self._ks_version, None

    def publish_kill_switches(self, switches: frozenset[tuple[str, str]]) -> int:
        with self._lock:
            self._ks_version += 1
            return self._ks_version

    def aggregates(self, *, scope: str, hours: list[int]) -> list[AggregateHour]:
        with self._lock:
            out = []
            for hour in hours:
                checks, misses = self._agg[hour].get(scope, [0, 0]) if hour in self._agg else [0, 0]
                distinct = self._hll[hour].get(scope, ()) if hour in self._hll else ()
                out.append(AggregateHour(hour, len(distinct), checks, misses))
            return out

    def active_insurers(self, *, since_ms: int) -> list[str]:
        with self._lock:
            return sorted(m for m, s in _members(self._windows.get("activeins")).items() if s > since_ms)

    def claim(self, *, name: str) -> bool:
        with self._lock:
            if name in self._claims:
                return False
            self._claims.add(name)
            return True

    def pepper(self) -> bytes:
        return self._pepper

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None


_EMPTY = _Window()  # read where a subject has no such window (never written to)


def _members(window: _Window | None) -> dict[str, int]:
    """A window's members, or none (without creating the window)."""
    return window.items if window is not None else {}
