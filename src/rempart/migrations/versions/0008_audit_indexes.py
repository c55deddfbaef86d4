"""audit: on SQLite the access log's query indexes hold sealed events only

Revision ID: 0008_audit_indexes
Revises: 0006_audit_proofs

Why (measured, bench/audit.py and a per-index insert benchmark): on SQLite in WAL mode every page a
transaction touches is written again to the WAL at its commit, and each rights check commits on its
own. An event touched its table page plus six index pages (actor, practice, beneficiary, insurer,
event id, the sealer's queue), so the log cost the rights check about 30 % of its throughput; each
index cost about as much as the row itself. Made partial on ``seal_seq IS NOT NULL``, the five query
indexes are filled by the sealer's UPDATE instead: once per batch, in one transaction, where a page
holding many new entries is written once. The insert on the hot path touches the row and the
sealer's queue only. Readers find the few events not sealed yet through the queue's index
(``rempart.audit.queries``).

Every index is kept: each serves a query (actor and practice: ``events_of_actors``, the incident
scope; beneficiary: the beneficiary's view and Art. 34 letters; insurer: the insurer's view;
event id: proofs by id; the queue: the sealer; the sealed number: verify and proofs; import job:
breach response for imports, partial on ``member_import`` so the rights check never pays it).

PostgreSQL is unchanged: its hot path was within its budget, and there the indexes of a partitioned
table are rebuilt on every partition under a lock.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_audit_indexes"
down_revision = "0006_audit_proofs"
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
    if op.get_bind().dialect.name != "sqlite":
        return
    for name, (columns, condition) in _INDEXES.items():
        where = f"{condition} AND {SEALED}" if condition and sealed_only else SEALED if sealed_only else condition
        op.drop_index(name, table_name="access_events")
        op.create_index(name, "access_events", columns, sqlite_where=sa.text(where) if where else None)


def upgrade() -> None:
    _recreate(sealed_only=True)


def downgrade() -> None:
    _recreate(sealed_only=False)
