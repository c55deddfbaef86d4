"""The practice wall for care records on PostgreSQL, beside the insurer's tenant wall.

Practice software cites its own rights checks, approvals, claims and remittances by id, without
naming the insurer. The care tables therefore carry a second, read-only policy: a row is visible to
the practice that made it (``rempart.practice_id``, set per transaction). Once the row is found, the
session binds its insurer as tenant for everything else. On SQLite this is a no-op.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, SessionTransaction

from rempart.db import is_postgresql

PRACTICE_SETTING = "rempart.practice_id"
PRACTICE_POLICY = "practice_reads_own"
_PRACTICE_KEY = "rempart.practice"
_SET = text(f"SELECT set_config('{PRACTICE_SETTING}', :v, true)")


def practice_policy_sql(table: str) -> list[str]:
    """Statements adding the practice's read policy to a table already behind the tenant wall."""
    expression = f"practice_id = nullif(current_setting('{PRACTICE_SETTING}', true), '')::uuid"
    return [
        f'DROP POLICY IF EXISTS {PRACTICE_POLICY} ON "{table}"',
        f'CREATE POLICY {PRACTICE_POLICY} ON "{table}" FOR SELECT USING ({expression})',
    ]


def enable_practice_reads(op: Any, *tables: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        for statement in practice_policy_sql(table):
            op.execute(statement)


def bind_practice(session: Session, practice_id: uuid.UUID) -> None:
    """Name the practice acting in this session, now and in every later transaction."""
    session.info[_PRACTICE_KEY] = practice_id
    # Outside a transaction, the next one applies it as it begins (``_reapply_practice``).
    if session.in_transaction() and is_postgresql(session):
        session.execute(_SET, {"v": str(practice_id)})


@event.listens_for(Session, "after_begin")
def _reapply_practice(session: Session, _transaction: SessionTransaction, connection: Connection) -> None:
    practice_id = session.info.get(_PRACTICE_KEY)
    if practice_id is not None and connection.dialect.name == "postgresql":
        connection.execute(_SET, {"v": str(practice_id)})
