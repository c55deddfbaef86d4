"""Both counter stores hold what the windows read, not all that ever happened: days of activity for
many subjects leave the in-process store no bigger than one day of it (a week for the identities
tried across practices; the checks waiting for a claim, the claim delay and a week; the practices'
patients, ``known_keep``), and leave neither store entries of who checked which beneficiary for
checks no longer waiting, while a claim within that time still counts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis

from rempart.detection.memory import MemoryStore
from rempart.detection.redis_store import RedisStore
from rempart.detection.store import (
    DAY_MS,
    HOUR_MS,
    KEEP_PENDING_MS,
    MINUTE_MS,
    WEEK_MS,
    CounterStore,
    Observation,
    Role,
    Rules,
    SubjectSpec,
)
from tests.detection.conftest import REDIS_URL

T0 = 1_772_524_800_000  # 2026-03-03T08:00:00Z, opening time
GRACE = 15 * MINUTE_MS
# A card that missed is locked at once for another date: refusals fill the lock windows too. The
# usual hours are never learned: the checks after 17:00 stay off hours every day.
# Patients are remembered two days, so that the simulation reaches the steady state.
RULES = Rules(identity_lock_misses=1, usual_min_total=10**9, known_keep_ms=2 * DAY_MS)
REDIS_TIDY = 6 * HOUR_MS  # the Redis store's tidy; the in-process store sweeps hourly
MEMORY_TIDY = HOUR_MS
# Keys of the whole store, not of a subject: constant in size, kept without expiry.
GLOBAL_KEYS = {"ks", "kss", "pepper", "activeins"}


def _subjects(practice: str, actor: str) -> tuple[SubjectSpec, ...]:
    return (
        SubjectSpec(actor, Role.ACTOR, GRACE),
        SubjectSpec("professional:" + actor, Role.PROFESSIONAL, GRACE),
        SubjectSpec(practice, Role.PRACTICE, GRACE),
    )


@dataclass
class Activity:
    """What the simulation did: every answered check and whether a claim came."""

    checks: list[tuple[int, str, str, str, bool]] = field(default_factory=list)  # at, practice, actor, ben, followed
    now: int = 0

    def unclaimed(self, practice: str, *, after: int) -> set[str]:
        return {b for at, p, _, b, followed in self.checks if p == practice and not followed and at > after}


def simulate(store: CounterStore, activity: Activity, *, days: range, gone_after_day0: bool = True) -> None:
    """Working days from 08:00 to 18:00: every 20 minutes each actor checks a beneficiary never
    checked before (one in four followed by a claim), misses now and then with a card it then tries
    with another date (identity locked), off hours after 17:00. Practices "gone:*" work on day 0
    only, then stay quiet."""
    for day in days:
        working = [f"practice:{k}" for k in range(6)]
        if day == 0 and gone_after_day0:
            working += [f"gone:{k}" for k in range(3)]
        for slot in range(30):
            now = T0 + day * DAY_MS + slot * 20 * MINUTE_MS
            for practice in working:
                for j in range(3):
                    actor = f"client:{practice}-{j}"
                    ben = f"b{day}-{slot}-{practice}-{j}"
                    miss = slot % 5 == 4
                    probe = f"card{day}-{slot // 10}-{practice}" if miss or slot % 10 == 9 else ""
                    obs = Observation(
                        now_ms=now,
                        obs_id=uuid.uuid4().hex,
                        hit=not miss,
                        beneficiary=f"x{ben}" if miss else ben,
                        probe=probe,
                        insurer=f"insurer:{slot % 3}",
                        device=f"d-{actor}",
                        network="n1",
                        hour_of_week=8 + slot // 3,
                        day=20_000 + day,
                        default_off_hours=slot >= 27,
                        subjects=_subjects(practice, actor),
                        rules=RULES,
                        attempt=f"a{slot}" if probe else "",
                    )
                    store.observe(obs)
                    if not miss:
                        followed = slot % 4 == 0
                        if followed:
                            store.follow_up(practice_key=practice, beneficiary=ben)
                        activity.checks.append((now, practice, actor, ben, followed))
            activity.now = now


def test_the_in_process_store_holds_a_day_of_activity_however_long_it_runs() -> None:
    store, activity = MemoryStore(), Activity()
    sizes = {}
    for day in range(10):
        simulate(store, activity, days=range(day, day + 1))
        sizes[day] = store.sizes()
    now = activity.now
    # Every day checks new beneficiaries and cards: the store holds no more on day 9 than on day 8
    # (the identities tried across practices are kept a week; the checks waiting for a claim grow
    # for a month and a week, then hold steady too).
    pending = [sizes[day].pop("pending") for day in range(10)]
    waiting = [sizes[day].pop("checked_by") for day in range(10)]
    assert sizes[9] == sizes[8], sizes
    assert sizes[9]["window_members"] > 0
    assert sizes[9]["patients"] == sizes[3]["patients"]  # two days of patients
    assert sizes[0]["window_members"] > sizes[9]["window_members"]  # day 0 had the practices gone since
    assert pending[9] - pending[8] == pending[8] - pending[7] > 0  # a day of unclaimed checks each day
    assert waiting[9] - waiting[8] == waiting[8] - waiting[7] > 0
    # Nothing remains of the practices gone quiet after day 0, nor of any beneficiary or card of
    # the days before: each window holds what its counts read (a day at most), give or take a sweep.
    windows = store._windows
    # (their new patients' checks, never claimed, wait the claim delay and a week, then go too)
    assert not [key for key in windows if "gone:" in key and not key.startswith(("pend:", "new:"))]
    assert not [key for key in windows if key.startswith("benp:b3-")]
    for key, window in windows.items():
        kind = key.partition(":")[0]
        keep = HOUR_MS if kind in ("pm", "off", "lockrej", "locked") else DAY_MS
        keep = {"pend": KEEP_PENDING_MS, "new": KEEP_PENDING_MS, "prp": WEEK_MS}.get(kind, keep)
        assert min(window.items.values()) > now - keep - MEMORY_TIDY, key
    # Who checked which beneficiary: the checks still waiting for a claim, and only them.
    for practice in [f"practice:{k}" for k in range(6)]:
        held = set(store._checked_by.get(practice, {}))
        assert activity.unclaimed(practice, after=now - KEEP_PENDING_MS) <= held
        assert held <= activity.unclaimed(practice, after=now - KEEP_PENDING_MS - MEMORY_TIDY)
    for practice in [p for p in store._checked_by if p.startswith("gone:")]:  # still waiting for claims
        assert set(store._checked_by[practice]) == activity.unclaimed(practice, after=now - KEEP_PENDING_MS)
    # The hourly counts: two days and a bit, as in Redis.
    assert min(store._hll) >= (now - 2 * 93_600_000) // HOUR_MS
    assert store.aggregates(scope="all", hours=[T0 // HOUR_MS])[0].checks == 0


@pytest.fixture
def shared(redis_prefix: str) -> Iterator[tuple[RedisStore, redis.Redis]]:
    store = RedisStore.from_url(REDIS_URL, prefix=redis_prefix)
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield store, client
    client.close()
    store.close()


def test_redis_drops_who_checked_which_beneficiary_once_the_check_left_the_day(
    shared: tuple[RedisStore, redis.Redis], redis_prefix: str
) -> None:
    store, client = shared
    activity = Activity()
    simulate(store, activity, days=range(5))
    now = activity.now
    store.flush()
    for practice in [f"practice:{k}" for k in range(6)]:
        held = set(client.hkeys(f"{redis_prefix}pby:{practice}"))
        assert activity.unclaimed(practice, after=now - KEEP_PENDING_MS) <= held
        assert held <= activity.unclaimed(practice, after=now - KEEP_PENDING_MS - REDIS_TIDY)
        for key in [f"pend:{practice}"] + [f"pend:client:{practice}-{j}" for j in range(3)]:
            assert client.zcount(f"{redis_prefix}{key}", "-inf", now - KEEP_PENDING_MS - REDIS_TIDY) == 0, key
        # The practice's patients: those of the last two days (``known_keep``), give or take a tidy.
        patients = client.zrange(f"{redis_prefix}kn:{practice}", 0, -1, withscores=True)
        assert patients
        assert min(at for _, at in patients) > now - 2 * DAY_MS - REDIS_TIDY
    # The practices gone quiet after day 0 are never tidied again: their keys go by expiry.
    keys = [k.removeprefix(redis_prefix) for k in client.scan_iter(match=redis_prefix + "*", count=1000)]
    assert any(k.startswith("pby:gone:") for k in keys)
    forever = [k for k in keys if k not in GLOBAL_KEYS and client.pttl(redis_prefix + k) < 0]
    assert not forever, forever[:5]


@pytest.mark.parametrize("late", [False, True])
def test_a_claim_within_the_day_still_clears_the_actors_check(store: CounterStore, late: bool) -> None:
    """The entry of who checked a new beneficiary outlives every tidy while the check waits for a
    claim; a claim after the day clears it from the week, and the day's count is unchanged."""
    practice, actor = "practice:p", "client:c"

    def check(at: int, ben: str) -> int:
        result = store.observe(
            Observation(
                now_ms=at,
                obs_id=uuid.uuid4().hex,
                hit=True,
                beneficiary=ben,
                probe="",
                insurer="insurer:1",
                device="d",
                network="n",
                hour_of_week=10,
                day=20_000 + (at - T0) // DAY_MS,
                default_off_hours=False,
                subjects=_subjects(practice, actor),
                rules=RULES,
            )
        )
        return result.subjects[0].unclaimed_24h, result.subjects[0].unclaimed_7d

    check(T0, "watched")
    hours = 26 if late else 20
    for hour in range(1, hours):
        check(T0 + hour * HOUR_MS, f"b{hour}")
    before = check(T0 + hours * HOUR_MS, "b-before")
    store.follow_up(practice_key=practice, beneficiary="watched")
    after = check(T0 + hours * HOUR_MS + MINUTE_MS, "b-after")
    if late:
        assert after[0] == before[0]  # the watched check left the day's count…
        assert after[1] == before[1] - 1  # …not the week's
    else:
        assert after == (before[0] - 1, before[1] - 1)  # the actor's check is claimed (its practice's too)
