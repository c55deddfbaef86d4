"""The counter store: sliding windows and containment levels shared by every app process.

One observation is one call (one Redis round trip): it reads the containment levels of the
subjects, admits or rejects the request, records it and returns the counts the engine turns into
signals. Two implementations hold the same behaviour: ``RedisStore`` (one truth for every process)
and ``MemoryStore`` (the embedded default, one process).

A count only matters once it can reach a threshold: below its ``Floors`` (the lowest threshold the
signal can have, whatever the hour, network or history) a count is not measured, and the store
answers with a bound instead (see ``SubjectCounts``). Every signal is still decided exactly: a
value under its floor reaches no step, not even a notice.

Times are milliseconds from the engine's clock, never the store's own, so that a test can simulate
a day. Nothing here holds personal data: beneficiaries are pseudonymous ids and probed identities
are keyed digests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from rempart.errors import ServiceUnavailable

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
# The longest delay between a check and its claim any profession may have (``claim_delay``): the
# checks still waiting for a claim are kept that long and a week more (the weekly count).
MAX_CLAIM_DELAY_MS = 31 * DAY_MS
KEEP_PENDING_MS = MAX_CLAIM_DELAY_MS + WEEK_MS
# The insurer-wide and platform-wide hourly counts are kept two days and a bit: the sweep of
# anomalies compares the last hour with the 24 before it.
KEEP_AGGREGATES_MS = 2 * 93_600_000


class CounterStoreUnavailable(ServiceUnavailable):
    slug = "counter-store-unavailable"
    title = "Checks are paused"

    def __init__(self) -> None:
        super().__init__(
            "Rights checks are paused because the platform cannot verify usage right now. "
            "Use the beneficiary's signed offline attestation or try again in a few minutes.",
            extra={"offline_attestation": True, "attestation_keys": "/.well-known/rempart/attestation-keys"},
        )


class Role(StrEnum):
    ACTOR = "A"  # the account (portal) or API client making the request
    PROFESSIONAL = "R"  # the acting professional (RPPS)
    PRACTICE = "P"


class Admission(StrEnum):
    ADMITTED = "admitted"
    SLOWED = "slowed"  # at the slow step, before the interval has passed
    STEPPED_UP = "stepped_up"  # at the step-up / refusal step
    SUSPENDED = "suspended"
    IDENTITY_LOCKED = "identity_locked"  # this card and NIR missed here with another date of birth


@dataclass(frozen=True)
class SubjectSpec:
    key: str  # "<kind>:<uuid>", e.g. "client:…"
    role: Role
    grace_ms: int  # the profession's usual delay between a check and its claim (at most a month)


@dataclass(frozen=True)
class Floors:
    """Below these values a count cannot reach any step of its signal (the profession's lowest
    threshold at the smallest scale), so it need not be measured exactly. Zero: always measured."""

    distinct_5m: int = 0
    distinct_1h: int = 0
    insurers_24h: int = 0
    new_24h: int = 0
    unclaimed_24h: int = 0
    unclaimed_7d: int = 0


EXACT = Floors()


@dataclass(frozen=True)
class Rules:
    """The store's part of the configuration (``DetectionConfig``), the same for every observation."""

    slow_interval_ms: int = 20_000
    # The identity lock (see ``Observation.attempt``): a card and NIR that missed at an account,
    # client or practice is refused there with another date of birth once it has missed with
    # ``identity_lock_misses`` other dates, or with one when the subject is not in good standing:
    # more than ``standing_misses_1h`` misses in the hour, or fewer than ``standing_hits_24h``
    # answered checks in the day.
    identity_lock_misses: int = 1
    identity_lock_ms: int = HOUR_MS
    standing_misses_1h: int = 0
    standing_hits_24h: int = 0
    usual_min_total: int = 500
    usual_min_share: float = 0.002
    history_decay: float = 0.95
    # A learned daily peak grows by at most this factor a day (the practice's long-term history
    # caps it): a thief who stays under every threshold cannot ramp the baseline up quickly.
    history_growth: float = 1.25
    # How long a practice remembers a patient: a beneficiary not checked there for longer is new.
    known_keep_ms: int = 400 * DAY_MS
    # A network (/24, /48) carrying a practice's traffic is established once it carried traffic on
    # ``network_clean_days`` days without any alert on the practice's subjects from it, and brought
    # at least one returning patient (known to the practice before the network appeared) for every
    # ``returning_credit`` new ones; the practice's first network only needs the clean days.
    network_clean_days: int = 3
    returning_credit: float = 2.0
    # An identity (card and NIR) tried at this many practices within a week is on a list.
    spread_practices: int = 4
    # From a network the practice established, a busy counter's typos are in good standing while
    # they are less than this share of the identities tried within the hour.
    standing_miss_share: float = 0.2


@dataclass(frozen=True)
class Observation:
    now_ms: int
    obs_id: str
    hit: bool
    beneficiary: str  # beneficiary id on a hit; digest of the attempted identity on a miss
    probe: str  # digest of card and NIR (no date of birth), "" when unknown
    insurer: str  # insurer id when known, else ""
    device: str
    network: str
    hour_of_week: int  # local time, Monday 00h = 0
    day: int  # local day number, for the practice's daily history
    default_off_hours: bool  # out of the profession's opening hours
    subjects: tuple[SubjectSpec, ...]  # actor first
    rules: Rules = Rules()
    floors: Floors = EXACT
    # Digest of card, NIR, date of birth and birth rank ("" when unknown): on a miss, remembered
    # under ``probe`` so that another date of birth for the same card and NIR may be refused for
    # ``rules.identity_lock_ms`` ("identity locked"), whether or not it would match.
    attempt: str = ""


@dataclass
class SubjectCounts:
    """What one observation tells the engine about one subject.

    Counts under their floor (``Floors``) are not measured: ``distinct_1h`` is then
    ``distinct_24h`` (unless there were misses in the hour: the share of misses needs it exactly),
    ``distinct_5m`` is then ``distinct_1h`` (bounds, still under the floor); ``insurers_24h`` is 0
    while ``distinct_24h`` is under its floor, and so is ``new_24h`` (new patients are some of
    them); ``new_matured_24h`` (``_7d``) is 0 while ``unclaimed_24h`` (``_7d``) is under its floor
    (the signal is the unclaimed beyond a share of them, never more than the unclaimed)."""

    key: str
    role: Role
    level: int = 0  # effective containment step before this observation
    peak: int = 0
    peak_at_ms: int = 0
    distinct_5m: int = 0
    distinct_1h: int = 0
    distinct_24h: int = 0  # distinct beneficiaries, or distinct attempted identities for misses
    misses_1h: int = 0
    # Beneficiaries new to the practice, checked (account, client, practice) and not followed by a
    # claim within the profession's claim delay: checked within the day (resp. week) before it.
    unclaimed_24h: int = 0
    unclaimed_7d: int = 0
    new_matured_24h: int = 0  # the new beneficiaries checked within those same windows, claimed or not
    new_matured_7d: int = 0
    insurers_24h: int = 0
    locked_identities_1h: int = 0  # cards and NIRs tried again with another date after a miss
    off_hours_1h: int = 0
    new_24h: int = 0  # distinct beneficiaries new to the practice, within 24 h
    misses_24h: int = 0  # distinct identities that missed, within 24 h
    spread_24h: int = 0  # identities checked here (account or client) that were tried at many practices
    # The practice's learned daily peaks (practice subject only).
    base_5m: float = 0.0
    base_1h: float = 0.0
    base_24h: float = 0.0
    base_new: float = 0.0
    base_unclaimed: float = 0.0


@dataclass
class ObservationResult:
    admission: Admission
    retry_after_ms: int = 0
    rejections: int = 0
    governing: str = ""  # subject whose level decided a rejection
    subjects: list[SubjectCounts] = field(default_factory=list)
    new_device: bool = False
    new_network: bool = False
    fresh_since_ms: int = 0  # when the actor last showed a new device or network (0 = never)
    off_hours: bool = False
    beneficiary_practices: int = 0
    kill_switch_version: int = 0
    new_beneficiary: bool = False  # the beneficiary was never checked by this practice (or long ago)
    # The network this request came from, as the practice knows it: not established ("fresh")
    # while the practice has an established one; then what it carried since it first appeared.
    network_fresh: bool = False
    network_new: int = 0  # beneficiaries new to the practice
    network_returning: int = 0  # beneficiaries the practice knew before the network appeared
    network_misses: int = 0
    network_checks: int = 0


@dataclass(frozen=True)
class AggregateHour:
    hour: int
    distinct: int
    checks: int
    misses: int


class CounterStore(Protocol):
    shared: bool  # True when every app process sees the same counters

    def observe(self, obs: Observation) -> ObservationResult: ...

    def follow_up(self, *, practice_key: str, beneficiary: str) -> None:
        """A claim for ``beneficiary`` at the practice: its check is no longer waiting for one."""
        ...

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
        """Raise ``subject`` to ``step`` unless it is already there; returns (before, after). The
        practice's day (and the network's, when given) is no longer clean: nothing is learned from it."""
        ...

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
        """A notice (the lowest step) on ``subject`` today: the practice's day (and the network's)
        is no longer clean. With ``repeated``, today counts among the subject's days of notices.
        Returns on how many distinct days of the last seven ``subject`` had such notices."""
        ...

    def lift(self, *, subject: str, forget_counts: bool) -> None:
        """An operator lifted a containment: the subject's level, strikes and identity locks go
        (for an account or client, the locks its misses set at its practice too); with
        ``forget_counts``, its windows too."""
        ...

    def ease(self, *, subject: str, step: int, now_ms: int) -> None:
        """Lower the subject to ``step`` (after a passkey step-up) and remember a strike at it."""
        ...

    def insurers_seen(self, *, subject: str, since_ms: int) -> list[str]: ...

    def kill_switches(self) -> tuple[int, frozenset[tuple[str, str]] | None]:
        """The switches' version and, when this store holds them, the active (scope, target) pairs."""
        ...

    def publish_kill_switches(self, switches: frozenset[tuple[str, str]]) -> int:
        """Replace the working copy of the active switches; returns the new version."""
        ...

    def aggregates(self, *, scope: str, hours: list[int]) -> list[AggregateHour]: ...

    def active_insurers(self, *, since_ms: int) -> list[str]: ...

    def claim(self, *, name: str) -> bool:
        """True for exactly one caller per ``name`` (one process runs each periodic sweep)."""
        ...

    def pepper(self) -> bytes: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...
