"""detection: API clients can be suspended (and reinstated); security events for each containment step

Revision ID: 0007_detection_suspend
Revises: 0005_detection
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0007_detection_suspend"
down_revision = "0005_detection"
branch_labels = None
depends_on = "0002_identity"  # api_clients and security_events are created there

_CLIENT_STATUS = ("active", "revoked")
_EVENT_KINDS = (
    "account_invited",
    "enrolment_completed",
    "login",
    "login_failed",
    "new_device",
    "step_up",
    "passkey_added",
    "passkey_removed",
    "passkey_clone_suspected",
    "recovery_codes_created",
    "recovery_code_used",
    "session_revoked",
    "all_sessions_revoked",
    "logout",
    "role_changed",
    "account_suspended",
    "token_refused",
    "client_created",
    "client_key_added",
    "client_key_revoked",
    "client_revoked",
)
_NEW_EVENT_KINDS = ("checks_slowed", "step_up_required", "client_suspended", "containment_lifted")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _replace_check(table: str, name: str, condition: str) -> None:
    """Replace the enum's CHECK constraint (named ``ck_<table>_<enum name>`` by the convention)."""
    full = f"ck_{table}_{name}"
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f(full), table, type_="check")
        op.create_check_constraint(op.f(full), table, condition)
        return
    # SQLite cannot alter a constraint, and batch mode's copy-and-drop of the table would fire the
    # ON DELETE CASCADE of api_client_keys and access_tokens (foreign keys are on, and cannot be
    # turned off inside the migration's transaction). SQLite documents editing the stored schema
    # for a CHECK change that the rows already satisfy (https://sqlite.org/lang_altertable.html,
    # "other kinds of table schema changes"), which is what this is: only the allowed values change.
    sql = bind.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {"t": table})
    current = str(sql.scalar_one())
    pattern = re.compile(rf"CONSTRAINT {full} CHECK \((?:[^()]|\([^()]*\))*\)")
    if len(pattern.findall(current)) != 1:
        raise RuntimeError(f"{full} not found once in the schema of {table}")
    replaced = pattern.sub(lambda _: f"CONSTRAINT {full} CHECK ({condition})", current)
    version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar_one())
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    bind.execute(
        sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = :t"), {"sql": replaced, "t": table}
    )
    bind.exec_driver_sql(f"PRAGMA schema_version={version + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")


def upgrade() -> None:
    _replace_check("api_clients", "clientstatus", _in("status", (*_CLIENT_STATUS, "suspended")))
    _replace_check("security_events", "securityeventkind", _in("kind", _EVENT_KINDS + _NEW_EVENT_KINDS))


def downgrade() -> None:
    op.execute(sa.text("UPDATE api_clients SET status = 'active' WHERE status = 'suspended'"))
    events = sa.table("security_events", sa.column("kind", sa.String))
    op.execute(sa.delete(events).where(events.c.kind.in_(_NEW_EVENT_KINDS)))
    _replace_check("api_clients", "clientstatus", _in("status", _CLIENT_STATUS))
    _replace_check("security_events", "securityeventkind", _in("kind", _EVENT_KINDS))
