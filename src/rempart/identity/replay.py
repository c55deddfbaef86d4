"""First-use stores: a ``jti`` (assertion or DPoP proof) is accepted once, in every app process.

Redis when ``settings.redis_url`` is set (several processes share it), a dictionary in the embedded
single-process default. An unreachable Redis refuses the request (fail closed): accepting a proof
we cannot record would let it be replayed.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

from rempart.errors import ServiceUnavailable


class ReplayStore(Protocol):
    def first_use(self, namespace: str, value: str, ttl_seconds: int) -> bool:
        """Record ``value``; true the first time it is seen within ``ttl_seconds``, false after."""
        ...


def _key(prefix: str, namespace: str, value: str) -> str:
    # "surrogatepass": a jti is any JSON string, and JSON can escape a lone surrogate ("\\ud800"),
    # which plain UTF-8 cannot encode; this encoding is still one-to-one.
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{prefix}:replay:{namespace}:{digest}"


class MemoryReplayStore:
    def __init__(self, *, prefix: str = "rempart", monotonic: Callable[[], float] = time.monotonic) -> None:
        self._prefix = prefix
        self._monotonic = monotonic
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_use(self, namespace: str, value: str, ttl_seconds: int) -> bool:
        key = _key(self._prefix, namespace, value)
        now = self._monotonic()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
            expires = self._seen.get(key)
            if expires is not None and expires > now:
                return False
            self._seen[key] = now + ttl_seconds
            return True


class RedisReplayStore:
    def __init__(self, client: redis.Redis, *, prefix: str = "rempart") -> None:
        self._client = client
        self._prefix = prefix

    def first_use(self, namespace: str, value: str, ttl_seconds: int) -> bool:
        try:
            created = self._client.set(_key(self._prefix, namespace, value), b"1", nx=True, ex=max(ttl_seconds, 1))
        except redis.RedisError:
            raise ServiceUnavailable("the replay store is unreachable; try again shortly") from None
        return bool(created)
