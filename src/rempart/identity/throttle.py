"""Login throttling per account and per client address, with the ``limits`` library.

The account key is the login as typed (normalised), whether or not an account has it: an unknown
login is throttled exactly like a known one, so the throttle reveals nothing. Counters live in
Redis when ``settings.redis_url`` is set (shared by every process), in memory otherwise; an
unreachable Redis refuses the attempt.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from rempart.errors import RempartError, ServiceUnavailable


class TooManyAttempts(RempartError):
    status = 429
    slug = "too-many-attempts"
    title = "Too many attempts"


@dataclass(frozen=True)
class LoginLimits:
    per_account: RateLimitItem = field(default_factory=lambda: RateLimitItemPerMinute(10, 15))  # per 15 minutes
    per_address: RateLimitItem = field(default_factory=lambda: RateLimitItemPerMinute(30, 15))


class LoginThrottle:
    def __init__(self, storage: Storage, limits: LoginLimits | None = None) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self.limits = limits or LoginLimits()

    @classmethod
    def build(cls, redis_url: str, *, prefix: str, limits: LoginLimits | None = None) -> LoginThrottle:
        storage: Storage
        if redis_url:
            storage = RedisStorage(redis_url, key_prefix=f"{prefix}:limits", wrap_exceptions=True)
        else:
            storage = MemoryStorage()
        return cls(storage, limits)

    def attempt(self, *, kind: str, login: str, address: str | None) -> None:
        """Count one attempt; refuse once either the account or the address is over its limit."""
        account_key = hashlib.sha256(f"{kind}|{login}".encode()).hexdigest()
        try:
            by_account = self._limiter.hit(self.limits.per_account, "account", account_key)
            by_address = self._limiter.hit(self.limits.per_address, "address", kind, address or "unknown")
        except StorageError:
            raise ServiceUnavailable("login is unavailable for a moment; try again shortly") from None
        if not (by_account and by_address):
            raise TooManyAttempts("too many attempts; wait a few minutes and try again")
