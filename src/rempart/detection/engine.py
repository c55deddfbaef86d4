"""The detection engine: admits or contains each professional request, independent of HTTP.

On the rights-check path a route calls ``guard`` before it does any work (kill switches, from a
cache at most ``kill_switch_cache`` old: no round trip) and ``observe`` once it knows the outcome and
before it releases the answer (one round trip to the counter store). ``observe`` raises when the
answer must not leave: slowed down (429), step-up or refusal (403), suspended (403), kill switch or
counter store unreachable (503).

Containment steps are written in a transaction of the engine's own (``sessions``), so they are
recorded even though the request that triggered them is refused. Call ``observe`` before writing
anything in the request's own session (SQLite allows one writer at a time).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import math
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from rempart.detection import service
from rempart.detection.actor import Actor, Attempt, network_of
from rempart.detection.aggregates import find_anomalies
from rempart.detection.clock import Clock, SystemClock, to_ms
from rempart.detection.errors import (
    AccessSuspended,
    ChannelDisconnected,
    ChecksRefused,
    IdentityLocked,
    SlowDown,
    StepUpRequired,
)
from rempart.detection.explain import for_practice
from rempart.detection.hooks import ContainmentHooks, RecordOnly
from rempart.detection.memory import MemoryStore
from rempart.detection.models import (
    AlertKind,
    ContainmentLevel,
    KillChannel,
    KillSwitch,
    KillSwitchScope,
    Severity,
    SubjectKind,
)
from rempart.detection.recorder import Recorder
from rempart.detection.redis_store import RedisStore
from rempart.detection.signals import ROLE_CAP, Finding, evaluate, floors_of, repeated_notices
from rempart.detection.store import (
    DAY_MS,
    Admission,
    CounterStore,
    CounterStoreUnavailable,
    Floors,
    Observation,
    ObservationResult,
    Role,
    Rules,
    SubjectSpec,
)
from rempart.detection.thresholds import (
    DEFAULT_CONFIG,
    SLOW_ABUSE,
    DetectionConfig,
    Ladder,
    ProfessionBaseline,
    Step,
)
from rempart.errors import RempartError
from rempart.logs import get_logger
from rempart.protection.service import normalise_nir

if TYPE_CHECKING:
    from rempart.runtime import Runtime

log = get_logger("rempart.detection")

LEVEL_OF_STEP = {
    Step.SLOW: ContainmentLevel.SLOW,
    Step.STEP_UP: ContainmentLevel.STEP_UP,
    Step.SUSPEND: ContainmentLevel.SUSPENDED,
}
_KIND_OF_PREFIX = {k.value: k for k in SubjectKind}
_FAIL_ALERT_EVERY = timedelta(seconds=10)
_SWITCH_RECONCILE = timedelta(minutes=1)


@dataclass(frozen=True)
class Verdict:
    step: Step  # the highest step this observation reached for any subject
    slowed: bool  # the caller is now slowed down (this answer is released)


def default_prefix(database_url: str) -> str:
    """Processes sharing a database share counters; separate databases (tests) never mix."""
    return "rempart:det:" + hashlib.sha256(database_url.encode()).hexdigest()[:12] + ":"


def _subject_key(kind: SubjectKind, ident: uuid.UUID) -> str:
    return f"{kind.value}:{ident}"


def _parse_key(key: str) -> tuple[SubjectKind, uuid.UUID]:
    kind, _, ident = key.partition(":")
    return _KIND_OF_PREFIX[kind], uuid.UUID(ident)


class DetectionEngine:
    def __init__(
        self,
        *,
        store: CounterStore,
        sessions: sessionmaker[Session],
        config: DetectionConfig = DEFAULT_CONFIG,
        clock: Clock | None = None,
        hooks: ContainmentHooks | None = None,
        background: bool = True,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.recorder = Recorder(sessions, background=background)
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.hooks: ContainmentHooks = hooks or RecordOnly()
        self.tz = ZoneInfo(config.timezone)
        self._lock = threading.Lock()
        self._switches: frozenset[tuple[str, str]] = frozenset()
        self._switch_version = -1
        self._switch_checked: datetime | None = None
        self._switch_loaded: datetime | None = None
        self._raised: set[str] = set()
        # (subject, local day) -> on how many days of the week it had notices, as the store said
        # at its first notice of the day in this process.
        self._notice_days: dict[tuple[str, int, bool], int] = {}
        self._last_fail_alert: datetime | None = None
        self._last_sweep: datetime | None = None
        self._rules = rules_of(config)
        self._floors_of: dict[int, tuple[ProfessionBaseline, Floors]] = {}
        # Observation ids only need to be unique: a random prefix per process and a counter.
        self._obs_prefix = secrets.token_hex(6)
        self._obs_counter = itertools.count()

    @classmethod
    def build(
        cls,
        runtime: Runtime,
        *,
        clock: Clock | None = None,
        config: DetectionConfig = DEFAULT_CONFIG,
        hooks: ContainmentHooks | None = None,
        prefix: str | None = None,
        background: bool = True,
    ) -> DetectionEngine:
        """Redis when ``REMPART_REDIS_URL`` is set (every process shares it), else in process."""
        settings = runtime.settings
        store: CounterStore
        if settings.redis_url:
            store = RedisStore.from_url(settings.redis_url, prefix=prefix or default_prefix(settings.database_url))
        else:
            store = MemoryStore()
        if hooks is None:
            from rempart.detection.wiring import default_hooks

            hooks = default_hooks()
        return cls(
            store=store, sessions=runtime.sessions, config=config, clock=clock, hooks=hooks, background=background
        )

    def drain(self) -> None:
        """Wait until every containment record submitted so far is committed."""
        self.recorder.drain()

    def close(self) -> None:
        self.recorder.close()
        self.store.close()

    # -- kill switches --------------------------------------------------------------------------

    def _kill_switches(self) -> frozenset[tuple[str, str]]:
        """The active switches, as this process last saw them (at most ``kill_switch_cache`` ago).

        With Redis, the working copy lives there (one round trip a second); the database is the
        record, read at start, once a minute and whenever Redis lost the copy, and it wins when they
        differ. In process (embedded, one server), the database is read once a second.
        """
        now = self.clock.now()
        with self._lock:
            checked = self._switch_checked
            if checked is not None and now - checked < self.config.kill_switch_cache:
                return self._switches
        try:
            version, switches = self.store.kill_switches()
            loaded = self._switch_loaded
            if switches is None or version == 0 or loaded is None or now - loaded >= _SWITCH_RECONCILE:
                # The database is the record: read it when the store holds no copy, when Redis lost
                # it, when this process starts, and once a minute in case the copy went stale.
                recorded = self._switches_from_database()
                if self.store.shared and (version == 0 or recorded != switches):
                    version = self.store.publish_kill_switches(recorded)
                switches = recorded
                self._switch_loaded = now
        except CounterStoreUnavailable:
            self._fail_closed(now)
            raise
        with self._lock:
            self._switches, self._switch_version, self._switch_checked = switches, version, now
            return self._switches

    def _switches_from_database(self) -> frozenset[tuple[str, str]]:
        with self.sessions() as session:
            return frozenset((r.scope.value, r.target) for r in service.active_kill_switches(session))

    def announce_kill_switches(self, switches: Iterable[KillSwitch] | None = None) -> None:
        """After kill switches were set or cleared and committed: this process at once, every other
        within ``kill_switch_cache``. ``switches`` is the active list (read from the database if
        not given)."""
        active = (
            frozenset((s.scope.value, s.target) for s in switches if s.cleared_at is None)
            if switches is not None
            else self._switches_from_database()
        )
        version = self.store.publish_kill_switches(active)
        with self._lock:
            self._switches, self._switch_version, self._switch_checked = active, version, self.clock.now()

    def _check_switches(self, actor: Actor, insurer_id: uuid.UUID | None, switches: frozenset[tuple[str, str]]) -> None:
        if not switches:
            return
        wanted = {(KillSwitchScope.CHANNEL.value, actor.channel.value)}
        if actor.channel is KillChannel.FHIR:  # the facade is a way into the practice API, not around it
            wanted.add((KillSwitchScope.CHANNEL.value, KillChannel.PRACTICE_API.value))
        if actor.profession:
            wanted.add((KillSwitchScope.PROFESSION.value, str(actor.profession)))
        if actor.practice_id:
            wanted.add((KillSwitchScope.PRACTICE.value, str(actor.practice_id)))
        if insurer_id:
            wanted.add((KillSwitchScope.INSURER.value, str(insurer_id)))
        if wanted & switches:
            raise ChannelDisconnected(offline_attestation=actor.channel is not KillChannel.BACK_OFFICE)

    def guard(self, actor: Actor, *, insurer_id: uuid.UUID | None = None) -> None:
        """Before any work: refuse at once when a kill switch covers this request."""
        self._check_switches(actor, insurer_id, self._kill_switches())

    def guard_from_cache(self, actor: Actor, *, insurer_id: uuid.UUID | None = None) -> bool:
        """``guard`` without I/O when this process's copy of the switches is fresh enough; False
        when it is not (the caller then calls ``guard``, which refreshes it, off the event loop)."""
        now = self.clock.now()
        with self._lock:
            checked, switches = self._switch_checked, self._switches
        if checked is None or now - checked >= self.config.kill_switch_cache:
            return False
        self._check_switches(actor, insurer_id, switches)
        return True

    # -- the observation ------------------------------------------------------------------------

    def _next_obs_id(self) -> str:
        return f"{self._obs_prefix}{next(self._obs_counter):x}"

    def _digest(self, *parts: str) -> str:
        message = "|".join(parts).encode()
        return hmac.new(self.store.pepper(), message, hashlib.sha256).hexdigest()[:32]

    @staticmethod
    @lru_cache(maxsize=8192)
    def _subjects(actor: Actor, baseline: ProfessionBaseline) -> tuple[SubjectSpec, ...]:
        grace = int(baseline.claim_delay.total_seconds() * 1000)
        kind, ident = actor.subject()
        specs = [SubjectSpec(_subject_key(kind, ident), Role.ACTOR, grace)]
        if actor.professional_id is not None:
            specs.append(
                SubjectSpec(_subject_key(SubjectKind.PROFESSIONAL, actor.professional_id), Role.PROFESSIONAL, grace)
            )
        if actor.practice_id is not None:
            specs.append(SubjectSpec(_subject_key(SubjectKind.PRACTICE, actor.practice_id), Role.PRACTICE, grace))
        return tuple(specs)

    def observe(
        self,
        actor: Actor,
        *,
        hit: bool,
        beneficiary_id: uuid.UUID | None = None,
        insurer_id: uuid.UUID | None = None,
        attempt: Attempt | None = None,
    ) -> Verdict:
        """Record one rights check and decide whether its answer may leave."""
        if hit and beneficiary_id is None:
            raise ValueError("a hit names the beneficiary")
        now = self.clock.now()
        switches = self._kill_switches()
        self._check_switches(actor, insurer_id, switches)
        baseline = self.config.baseline(actor.profession)
        subjects = self._subjects(actor, baseline)
        try:
            observation = self._observation(
                actor=actor,
                baseline=baseline,
                subjects=subjects,
                now=now,
                hit=hit,
                beneficiary_id=beneficiary_id,
                insurer_id=insurer_id,
                attempt=attempt,
            )
            result = self.store.observe(observation)
            if self._stepped_up_since(actor, result):
                # The person confirmed with a passkey after the step-up was asked: carry on.
                self.step_up_completed(actor)
                result = self.store.observe(replace(observation, obs_id=self._next_obs_id()))
        except CounterStoreUnavailable:
            self._fail_closed(now)
            raise
        beneficiary = observation.beneficiary
        if result.kill_switch_version != self._switch_version:
            with self._lock:
                self._switch_checked = None
            self._check_switches(actor, insurer_id, self._kill_switches())
        if result.admission is not Admission.ADMITTED:
            self._rejected(actor, result, now)
        findings = evaluate(self.config, baseline, result, to_ms(now))
        top, refusal = Step.NONE, Step.NONE
        for spec, evaluated in zip(subjects, findings, strict=True):
            counts = next(c for c in result.subjects if c.key == spec.key)
            finding = evaluated
            if any(name in SLOW_ABUSE for name, _, _ in finding.notices):
                days = self._noticed(actor, finding.key, observation.day, now, repeated=True)
                finding = repeated_notices(self.config, counts, finding, days, to_ms(now))
            elif finding.notices:
                self._noticed(actor, finding.key, observation.day, now, repeated=False)  # the day is not clean
            top = max(top, finding.step)
            self._notices(actor, finding, now)
            if finding.step >= Step.SLOW and finding.step > counts.level:
                self._escalate(actor, finding, now)
            refusal = max(refusal, min(finding.step, ROLE_CAP[spec.role]), Step(counts.level))
        if hit and result.beneficiary_practices >= (self.config.beneficiary_practices_24h.notice or 2):
            self._beneficiary_spread(actor, beneficiary, result.beneficiary_practices, now)
        self._maybe_sweep(now)
        if refusal >= Step.STEP_UP:
            raise self._refusal(actor, Step(refusal))
        return Verdict(step=top, slowed=refusal == Step.SLOW)

    def _observation(
        self,
        *,
        actor: Actor,
        baseline: ProfessionBaseline,
        subjects: tuple[SubjectSpec, ...],
        now: datetime,
        hit: bool,
        beneficiary_id: uuid.UUID | None,
        insurer_id: uuid.UUID | None,
        attempt: Attempt | None,
    ) -> Observation:
        obs_id = self._next_obs_id()
        probe = tried = ""
        if attempt is not None:
            probe = self._digest("probe", attempt.amc_number, attempt.member_number, normalise_nir(attempt.nir))
            tried = self._digest("attempt", probe, attempt.birth_date.isoformat(), str(attempt.birth_rank))
        # A miss counts as the identity tried (the same typo twice is one), a hit as the beneficiary.
        beneficiary = str(beneficiary_id) if hit else "x" + (tried or obs_id)
        local = now.astimezone(self.tz)
        return Observation(
            now_ms=to_ms(now),
            obs_id=obs_id,
            hit=hit,
            beneficiary=beneficiary,
            probe=probe,
            insurer=str(insurer_id) if insurer_id else "",
            device=actor.device or "",
            network=network_of(actor.address),
            hour_of_week=local.weekday() * 24 + local.hour,
            day=local.date().toordinal(),
            default_off_hours=not baseline.opening.is_open(local.weekday(), local.hour),
            subjects=subjects,
            rules=self._rules,
            floors=self._floors(baseline),
            attempt=tried,
        )

    def _floors(self, baseline: ProfessionBaseline) -> Floors:
        floors = self._floors_of.get(id(baseline))
        if floors is None or floors[0] is not baseline:
            floors = self._floors_of[id(baseline)] = (baseline, floors_of(self.config, baseline))
        return floors[1]

    @staticmethod
    def _stepped_up_since(actor: Actor, result: ObservationResult) -> bool:
        if result.admission is not Admission.STEPPED_UP or actor.authenticated_at is None:
            return False
        if actor.channel is not KillChannel.PROFESSIONAL_PORTAL:
            return False
        governing = next((c for c in result.subjects if c.key == result.governing), None)
        return (
            governing is not None
            and governing.role is not Role.PRACTICE
            and (to_ms(actor.authenticated_at) > governing.peak_at_ms)
        )

    def _noticed(self, actor: Actor, key: str, day: int, now: datetime, *, repeated: bool) -> int:
        """A notice on ``key`` today: the first in this process tells the store (the practice's day is
        no longer clean, nothing is learned from it); returns on how many days of the week the
        subject had notices of slow abuse (``repeated``: this one is)."""
        with self._lock:
            days = self._notice_days.get((key, day, repeated))
        if days is not None:
            return days
        practice_key = _subject_key(SubjectKind.PRACTICE, actor.practice_id) if actor.practice_id else None
        try:
            days = self.store.notice(
                subject=key,
                day=day,
                now_ms=to_ms(now),
                practice_key=practice_key,
                network=network_of(actor.address),
                repeated=repeated,
            )
        except CounterStoreUnavailable:
            self._fail_closed(now)
            raise
        with self._lock:
            if len(self._notice_days) > 10_000:
                self._notice_days.clear()
            self._notice_days[(key, day, repeated)] = days
        return days

    def claimed(self, *, practice_id: uuid.UUID, beneficiary_id: uuid.UUID) -> None:
        """A claim followed a check: it no longer waits for one. A quote or a prior approval does
        not count: they are free, a thief asks for them too; a claim pays the real practice."""
        try:
            self.store.follow_up(
                practice_key=_subject_key(SubjectKind.PRACTICE, practice_id), beneficiary=str(beneficiary_id)
            )
        except CounterStoreUnavailable:
            self._fail_closed(self.clock.now())
            raise

    def step_up_completed(self, actor: Actor) -> None:
        """The portal user confirmed with a passkey: back to normal, one strike remembered."""
        now = self.clock.now()
        kind, ident = actor.subject()
        keys = [(kind, ident)]
        if actor.professional_id is not None:
            keys.append((SubjectKind.PROFESSIONAL, actor.professional_id))
        for k, i in keys:
            self.store.ease(subject=_subject_key(k, i), step=int(Step.SLOW), now_ms=to_ms(now))

        def record(session: Session) -> None:
            for k, i in keys:
                service.record_step_up(session, kind=k, subject_id=i, now=now)

        self.recorder.submit(record, what="step_up")

    def forget(self, *, kind: SubjectKind, subject_id: uuid.UUID) -> None:
        """An operator lifted a containment: the subject's level and windows start afresh."""
        self.store.lift(subject=_subject_key(kind, subject_id), forget_counts=True)

    # -- deciding -------------------------------------------------------------------------------

    def _rejected(self, actor: Actor, result: ObservationResult, now: datetime) -> None:
        cfg = self.config
        key = _subject_key(*actor.subject())
        current = {
            Admission.SLOWED: Step.SLOW,
            Admission.STEPPED_UP: Step.STEP_UP,
            Admission.SUSPENDED: Step.SUSPEND,
            Admission.IDENTITY_LOCKED: Step.NONE,
        }[result.admission]
        target = Step.NONE
        finding: Finding | None = None
        if result.admission is Admission.IDENTITY_LOCKED:
            # Cards and NIRs tried again with another date of birth after a miss: one is a typo
            # being corrected, several within the hour (mostly misses) is someone guessing dates.
            mine = result.subjects[0]
            guessing = mine.misses_1h >= cfg.miss_share_min * max(mine.distinct_1h, 1)
            step = cfg.locked_identities_1h.step(mine.locked_identities_1h) if guessing else Step.NONE
            if step >= Step.SLOW:
                target = max(step, Step.STEP_UP, Step(mine.level))
                threshold = _threshold_of(cfg.locked_identities_1h, step)
                finding = Finding(
                    key, Role.ACTOR, target, "locked_identities_1h", mine.locked_identities_1h, threshold, ()
                )
        if (
            target is Step.NONE
            and result.admission in (Admission.SLOWED, Admission.IDENTITY_LOCKED)
            and result.rejections >= cfg.rejections_to_step_up
        ):
            target = Step.STEP_UP
        elif result.admission is Admission.STEPPED_UP and result.rejections >= cfg.rejections_to_suspend:
            target = Step.SUSPEND
        if target > Step.NONE:
            if finding is None:
                threshold = cfg.rejections_to_step_up if target is Step.STEP_UP else cfg.rejections_to_suspend
                finding = Finding(key, Role.ACTOR, target, "refused_requests", result.rejections, threshold, ())
            self._escalate(actor, finding, now)
            raise self._refusal(actor, target)
        if result.admission is Admission.IDENTITY_LOCKED:
            raise IdentityLocked(max(1, math.ceil(result.retry_after_ms / 60_000)))
        if result.admission is Admission.SLOWED:
            raise SlowDown(max(1, math.ceil(result.retry_after_ms / 1000)))
        raise self._refusal(actor, current)

    def _refusal(self, actor: Actor, step: Step) -> RempartError:
        if step >= Step.SUSPEND:
            return AccessSuspended()
        if actor.channel is KillChannel.PROFESSIONAL_PORTAL:
            return StepUpRequired()
        return ChecksRefused(int(self.config.step_up_duration.total_seconds()))

    # -- acting ---------------------------------------------------------------------------------

    def _escalate(self, actor: Actor, finding: Finding, now: datetime) -> None:
        cfg = self.config
        step = finding.step
        until = None
        if step is Step.SLOW:
            until = now + cfg.slow_duration
        elif step is Step.STEP_UP:
            until = now + cfg.step_up_duration
        practice_key = _subject_key(SubjectKind.PRACTICE, actor.practice_id) if actor.practice_id else None
        before, after = self.store.escalate(
            subject=finding.key,
            step=int(step),
            until_ms=to_ms(until) if until else 0,
            now_ms=to_ms(now),
            practice_key=practice_key,
            network=network_of(actor.address),
        )
        if after <= before:
            return  # another process got there first and recorded it
        kind, ident = _parse_key(finding.key)
        level = LEVEL_OF_STEP[step]
        detail: dict[str, Any] = {
            "value": finding.value,
            "threshold": finding.threshold,
            "channel": actor.channel.value,
        }
        log.warning(
            "containment", subject_kind=kind.value, subject_id=str(ident), step=level.value, signal=finding.signal
        )
        insurers: list[uuid.UUID] = []
        if step is Step.SUSPEND:
            since = to_ms(now) - DAY_MS
            insurers = [uuid.UUID(i) for i in self.store.insurers_seen(subject=finding.key, since_ms=since)]
        hooks = self.hooks

        def record(session: Session) -> None:
            service.record_step(
                session,
                kind=kind,
                subject_id=ident,
                practice_id=actor.practice_id,
                level=level,
                until=until,
                signal=finding.signal,
                detail=detail,
                now=now,
            )
            if step is Step.SUSPEND:
                hooks.suspend(session, kind=kind, subject_id=ident, reason=for_practice(finding.signal), now=now)
            hooks.step_recorded(
                session, kind=kind, subject_id=ident, level=level, signal=finding.signal, actor=actor, now=now
            )
            if step >= Step.STEP_UP:
                verb = "suspended" if step is Step.SUSPEND else "refused (step-up)"
                service.raise_alert(
                    session,
                    kind=AlertKind.CONTAINMENT,
                    severity=Severity.HIGH if step is Step.SUSPEND else Severity.MEDIUM,
                    title=f"{kind.value.capitalize()} {verb}: {finding.signal}",
                    now=now,
                    subject_kind=kind,
                    subject_id=ident,
                    practice_id=actor.practice_id,
                    signal=finding.signal,
                    detail=detail,
                    insurer_ids=insurers,
                )

        self.recorder.submit(record, what="containment")

    def _alert_once(self, dedupe: str, **kwargs: Any) -> None:
        with self._lock:
            if dedupe in self._raised:
                return
            if len(self._raised) > 10_000:
                self._raised.clear()
            self._raised.add(dedupe)
        self.recorder.submit(lambda session: service.raise_alert(session, dedupe_key=dedupe, **kwargs), what="alert")

    def _notices(self, actor: Actor, finding: Finding, now: datetime) -> None:
        if not finding.notices:
            return
        kind, ident = _parse_key(finding.key)
        day = now.astimezone(self.tz).date().isoformat()
        for name, value, threshold in finding.notices:
            self._alert_once(
                f"signal:{finding.key}:{name}:{day}",
                kind=AlertKind.SIGNAL,
                severity=Severity.MEDIUM,
                title=f"Unusual use by a {kind.value}: {name}",
                now=now,
                subject_kind=kind,
                subject_id=ident,
                practice_id=actor.practice_id,
                signal=name,
                detail={"value": value, "threshold": threshold, "channel": actor.channel.value},
            )

    def _beneficiary_spread(self, actor: Actor, beneficiary: str, practices: int, now: datetime) -> None:
        if self.config.beneficiary_practices_24h.step(practices) < Step.NOTICE:
            return
        day = now.astimezone(self.tz).date().isoformat()
        self._alert_once(
            f"beneficiary:{beneficiary}:{day}",
            kind=AlertKind.BENEFICIARY_SPREAD,
            severity=Severity.MEDIUM,
            title="One beneficiary checked by many practices within a day",
            now=now,
            subject_kind=SubjectKind.BENEFICIARY,
            subject_id=uuid.UUID(beneficiary),
            practice_id=actor.practice_id,
            signal="beneficiary_practices_24h",
            detail={"value": practices, "threshold": self.config.beneficiary_practices_24h.notice},
        )

    def _fail_closed(self, now: datetime) -> None:
        """The counter store is unreachable: the caller answers 503; operators get one alert."""
        with self._lock:
            last = self._last_fail_alert
            if last is not None and now - last < _FAIL_ALERT_EVERY:
                return
            self._last_fail_alert = now
        slot = f"{now:%Y%m%d%H}{now.minute // 10}"

        def record(session: Session) -> None:
            service.record_fail_closed(session, now=now)
            service.raise_alert(
                session,
                kind=AlertKind.COUNTER_STORE_UNREACHABLE,
                severity=Severity.CRITICAL,
                title="Counter store unreachable: professional channels fail closed",
                now=now,
                subject_kind=SubjectKind.PLATFORM,
                signal="counter_store",
                dedupe_key=f"store-unreachable:{slot}",
            )

        self.recorder.submit(record, what="fail_closed")

    # -- insurer-wide and platform-wide ---------------------------------------------------------

    def _maybe_sweep(self, now: datetime) -> None:
        interval = self.config.sweep_interval
        with self._lock:
            if self._last_sweep is not None and now - self._last_sweep < interval:
                return
            self._last_sweep = now
        slot = to_ms(now) // int(interval.total_seconds() * 1000)
        try:
            if self.store.claim(name=f"sweep:{slot}"):
                self.sweep(now)
        except CounterStoreUnavailable as exc:
            # The sweep is housekeeping: a rights check does not fail because of it.
            log.error("sweep_failed", error_type=type(exc).__name__)

    def sweep(self, now: datetime | None = None) -> int:
        """Compare the last complete hour with the day before, platform-wide and per insurer.
        Returns how many anomalies were found (each raises one alert per hour and scope)."""
        now = now or self.clock.now()
        found = find_anomalies(self.store, self.config, now)
        for anomaly in found:
            self.recorder.submit(_aggregate_alert(anomaly.alert(), now), what="aggregate")
        return len(found)


def rules_of(config: DetectionConfig) -> Rules:
    """The part of the configuration the counter store applies itself."""
    return Rules(
        slow_interval_ms=int(config.slow_interval.total_seconds() * 1000),
        identity_lock_misses=config.identity_lock_misses,
        identity_lock_ms=int(config.identity_lock_period.total_seconds() * 1000),
        standing_misses_1h=config.identity_lock_standing_misses_1h,
        standing_hits_24h=config.identity_lock_standing_hits_24h,
        usual_min_total=config.usual_hours_min_history,
        usual_min_share=config.usual_hours_min_share,
        history_decay=config.history_decay,
        history_growth=config.history_growth,
        known_keep_ms=int(config.known_keep.total_seconds() * 1000),
        network_clean_days=config.network_clean_days,
        returning_credit=config.returning_credit,
        spread_practices=config.spread_practices,
        standing_miss_share=config.identity_lock_standing_miss_share,
    )


def _threshold_of(ladder: Ladder, step: Step) -> float:
    value = {Step.SLOW: ladder.slow, Step.STEP_UP: ladder.step_up, Step.SUSPEND: ladder.suspend}.get(step)
    return float(value or 0)


def _aggregate_alert(alert: dict[str, Any], now: datetime) -> Callable[[Session], object]:
    return lambda session: service.raise_alert(session, now=now, **alert)
