"""The Redis script and the in-process store follow the same rules: same inputs, same answers."""

from __future__ import annotations

import random
from dataclasses import asdict
from typing import Any

from rempart.detection.memory import MemoryStore
from rempart.detection.redis_store import RedisStore
from rempart.detection.store import HOUR_MS, MINUTE_MS, Observation, ObservationResult, Role, SubjectSpec
from tests.detection.conftest import REDIS_URL

T0 = 1_772_524_800_000  # 2026-03-03T08:00:00Z


def _normalised(result: ObservationResult) -> dict[str, Any]:
    data = asdict(result)
    for subject in data["subjects"]:
        for field in ("base_5m", "base_1h", "base_24h"):
            subject[field] = round(subject[field], 6)
    return data


def test_memory_and_redis_stores_agree_on_a_random_history(redis_prefix: str) -> None:
    rng = random.Random(20240219)
    memory, shared = MemoryStore(), RedisStore.from_url(REDIS_URL, prefix=redis_prefix)
    actors = [f"client:{i}" for i in range(3)] + [f"account:{i}" for i in range(2)]
    practices = ["practice:a", "practice:b"]
    beneficiaries = [f"b{i}" for i in range(40)]
    probes = ["", "", "p1", "p2", "p3"]
    now = T0
    try:
        for step in range(1500):
            now += rng.choice([0, 1000, 15_000, MINUTE_MS, 10 * MINUTE_MS, HOUR_MS, 5 * HOUR_MS])
            actor = rng.choice(actors)
            practice = practices[actors.index(actor) % 2]
            draw = rng.random()
            if draw < 0.05:
                level = rng.choice([2, 3, 4])
                until = 0 if level == 4 else now + rng.choice([MINUTE_MS, 30 * MINUTE_MS])
                args = {"subject": rng.choice([actor, practice]), "step": level, "until_ms": until, "now_ms": now}
                assert memory.escalate(**args, practice_key=practice) == shared.escalate(**args, practice_key=practice)
                continue
            if draw < 0.08:
                ben = rng.choice(beneficiaries)
                memory.follow_up(practice_key=practice, beneficiary=ben)
                shared.follow_up(practice_key=practice, beneficiary=ben)
                continue
            if draw < 0.09:
                memory.lift(subject=actor, forget_counts=True)
                shared.lift(subject=actor, forget_counts=True)
                continue
            if draw < 0.10:
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
                network=rng.choice(["", "n1", "n2", "n3"]),
                hour_of_week=rng.randrange(168),
                day=20_000 + (now - T0) // (24 * HOUR_MS),
                default_off_hours=rng.random() < 0.3,
                subjects=(
                    SubjectSpec(actor, Role.ACTOR, 15 * MINUTE_MS),
                    SubjectSpec("professional:" + actor, Role.PROFESSIONAL, 15 * MINUTE_MS),
                    SubjectSpec(practice, Role.PRACTICE, 15 * MINUTE_MS),
                ),
                slow_interval_ms=20_000,
                identity_lock_misses=2,
                usual_min_total=20,
                usual_min_share=0.02,
                history_decay=0.95,
            )
            expected, got = memory.observe(obs), shared.observe(obs)
            assert _normalised(got) == _normalised(expected), f"step {step}"
        hours = list(range(T0 // HOUR_MS, now // HOUR_MS + 1))
        assert shared.aggregates(scope="all", hours=hours) == memory.aggregates(scope="all", hours=hours)
        assert shared.insurers_seen(subject="client:0", since_ms=now - 24 * HOUR_MS) == memory.insurers_seen(
            subject="client:0", since_ms=now - 24 * HOUR_MS
        )
        for since in (now - HOUR_MS, now - 30 * HOUR_MS):
            assert shared.active_insurers(since_ms=since) == memory.active_insurers(since_ms=since)
    finally:
        shared.close()
