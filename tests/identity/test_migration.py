"""Migration 0002 creates exactly what the identity and professionals models describe."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import rempart.models  # noqa: F401  (every table)
from rempart.db import Base
from rempart.runtime import Runtime

OURS = {
    "practices",
    "professionals",
    "practice_memberships",
    "api_clients",
    "api_client_keys",
    "access_tokens",
    "accounts",
    "account_roles",
    "account_sessions",
    "enrolments",
    "passkeys",
    "recovery_codes",
    "security_events",
    "webauthn_ceremonies",
}


def _table_of(diff: Any) -> str | None:
    op = diff[0] if isinstance(diff, list) else diff
    for item in op[1:]:
        name = getattr(item, "name", None) if not isinstance(item, str) else None
        table = getattr(item, "table", None)
        if table is not None and getattr(table, "name", None):
            return str(table.name)
        if name in OURS:
            return str(name)
        if isinstance(item, str) and item in OURS:
            return item
    return None


def test_the_schema_matches_the_models(runtime: Runtime) -> None:
    with runtime.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diffs = compare_metadata(context, Base.metadata)

    ours = [d for d in diffs if _table_of(d) in OURS]
    assert ours == []
