"""products: a change or a retirement is a security event of the staff member's account, and a
product in use is retired with a successor named; payment runs (and run requests) take an
Idempotency-Key

Revision ID: 0016_product_events
Revises: 0015_insurer_clients
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rempart.migrations.constraints import replace_check, values_in

revision = "0016_product_events"
down_revision = "0015_insurer_clients"
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
    "passkey_renamed",
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
_NEW_EVENT_KINDS = ("product_changed", "product_retired")
_KEYED = ("payment_runs", "payment_run_requests")


def upgrade() -> None:
    replace_check("security_events", "securityeventkind", values_in("kind", _EVENT_KINDS + _NEW_EVENT_KINDS))
    # No foreign key: on SQLite adding one rebuilds the table, and dropping the old copy would
    # cascade to the guarantees and refuse for the contracts. The service checks the successor
    # (same insurer, open, not the product itself) and refuses to delete a product named as one.
    op.add_column("products", sa.Column("successor_id", sa.Uuid(), nullable=True))
    for table in _KEYED:
        op.add_column(table, sa.Column("idempotency_key", sa.String(length=64), nullable=True))
        op.add_column(table, sa.Column("request_digest", sa.String(length=64), nullable=True))
        op.create_index(f"ix_{table}_idempotency_key", table, ["insurer_id", "idempotency_key"], unique=True)


def downgrade() -> None:
    for table in _KEYED:
        op.drop_index(f"ix_{table}_idempotency_key", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("request_digest")
            batch.drop_column("idempotency_key")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("successor_id")
    events = sa.table("security_events", sa.column("kind", sa.String))
    op.execute(sa.delete(events).where(events.c.kind.in_(_NEW_EVENT_KINDS)))
    replace_check("security_events", "securityeventkind", values_in("kind", _EVENT_KINDS))
