"""Monthly partitions of ``access_events`` on PostgreSQL.

The migration creates the table partitioned by range of ``occurred_at`` with a default partition and
a year of months ahead; the sealer calls ``ensure_partitions`` a few times a day so that next months
exist before their first event. A month whose rows already went to the default partition (the
sealer was stopped for months) is left there and reported: moving them is an operator's job.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from rempart.db import is_postgresql
from rempart.logs import get_logger

log = get_logger("rempart.audit.partitions")


def month_start(day: date, delta: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + delta
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"access_events_p{month:%Y%m}"


def ensure_partitions(session: Session, *, start: datetime | date, months: int) -> list[str]:
    """Create the monthly partitions from ``start``'s month for ``months`` more months; returns the
    names created. Does nothing on SQLite."""
    if not is_postgresql(session):
        return []
    first = month_start(start.date() if isinstance(start, datetime) else start)
    created = []
    for delta in range(months + 1):
        lo, hi = month_start(first, delta), month_start(first, delta + 1)
        name = partition_name(lo)
        if session.scalar(text("SELECT to_regclass(:name)"), {"name": name}) is not None:
            continue
        stranded = session.scalar(
            text("SELECT 1 FROM access_events_default WHERE occurred_at >= :lo AND occurred_at < :hi LIMIT 1"),
            {"lo": lo, "hi": hi},
        )
        if stranded:
            log.warning("audit_partition_not_created", partition=name, reason="rows in the default partition")
            continue
        try:
            # Creating a partition briefly locks the parent: never wait long behind a busy table.
            # Only the owner may create tables; under the application role this fails, harmlessly.
            with session.begin_nested():
                session.execute(text("SET LOCAL lock_timeout = '2s'"))
                session.execute(
                    text(
                        f"CREATE TABLE {name} PARTITION OF access_events "
                        f"FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"
                    )
                )
                _append_only(session, name)
        except DBAPIError as exc:
            log.warning("audit_partition_not_created", partition=name, error_type=type(exc.orig).__name__)
            continue
        created.append(name)
    return created


def _append_only(session: Session, table: str) -> None:
    """A new partition gets the schema's default grants; take rewriting and deleting back from every
    role other than the owner (see the migration), so that a partition cannot be edited by name."""
    grantees = session.scalars(
        text(
            "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
            "WHERE table_name = :t AND grantee <> current_user AND privilege_type IN ('UPDATE', 'DELETE')"
        ),
        {"t": table},
    ).all()
    for role in grantees:
        session.execute(text(f'REVOKE UPDATE, DELETE, TRUNCATE ON "{table}" FROM "{role}"'))
        session.execute(text(f'GRANT UPDATE (seal_seq) ON "{table}" TO "{role}"'))


def partitions(session: Session) -> list[str]:
    """The partitions of ``access_events``, by name (empty on SQLite)."""
    if not is_postgresql(session):
        return []
    rows = session.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'access_events'::regclass ORDER BY c.relname"
        )
    )
    return [r[0] for r in rows]
