"""A jti is accepted once across every app process (Redis), and a dead Redis refuses (fail closed)."""

from __future__ import annotations

import os
import uuid

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from rempart.errors import ServiceUnavailable
from rempart.identity.replay import MemoryReplayStore, RedisReplayStore

REDIS_URL = os.environ.get("REMPART_TEST_REDIS_URL", "")


def test_memory_store_accepts_once_within_the_window() -> None:
    now = [100.0]
    store = MemoryReplayStore(monotonic=lambda: now[0])

    assert store.first_use("dpop", "abc", 60)
    assert not store.first_use("dpop", "abc", 60)
    assert store.first_use("assertion", "abc", 60)  # namespaces are apart
    now[0] += 61
    assert store.first_use("dpop", "abc", 60)


@pytest.mark.skipif(not REDIS_URL, reason="needs REMPART_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
def test_two_processes_sharing_redis_accept_a_jti_once() -> None:
    prefix = f"t{uuid.uuid4().hex}"
    first = RedisReplayStore(redis.Redis.from_url(REDIS_URL), prefix=prefix)
    second = RedisReplayStore(redis.Redis.from_url(REDIS_URL), prefix=prefix)
    jti = uuid.uuid4().hex

    assert first.first_use("dpop", jti, 60)
    assert not second.first_use("dpop", jti, 60)


def test_an_unreachable_redis_refuses_instead_of_accepting() -> None:
    dead = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2, retry=Retry(NoBackoff(), 1)
    )
    store = RedisReplayStore(dead)

    with pytest.raises(ServiceUnavailable):
        store.first_use("dpop", "abc", 60)
