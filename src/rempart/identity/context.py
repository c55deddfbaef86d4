"""What the identity code holds per app: clock, replay store, login throttle, notifier.

Built lazily from the runtime's settings on first use; tests replace it on ``app.state.identity``
(a controllable clock, a fresh namespace for the shared Redis) before the first request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import redis
from fastapi import Depends, Request
from redis.backoff import NoBackoff
from redis.retry import Retry

from rempart.config import Settings
from rempart.db import utcnow
from rempart.identity.notify import LocalNotifier, Notifier
from rempart.identity.replay import MemoryReplayStore, RedisReplayStore, ReplayStore
from rempart.identity.throttle import LoginLimits, LoginThrottle

Clock = Callable[[], datetime]

TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105  (a URL path, not a secret)


@dataclass
class IdentityServices:
    settings: Settings
    replay: ReplayStore
    clock: Clock
    throttle: LoginThrottle
    notifier: Notifier

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        clock: Clock = utcnow,
        prefix: str = "rempart",
        limits: LoginLimits | None = None,
        notifier: Notifier | None = None,
    ) -> IdentityServices:
        replay: ReplayStore
        if settings.redis_url:
            # One quick try: an unreachable Redis must refuse at once, not after seconds of backoff.
            client = redis.Redis.from_url(
                settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 1)
            )
            replay = RedisReplayStore(client, prefix=prefix)
        else:
            replay = MemoryReplayStore(prefix=prefix)
        return cls(
            settings=settings,
            replay=replay,
            clock=clock,
            throttle=LoginThrottle.build(settings.redis_url, prefix=prefix, limits=limits),
            notifier=notifier or LocalNotifier(),
        )

    @property
    def rp_id(self) -> str:
        return self.settings.rp_id

    @property
    def origin(self) -> str:
        return self.settings.public_origin.rstrip("/")

    @property
    def token_url(self) -> str:
        """The token endpoint's URL: the audience of every client assertion."""
        return self.origin + TOKEN_PATH

    def url_of(self, path: str) -> str:
        return self.origin + path


async def get_identity(request: Request) -> IdentityServices:
    state = request.app.state
    services: IdentityServices | None = getattr(state, "identity", None)
    if services is None:
        services = IdentityServices.build(state.runtime.settings)
        state.identity = services
    return services


IdentityDep = Annotated[IdentityServices, Depends(get_identity)]
