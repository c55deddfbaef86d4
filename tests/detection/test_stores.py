"""The Redis script and the in-process store follow the same rules: same inputs, same answers."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, replace
from typing import Any

import pytest

from rempart.detection.memory import MemoryStore
from rempart.detection.redis_store import RedisStore
from rempart.detection.store import (
    HOUR_MS,
    KEEP_AGGREGATES_MS,
    MINUTE_MS,
    Floors,
    Observation,
    ObservationResult,
    Role,
    Rules,
    SubjectSpec,
)
from tests.detection.conftest import REDIS_URL

T0 = 1_772_524_800_000  # 2026-03-03T08:00:00Z
RULES = Rules(
    slow_interval_ms=20_000,
    identity_lock_misses=2,
    identity_lock_ms=HOUR_MS,
    standing_misses_1h=2,
    standing_hits_24h=3,
    usual_min_total=20,
    usual_min_share=0.02,
    history_decay=0.95,
    history_growth=1.25,
    known_keep_ms=3 * 24 * HOUR_MS,  # patients forgotten within the history, so both paths are compared
    network_clean_days=2,
    returning_credit=2.0,
    spread_practices=2,
)
# Every card that missed locked at once (more locks, more lifts of them).
STRICT = replace(RULES, identity_lock_misses=1, standing_hits_24h=10**6)
# Exact counts, and floors low enough to be crossed in this history, so both paths are compared.
FLOORS = [
    Floors(),
    Floors(distinct_5m=3, distinct_1h=6, insurers_24h=2, new_24h=4, unclaimed_24h=2, unclaimed_7d=3),
]


def _expected(result: ObservationResult) -> dict[str, Any]:
    """The result, its learned bases to ~12 digits (Lua keeps 14 significant digits)."""
    data = asdict(result)
    for subject in data["subjects"]:
        for field in ("base_5m", "base_1h", "base_24h", "base_new", "base_unclaimed"):
            subject[field] = pytest.approx(subject[field], rel=1e-12, abs=1e-9)
    return data


def test_memory_and_redis_stores_agree_on_a_random_history(redis_prefix: str) -> None:
    rng = random.Random(20240219)
    memory, shared = MemoryStore(), RedisStore.from_url(REDIS_URL, prefix=redis_prefix)
    actors = [f"client:{i}" for i in range(3)] + [f"account:{i}" for i in range(2)]
    practices = ["practice:a", "practice:b"]
    beneficiaries = [f"b{i}" for i in range(40)]
    probes = ["", "", "p1", "p2", "p3"]
    now = T0
    exercised: Counter[str] = Counter()
    try:
        for step in range(3000):
            now += rng.choice([0, 1000, 15_000, MINUTE_MS, 10 * MINUTE_MS, HOUR_MS, 5 * HOUR_MS])
            actor = rng.choice(actors)
            practice = practices[actors.index(actor) % 2]
            draw = rng.random()
            day = 20_000 + (now - T0) // (24 * HOUR_MS)
            network = rng.choice(["", "n1", "n2", "n3"])
            if draw < 0.04:
                level = rng.choice([2, 2, 3, 3, 4])
                until = 0 if level == 4 else now + rng.choice([MINUTE_MS, 30 * MINUTE_MS])
                # Suspensions last until lifted: only actors, so that the history goes on.
                subject = actor if level == 4 else rng.choice([actor, practice])
                args = {"subject": subject, "step": level, "until_ms": until, "now_ms": now, "network": network}
                assert memory.escalate(**args, practice_key=practice) == shared.escalate(**args, practice_key=practice)
                continue
            if draw < 0.055:
                noticed = {
                    "subject": rng.choice([actor, practice]),
                    "day": day,
                    "now_ms": now,
                    "network": network,
                    "repeated": rng.random() < 0.7,
                }
                days = memory.notice(**noticed, practice_key=practice)
                assert shared.notice(**noticed, practice_key=practice) == days
                continue
            if draw < 0.08:
                ben = rng.choice(beneficiaries)
                memory.follow_up(practice_key=practice, beneficiary=ben)
                shared.follow_up(practice_key=practice, beneficiary=ben)
                continue
            if draw < 0.10:
                lifted, forget = rng.choice([actor, actor, practice]), rng.random() < 0.7
                memory.lift(subject=lifted, forget_counts=forget)
                shared.lift(subject=lifted, forget_counts=forget)
                continue
            if draw < 0.11:
                memory.ease(subject=actor, step=2, now_ms=now)
                shared.ease(subject=actor, step=2, now_ms=now)
                continue
            hit = rng.random() < 0.8
            obs = Observation(
                now_ms=now,
                obs_id=f"o{step}",
                hit=hit,
                beneficiary=rng.choice(beneficiaries) if hit else f"x{rng.randrange(30)}",
                probe=rng.choice(probes),
                insurer=rng.choice(["", "i1", "i2", "i3"]),
                device=rng.choice(["", "d1", "d2"]),
                network=network,
                hour_of_week=rng.randrange(168),
                day=day,
                default_off_hours=rng.random() < 0.3,
                subjects=(
                    SubjectSpec(actor, Role.ACTOR, 15 * MINUTE_MS),
                    SubjectSpec("professional:" + actor, Role.PROFESSIONAL, 15 * MINUTE_MS),
                    SubjectSpec(practice, Role.PRACTICE, 15 * MINUTE_MS),
                ),
                rules=rng.choice([RULES, RULES, STRICT]),
                floors=rng.choice(FLOORS),
                attempt=rng.choice(["", "a1", "a2", "a3"]) if not hit else rng.choice(["", "a1", "a2"]),
            )
            expected, got = memory.observe(obs), shared.observe(obs)
            assert asdict(got) == _expected(expected), f"step {step}"
            actor_counts = got.subjects[0]
            for name, reached in (
                ("fresh network", got.network_fresh),
                ("new beneficiary", got.new_beneficiary),
                ("unclaimed", actor_counts.unclaimed_7d),
                ("spread", actor_counts.spread_24h),
                ("learned new", got.subjects[2].base_new),
            ):
                exercised[name] += bool(reached)
        # The history reaches every long-window count, not only zeros.
        assert len(exercised) == 5, exercised
        assert min(exercised.values()) >= 20, exercised
        # The hours both keep (the history spans weeks; the sweep of anomalies reads 25 hours).
        kept = (now - KEEP_AGGREGATES_MS) // HOUR_MS + 1
        hours = list(range(kept, now // HOUR_MS + 1))
        assert len(hours) > 48
        assert shared.aggregates(scope="all", hours=hours) == memory.aggregates(scope="all", hours=hours)
        assert shared.insurers_seen(subject="client:0", since_ms=now - 24 * HOUR_MS) == memory.insurers_seen(
            subject="client:0", since_ms=now - 24 * HOUR_MS
        )
        for since in (now - HOUR_MS, now - 30 * HOUR_MS):
            assert shared.active_insurers(since_ms=since) == memory.active_insurers(since_ms=since)
    finally:
        shared.close()
