"""Login throttling per account, per client address and per account from one address, with the
``limits`` library.

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
    """Attempts allowed per 15 minutes.

    A login is locked from one address long before it is locked for everyone: someone who knows a
    person's login cannot lock them out from another network with a dozen attempts, and a
    distributed attempt still meets ``per_account``. (Passkeys cannot be guessed; what these limits
    slow down is recovery-code guessing and ceremony flooding.)
    """

    per_account: RateLimitItem = field(default_factory=lambda: RateLimitItemPerMinute(100, 15))
    per_address: RateLimitItem = field(default_factory=lambda: RateLimitItemPerMinute(30, 15))
    per_account_and_address: RateLimitItem = field(default_factory=lambda: RateLimitItemPerMinute(10, 15))


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
        where = address or "unknown"
        try:
            by_pair = self._limiter.hit(self.limits.per_account_and_address, "pair", account_key, where)
            by_account = self._limiter.hit(self.limits.per_account, "account", account_key)
            by_address = self._limiter.hit(self.limits.per_address, "address", kind, where)
        except StorageError:
            raise ServiceUnavailable("login is unavailable for a moment; try again shortly") from None
        if not (by_pair and by_account and by_address):
            raise TooManyAttempts("too many attempts; wait a few minutes and try again")
