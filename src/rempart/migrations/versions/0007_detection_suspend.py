"""detection: API clients can be suspended (and reinstated); security events for each containment step

Revision ID: 0007_detection_suspend
Revises: 0005_detection
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rempart.migrations.constraints import replace_check, values_in

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


def upgrade() -> None:
    replace_check("api_clients", "clientstatus", values_in("status", (*_CLIENT_STATUS, "suspended")))
    replace_check("security_events", "securityeventkind", values_in("kind", _EVENT_KINDS + _NEW_EVENT_KINDS))


def downgrade() -> None:
    op.execute(sa.text("UPDATE api_clients SET status = 'active' WHERE status = 'suspended'"))
    events = sa.table("security_events", sa.column("kind", sa.String))
    op.execute(sa.delete(events).where(events.c.kind.in_(_NEW_EVENT_KINDS)))
    replace_check("api_clients", "clientstatus", values_in("status", _CLIENT_STATUS))
    replace_check("security_events", "securityeventkind", values_in("kind", _EVENT_KINDS))
