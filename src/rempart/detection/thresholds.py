"""Every threshold of detection in one place, readable by a security operator.

A signal's ``Ladder`` says at which value each step of containment is reached; ``None`` means the
signal never takes that step by itself. Volume thresholds depend on the profession (a pharmacy
checks hundreds of patients a day, an optician tens) and grow with a practice's own clean history,
up to a cap, so that a busy pharmacy is not slowed down on an ordinary day while a new practice
starts from defaults it can live with.

Two kinds of signals. Short windows (5 minutes, an hour) stop a hurried thief within a handful of
records. Long windows (a day, a week, the life of a network) stop a patient one, who paces himself
under every short threshold, asks a free quote for each hit and spreads his checks over the day:
what he cannot fake cheaply is care. He does not know which patients the practice already has
(beneficiaries *new* to the practice), he cannot bill care for them (a claim pays the real
practice, whose account he does not control: checks *not followed by a claim*), and he works from
elsewhere (a *network* that has not carried the practice's own patients on clean days). Baselines
are learned only from days without any alert on the practice, and grow slowly: a thief cannot teach
them his traffic.

The steps, in order (``Step``):
  notice   an alert for the security operators, nothing else;
  slow     one check every ``slow_interval`` (429 with Retry-After);
  step_up  portal: passkey re-authentication; API: checks refused for ``step_up_duration``;
  suspend  the account or client is suspended, all its sessions and tokens revoked, an alert is
           raised to the security operators and to the insurers whose members were checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum
from types import MappingProxyType


class Step(IntEnum):
    NONE = 0
    NOTICE = 1
    SLOW = 2
    STEP_UP = 3
    SUSPEND = 4


@dataclass(frozen=True)
class Ladder:
    notice: float | None = None
    slow: float | None = None
    step_up: float | None = None
    suspend: float | None = None

    def step(self, value: float, *, scale: float = 1.0) -> Step:
        """The highest step whose threshold (times ``scale``, at least 1) ``value`` reaches."""
        # Written out: this runs for every signal of every subject of every rights check.
        if self.suspend is not None and value >= max(1.0, self.suspend * scale):
            return Step.SUSPEND
        if self.step_up is not None and value >= max(1.0, self.step_up * scale):
            return Step.STEP_UP
        if self.slow is not None and value >= max(1.0, self.slow * scale):
            return Step.SLOW
        if self.notice is not None and value >= max(1.0, self.notice * scale):
            return Step.NOTICE
        return Step.NONE


@dataclass(frozen=True)
class OpeningHours:
    """Local hours a new practice of this profession is expected to work (before it has history)."""

    start_hour: int = 8
    end_hour: int = 20  # exclusive
    days: frozenset[int] = frozenset(range(6))  # Monday=0 … Saturday=5

    def is_open(self, weekday: int, hour: int) -> bool:
        return weekday in self.days and self.start_hour <= hour < self.end_hour


ALWAYS_OPEN = OpeningHours(start_hour=0, end_hour=24, days=frozenset(range(7)))


@dataclass(frozen=True)
class ProfessionBaseline:
    """Distinct beneficiaries checked by one practice (or one of its accounts or clients)."""

    distinct_5m: Ladder
    distinct_1h: Ladder
    distinct_24h: Ladder
    # Beneficiaries new to the practice (never checked there, or not for a long time) within 24 h.
    new_24h: Ladder
    # New beneficiaries whose check was not followed by a claim within ``claim_delay`` (a quote or
    # a prior approval is not care), checked within the day (resp. the week) before that delay.
    unclaimed_24h: Ladder
    unclaimed_7d: Ladder
    claim_delay: timedelta  # the profession's usual delay between a check and the claim (≤ 31 days)
    # The share of new patients an honest practice checks and never bills (a patient who leaves
    # without buying, a quote not taken up): unclaimed checks count beyond it.
    unclaimed_rate: float
    insurers_24h: Ladder
    opening: OpeningHours = OpeningHours()


def _baseline(
    *,
    burst: tuple[int, int, int],
    hour: tuple[int, int, int, int],
    day: tuple[int, int, int, int],
    new: tuple[int, int, int, int],
    unclaimed: tuple[int, int, int, int],
    unclaimed_week: tuple[int, int, int],
    claim_delay: timedelta,
    insurers: int,
    unclaimed_rate: float = 0.25,
    opening: OpeningHours = OpeningHours(),
) -> ProfessionBaseline:
    """Thresholds as (slow, step_up, suspend) for 5 minutes, (notice, slow, step_up, suspend) for an
    hour, a day, new beneficiaries in a day and unclaimed ones in a day, (notice, step_up, suspend)
    for unclaimed ones in a week."""
    return ProfessionBaseline(
        distinct_5m=Ladder(slow=burst[0], step_up=burst[1], suspend=burst[2]),
        distinct_1h=Ladder(notice=hour[0], slow=hour[1], step_up=hour[2], suspend=hour[3]),
        distinct_24h=Ladder(notice=day[0], slow=day[1], step_up=day[2], suspend=day[3]),
        new_24h=Ladder(notice=new[0], slow=new[1], step_up=new[2], suspend=new[3]),
        unclaimed_24h=Ladder(notice=unclaimed[0], slow=unclaimed[1], step_up=unclaimed[2], suspend=unclaimed[3]),
        unclaimed_7d=Ladder(notice=unclaimed_week[0], step_up=unclaimed_week[1], suspend=unclaimed_week[2]),
        claim_delay=claim_delay,
        unclaimed_rate=unclaimed_rate,
        insurers_24h=Ladder(notice=insurers),
        opening=opening,
    )


_PHYSICIAN = _baseline(
    burst=(5, 8, 12),
    hour=(15, 20, 30, 45),
    day=(60, 90, 120, 180),
    new=(30, 45, 60, 90),
    unclaimed=(10, 15, 20, 30),
    unclaimed_week=(25, 40, 60),
    claim_delay=timedelta(hours=2),
    insurers=40,
)

# Keys are ``rempart.professionals.models.Profession`` values.
PROFESSIONS: Mapping[str, ProfessionBaseline] = MappingProxyType(
    {
        # A pharmacy bills right after the check, at the counter; several counters at once. Claim
        # delays: opticians, audioprosthetists and dentists bill when the equipment is delivered
        # (weeks), hospitals after the stay, labs and nurses within days.
        "pharmacist": _baseline(
            burst=(15, 20, 30),
            hour=(90, 120, 150, 200),
            day=(400, 600, 800, 1000),
            new=(100, 150, 200, 300),
            unclaimed=(10, 15, 20, 30),
            unclaimed_week=(25, 40, 60),
            claim_delay=timedelta(minutes=30),
            insurers=150,
        ),
        "optician": _baseline(
            burst=(5, 8, 12),
            hour=(10, 15, 20, 30),
            day=(40, 60, 80, 120),
            new=(20, 30, 40, 60),
            unclaimed=(6, 10, 15, 20),
            unclaimed_week=(15, 25, 40),
            claim_delay=timedelta(days=21),
            unclaimed_rate=0.5,
            insurers=30,
        ),
        "audioprosthetist": _baseline(
            burst=(4, 6, 10),
            hour=(8, 12, 16, 25),
            day=(25, 40, 60, 90),
            new=(12, 20, 25, 40),
            unclaimed=(5, 8, 12, 16),
            unclaimed_week=(12, 20, 30),
            claim_delay=timedelta(days=30),
            unclaimed_rate=0.5,
            insurers=20,
        ),
        "dentist": _baseline(
            burst=(5, 8, 12),
            hour=(12, 18, 25, 40),
            day=(50, 70, 90, 130),
            new=(25, 35, 45, 65),
            unclaimed=(8, 12, 18, 25),
            unclaimed_week=(20, 30, 45),
            claim_delay=timedelta(days=14),
            unclaimed_rate=0.4,
            insurers=30,
        ),
        "physician": _PHYSICIAN,
        "midwife": _PHYSICIAN,
        "nurse": _baseline(
            burst=(5, 8, 12),
            hour=(15, 20, 30, 45),
            day=(60, 80, 100, 150),
            new=(20, 30, 40, 60),
            unclaimed=(10, 15, 20, 30),
            unclaimed_week=(25, 40, 60),
            claim_delay=timedelta(days=2),
            insurers=40,
            opening=OpeningHours(start_hour=6, end_hour=22, days=frozenset(range(7))),
        ),
        "physiotherapist": _baseline(
            burst=(5, 8, 12),
            hour=(10, 15, 20, 30),
            day=(40, 60, 80, 120),
            new=(15, 25, 35, 50),
            unclaimed=(8, 12, 18, 25),
            unclaimed_week=(20, 30, 45),
            claim_delay=timedelta(days=7),
            insurers=30,
        ),
        "lab": _baseline(
            burst=(12, 16, 25),
            hour=(50, 80, 100, 150),
            day=(300, 450, 600, 800),
            new=(120, 180, 240, 320),
            unclaimed=(20, 30, 40, 60),
            unclaimed_week=(50, 80, 120),
            claim_delay=timedelta(days=2),
            insurers=120,
        ),
        "radiology": _baseline(
            burst=(8, 12, 18),
            hour=(30, 45, 60, 90),
            day=(150, 220, 300, 400),
            new=(60, 90, 120, 160),
            unclaimed=(15, 25, 35, 50),
            unclaimed_week=(40, 60, 90),
            claim_delay=timedelta(days=2),
            insurers=80,
        ),
        # Hospitals and ambulances work day and night and bill later.
        "hospital": _baseline(
            burst=(20, 30, 45),
            hour=(100, 150, 200, 300),
            day=(800, 1200, 1600, 2000),
            new=(90, 120, 150, 200),
            unclaimed=(40, 60, 80, 120),
            unclaimed_week=(100, 150, 200),
            claim_delay=timedelta(days=10),
            insurers=200,
            opening=ALWAYS_OPEN,
        ),
        "transport": _baseline(
            burst=(4, 6, 10),
            hour=(8, 12, 16, 25),
            day=(40, 60, 80, 120),
            new=(20, 30, 40, 60),
            unclaimed=(10, 15, 20, 30),
            unclaimed_week=(25, 40, 60),
            claim_delay=timedelta(days=7),
            insurers=30,
            opening=ALWAYS_OPEN,
        ),
    }
)


@dataclass(frozen=True)
class DetectionConfig:
    professions: Mapping[str, ProfessionBaseline] = field(default_factory=lambda: PROFESSIONS)
    # A profession without its own baseline (or none known) is treated like a physician's surgery.
    default_profession: ProfessionBaseline = _PHYSICIAN
    timezone: str = "Europe/Paris"

    # Guessing dates of birth. A NIR gives the year and month of birth: a date is one chance in ~30.
    # 1. The identity lock: once a card and NIR missed at an account, client or practice, the same
    #    card and NIR with another date of birth (or birth rank) is refused there for
    #    ``identity_lock_period`` — even when that date is right, and decided before the lookup's
    #    outcome is known — so guessing one person's date gets one answer, never a second. The same
    #    date again is answered (a retry reveals nothing new). A pharmacist who mistyped a date is
    #    told to check the card and call the insurer or use the offline attestation.
    #    An honest typo is not punished: where the account, client or practice is in good standing
    #    (at least ``identity_lock_standing_hits_24h`` answered checks within the day and at most
    #    ``identity_lock_standing_misses_1h`` misses within the hour, the typo included), a card is
    #    locked only once ``identity_lock_misses`` other dates missed for it. Lifting a containment
    #    clears the locks the lifted subject's misses set.
    identity_lock_misses: int = 2
    identity_lock_standing_misses_1h: int = 2
    identity_lock_standing_hits_24h: int = 3
    # From a network the practice established (see ``network_clean_days``), standing needs no
    # answered checks yet (the day's first patient may be the typo), and a busy counter's misses
    # are many only when they are this share of the identities tried within the hour.
    identity_lock_standing_miss_share: float = 0.2
    identity_lock_period: timedelta = timedelta(hours=1)
    # 2. Cards and NIRs tried again with another date after a miss, within the hour, while misses are
    #    at least ``miss_share_min`` of the identities tried: one is a typo corrected; two is a program
    #    guessing (refused, API; passkey step-up, portal); three suspends.
    locked_identities_1h: Ladder = Ladder(step_up=2, suspend=3)
    # 3. Misses ("no matching rights") across cards, counted when they are at least ``miss_share_min``
    #    of the distinct identities tried in the hour: an expired card now and then is ordinary, a
    #    stream of misses is a thief trying one date per NIR over many NIRs. Each answered first
    #    guess is the one chance in ~30 that no platform can refuse (it looks like an honest check):
    #    these few are all a stolen access gets before it is refused.
    misses_1h: Ladder = Ladder(slow=2, step_up=3, suspend=6)
    miss_share_min: float = 0.5
    # 4. Misses within the day beyond a low rate of the identities tried (a pharmacy's honest typos
    #    are rare): a guesser who dilutes his guesses among valid records stays under the share of
    #    misses above, not under this. The value is misses − ``miss_rate`` × identities tried.
    misses_24h: Ladder = Ladder(notice=4, step_up=8, suspend=12)
    miss_rate: float = 0.05

    # A network (/24, /48) that has not carried the practice's own patients on clean days, while the
    # practice has one that has ("fresh"): new beneficiaries from it beyond ``returning_credit`` per
    # returning patient, and misses from it beyond ``miss_rate``, since it first appeared. A stolen
    # key used from elsewhere meets these first; a practice that changed provider brings its own
    # patients along and establishes the new network within ``network_clean_days``.
    fresh_network_new: Ladder = Ladder(notice=5, step_up=10, suspend=20)
    fresh_network_misses: Ladder = Ladder(notice=1.5, step_up=2.5, suspend=4)
    network_clean_days: int = 3
    returning_credit: float = 2.0
    # How long a practice remembers a patient (after that, the patient is new there again).
    known_keep: timedelta = timedelta(days=400)

    # Identities (card and NIR) checked by one account or client within the day that were tried at
    # ``spread_practices`` practices or more within the week: one leaked list, several stolen keys.
    spread_24h: Ladder = Ladder(notice=3, step_up=10, suspend=20)
    spread_practices: int = 4

    # Notices of slow abuse (``SLOW_ABUSE``) on this many distinct days of the last seven escalate:
    # a subject that keeps raising them is not let to stay at notices. (Volume notices have their
    # own ladders, and a practice's first days raise some while its history is learned.)
    repeated_notices: Ladder = Ladder(step_up=3)

    # Out of the practice's usual hours (learned from its history, else the profession's opening
    # hours) volume thresholds shrink, and many such checks raise a notice.
    off_hours_1h: Ladder = Ladder(notice=10)
    off_hours_scale: float = 0.5
    usual_hours_min_history: int = 500  # checks before the practice's own hours replace the default
    usual_hours_min_share: float = 0.002  # an hour of the week with fewer checks than this is unusual
    # For a while after an account or client shows up from a network (/24, /48) it never used
    # before, its volume thresholds shrink: a stolen credential is usually used from elsewhere.
    # Mild, because a practice's address may change with its internet provider.
    fresh_network_scale: float = 0.7
    fresh_network_period: timedelta = timedelta(hours=12)

    # The same beneficiary checked by many practices within a day: a list is being worked through.
    beneficiary_practices_24h: Ladder = Ladder(notice=5)

    # The ladder's mechanics.
    slow_interval: timedelta = timedelta(seconds=20)
    slow_duration: timedelta = timedelta(minutes=15)
    step_up_duration: timedelta = timedelta(minutes=30)
    # Refused requests that push one step further: a client that ignores Retry-After, or keeps
    # calling while refused, is a program, not a person at a counter.
    rejections_to_step_up: int = 5
    rejections_to_suspend: int = 10
    # Once refused, the next offence within this period suspends.
    strike_memory: timedelta = timedelta(hours=24)

    # A practice's own history raises its thresholds: up to ``history_headroom`` times its busiest
    # clean day so far, never more than ``history_cap`` times the profession's defaults. A day is
    # clean when nothing, not even a notice, was raised on the practice or its accounts and clients;
    # the learned peak decays by ``history_decay`` a day and grows by at most ``history_growth``.
    history_headroom: float = 1.5
    history_cap: float = 3.0
    history_decay: float = 0.95
    history_growth: float = 1.25

    # Insurer-wide and platform-wide anomalies (alerts only), evaluated by the periodic sweep.
    aggregate_growth: float = 3.0
    insurer_hourly_floor: int = 200
    platform_hourly_floor: int = 2000
    aggregate_miss_share: float = 0.3
    aggregate_min_checks: int = 200
    sweep_interval: timedelta = timedelta(minutes=1)

    # How long a process trusts its copy of the kill switches.
    kill_switch_cache: timedelta = timedelta(seconds=1)

    def baseline(self, profession: str | None) -> ProfessionBaseline:
        if profession is None:
            return self.default_profession
        return self.professions.get(str(profession), self.default_profession)


DEFAULT_CONFIG = DetectionConfig()

# The signals a patient thief raises and an honest practice rarely does: their notices add up.
SLOW_ABUSE = frozenset(
    {
        "new_24h",
        "unclaimed_24h",
        "unclaimed_7d",
        "misses_24h",
        "fresh_network_new",
        "fresh_network_misses",
        "spread_24h",
    }
)
