"""audit: proofs find an event by id through an index; import events by job

Revision ID: 0006_audit_proofs
Revises: 0004_audit
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006_audit_proofs"
down_revision = "0004_audit"
branch_labels = None
depends_on = None


def _partial(condition: str) -> dict[str, Any]:
    return {"postgresql_where": sa.text(condition), "sqlite_where": sa.text(condition)}


def upgrade() -> None:
    # ``rempart audit verify --event ID`` and the insurer's proof endpoint look an event up by its
    # public id. New event ids are time-ordered (UUIDv7), so this index grows at its right edge.
    op.create_index("ix_access_events_event_id", "access_events", ["event_id"])
    # Breach response: "which beneficiaries were written by import job X" (the job id is the
    # events' reference). Partial: no other operation pays for it.
    op.create_index(
        "ix_access_events_import_job",
        "access_events",
        ["reference", "beneficiary_id"],
        **_partial("operation = 'member_import'"),
    )


def downgrade() -> None:
    op.drop_index("ix_access_events_import_job", table_name="access_events")
    op.drop_index("ix_access_events_event_id", table_name="access_events")
