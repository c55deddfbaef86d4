"""identity: a passkey's new name is a security event of its own

Revision ID: 0010_passkey_renamed
Revises: 0007_detection_suspend
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rempart.migrations.constraints import replace_check, values_in

revision = "0010_passkey_renamed"
down_revision = "0007_detection_suspend"
branch_labels = None
depends_on = None

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
    "checks_slowed",
    "step_up_required",
    "client_suspended",
    "containment_lifted",
)


def upgrade() -> None:
    replace_check("security_events", "securityeventkind", values_in("kind", (*_EVENT_KINDS, "passkey_renamed")))


def downgrade() -> None:
    events = sa.table("security_events", sa.column("kind", sa.String))
    op.execute(sa.update(events).where(events.c.kind == "passkey_renamed").values(kind="passkey_added"))
    replace_check("security_events", "securityeventkind", values_in("kind", _EVENT_KINDS))
