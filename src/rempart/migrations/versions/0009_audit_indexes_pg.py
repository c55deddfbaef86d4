"""audit: on PostgreSQL too, the access log's query indexes hold sealed events only

Revision ID: 0009_audit_indexes_pg
Revises: 0008_audit_indexes

Why: the rights check must pay one indexed insert (issue 5). On PostgreSQL an event's insert still
maintained seven indexes (its key, the sealer's queue and the five query indexes: actor, practice,
beneficiary, insurer, event id), each a page to touch and WAL to write before the request commits.
Made partial on ``seal_seq IS NOT NULL`` as migration 0008 did on SQLite, the five query indexes are
filled by the sealer instead: its UPDATE, which numbers the events, writes a new row version that
every index whose condition it meets receives anyway (numbering changes an indexed column, so the
update is never HOT). The request's insert then maintains the key and the queue only, and the log
as a whole maintains fewer index entries per event (the insert's five entries are no longer made
and then left behind by the update). Readers ask sealed and waiting events separately
(``rempart.audit.queries``), which is what lets PostgreSQL use the partial indexes.

The indexes are built on the partitioned table, hence on every partition, under a lock that blocks
writes to the log while they are built: run it at a quiet hour on a large log.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_audit_indexes_pg"
down_revision = "0008_audit_indexes"
branch_labels = None
depends_on = None

SEALED = "seal_seq IS NOT NULL"
# name: (columns, condition before this revision)
_INDEXES: dict[str, tuple[list[str], str | None]] = {
    "ix_access_events_actor_time": (["actor_id", "occurred_at"], "actor_id IS NOT NULL"),
    "ix_access_events_practice_time": (["practice_id", "occurred_at"], "practice_id IS NOT NULL"),
    "ix_access_events_beneficiary_time": (["beneficiary_id", "occurred_at"], "beneficiary_id IS NOT NULL"),
    "ix_access_events_insurer_time": (["insurer_id", "occurred_at"], None),
    "ix_access_events_event_id": (["event_id"], None),
}


def _recreate(*, sealed_only: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: done by 0008
    for name, (columns, condition) in _INDEXES.items():
        where = f"{condition} AND {SEALED}" if condition and sealed_only else SEALED if sealed_only else condition
        op.drop_index(name, table_name="access_events")
        op.create_index(name, "access_events", columns, postgresql_where=sa.text(where) if where else None)


def upgrade() -> None:
    _recreate(sealed_only=True)


def downgrade() -> None:
    _recreate(sealed_only=False)
