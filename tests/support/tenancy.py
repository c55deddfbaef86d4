"""The application as production runs it on PostgreSQL: connected as the role that cannot bypass
row-level security. Test setup keeps using the owner's ``runtime``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rempart.config import Settings
from rempart.runtime import Runtime
from rempart.tenancy import DEFAULT_APP_ROLE, use_app_role


@contextmanager
def app_role_runtime(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.build(settings)
    use_app_role(runtime.engine, settings.database_app_role or DEFAULT_APP_ROLE)
    try:
        yield runtime
    finally:
        runtime.close()
