"""The tenant walls in one place (DESIGN.md, invariant 6).

- The SQL wall: a session names the insurer whose rows it works on (:func:`bind_tenant`); on
  PostgreSQL that is ``rempart.insurer_id``, set with ``set_config(..., true)`` (transaction-local,
  like ``SET LOCAL``: a pooled connection forgets it at commit) and set again at the start of every
  later transaction of the same SQLAlchemy session.
- Row-level security on PostgreSQL: every insurer-owned table only shows and accepts the rows of the
  insurer named for the current transaction, and the application runs as a role that cannot bypass
  it. Migrations call :func:`enable_tenant_rls` for each insurer-owned table they create; the ASGI
  app runs as ``settings.database_app_role`` through :func:`use_app_role`; the CLI keeps the owner's
  connection (migrations, imports, ``audit verify``), which FORCE subjects to the same policies
  unless it is a superuser: owner-side commands bind a tenant per insurer too.
- The practice wall: practice software cites its own rights checks, approvals, claims and
  remittances by id, without naming the insurer. The care tables therefore carry a second, read-only
  policy: a row is visible to the practice that made it (``rempart.practice_id``, set per
  transaction). Once the row is found, the session binds its insurer as tenant for everything else.
  On SQLite this is a no-op.
- The readers: every read of an insurer's row, or of a practice's care record, answers "not found"
  both when the row is missing and when it belongs to someone else, so nobody can probe what exists
  (:func:`access_owned`, :func:`owned_by`, :func:`record_of`).

This module sits beside the foundation: it imports ``rempart.db`` and ``rempart.errors``, never a
domain (an import-linter contract says so).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Select, event, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, SessionTransaction

from rempart.db import Base, is_postgresql
from rempart.errors import NotFound

T = TypeVar("T", bound=Base)

# -- the SQL wall: the tenant of a session --------------------------------------------------------

TENANT_SETTING = "rempart.insurer_id"
_TENANT_KEY = "rempart.tenant"
# Built once: a statement rebuilt per call is compiled-cache-keyed again every time.
_SET_TENANT = text(f"SELECT set_config('{TENANT_SETTING}', :v, true)")


def set_tenant(session: Session, insurer_id: uuid.UUID | None) -> None:
    """Name the insurer whose rows this transaction may touch (PostgreSQL row-level security).

    ``set_config(..., true)`` is transaction-local, like ``SET LOCAL``: a pooled connection never
    carries one request's tenant into the next.
    """
    if is_postgresql(session):
        # On the session's connection: a plain statement needs nothing of the ORM's execution.
        session.connection().execute(_SET_TENANT, {"v": str(insurer_id) if insurer_id else ""})


def bind_tenant(session: Session, insurer_id: uuid.UUID | None) -> None:
    """Name the insurer this session works for, now and in every later transaction."""
    session.info[_TENANT_KEY] = insurer_id
    set_tenant(session, insurer_id)


def note_tenant(session: Session, insurer_id: uuid.UUID | None) -> None:
    """Like ``bind_tenant``, for a caller whose own statement has just set the tenant in the current
    transaction (a lookup that sets it as it reads, saving a round trip): later transactions of the
    session get it again, this one is not sent it twice."""
    session.info[_TENANT_KEY] = insurer_id


def bound_tenant(session: Session) -> uuid.UUID | None:
    value = session.info.get(_TENANT_KEY)
    return value if isinstance(value, uuid.UUID) else None


@contextmanager
def tenant(session: Session, insurer_id: uuid.UUID) -> Iterator[Session]:
    """Work on one insurer's rows, then return to the previous binding (cross-insurer jobs)."""
    previous = bound_tenant(session)
    if previous == insurer_id and _TENANT_KEY in session.info:
        yield session
        return
    bind_tenant(session, insurer_id)
    try:
        yield session
    finally:
        bind_tenant(session, previous)


@event.listens_for(Session, "after_begin")
def _reapply_tenant(session: Session, _transaction: SessionTransaction, connection: Connection) -> None:
    if _TENANT_KEY in session.info and connection.dialect.name == "postgresql":
        insurer_id = session.info[_TENANT_KEY]
        connection.execute(_SET_TENANT, {"v": str(insurer_id) if insurer_id else ""})


# -- row-level security on PostgreSQL -------------------------------------------------------------

DEFAULT_APP_ROLE = "rempart_app"
POLICY_NAME = "tenant_isolation"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Insurer-owned tables of the foundation; every later domain lists its own in its migration.
FOUNDATION_TENANT_TABLES = ("insurer_keys", "products", "guarantees", "contracts", "beneficiaries", "cards")


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def tenant_policy_sql(table: str) -> list[str]:
    """The statements that put ``table`` behind the tenant wall (idempotent)."""
    table = _identifier(table)
    expression = f"insurer_id = nullif(current_setting('{TENANT_SETTING}', true), '')::uuid"
    return [
        f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY',
        f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY',
        f'DROP POLICY IF EXISTS {POLICY_NAME} ON "{table}"',
        f'CREATE POLICY {POLICY_NAME} ON "{table}" USING ({expression}) WITH CHECK ({expression})',
    ]


def enable_tenant_rls(op: Any, *tables: str) -> None:
    """For migrations: ``enable_tenant_rls(op, "claims", "claim_lines")``. A no-op on SQLite."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table in tables:
        for statement in tenant_policy_sql(table):
            op.execute(statement)


def disable_tenant_rls(op: Any, *tables: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table in tables:
        name = _identifier(table)
        op.execute(f'DROP POLICY IF EXISTS {POLICY_NAME} ON "{name}"')
        op.execute(f'ALTER TABLE "{name}" NO FORCE ROW LEVEL SECURITY')
        op.execute(f'ALTER TABLE "{name}" DISABLE ROW LEVEL SECURITY')


def app_role_sql(role: str) -> list[str]:
    """Create the application role (no login, no RLS bypass) and grant it data access only."""
    role = _identifier(role)
    return [
        # Concurrent test databases share one cluster: creating the role twice must not fail.
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE "{role}" NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$""",
        # A role made earlier by hand with too much power is brought back; untouched otherwise, so
        # that migrations running side by side (one database per test worker) do not collide.
        f"""DO $$ BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}' AND (rolbypassrls OR rolsuper)) THEN
                ALTER ROLE "{role}" NOBYPASSRLS NOSUPERUSER;
            END IF;
        END $$""",
        # The connecting (owner) role must be able to SET ROLE to it.
        # The role name is checked against a plain-identifier pattern above.
        f"""DO $$ BEGIN
            IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                EXECUTE format('GRANT %I TO %I', '{role}', current_user);
            END IF;
        END $$""",  # noqa: S608
        f'GRANT USAGE ON SCHEMA public TO "{role}"',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"',
        f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"',
        # Tables that later migrations create get the same grants without naming the role again.
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{role}"',
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO "{role}"',
        # Schema history is the owner's business.
        f'REVOKE ALL ON TABLE alembic_version FROM "{role}"',
    ]


def use_app_role(engine: Engine, role: str) -> None:
    """Every connection of ``engine`` switches to ``role`` (PostgreSQL only; no-op otherwise)."""
    if not role or engine.dialect.name != "postgresql":
        return
    statement = f'SET ROLE "{_identifier(role)}"'

    @event.listens_for(engine, "connect")
    def _set_role(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(statement)
        cursor.close()
        dbapi_connection.commit()


def rls_active(session: Session) -> bool:
    """True when this session's queries are subject to row-level security (not a superuser)."""
    if not is_postgresql(session):
        return False
    row = session.execute(
        text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
    ).scalar_one()
    return not row


# -- the practice wall ----------------------------------------------------------------------------

PRACTICE_SETTING = "rempart.practice_id"
PRACTICE_POLICY = "practice_reads_own"
_PRACTICE_KEY = "rempart.practice"
_SET_PRACTICE = text(f"SELECT set_config('{PRACTICE_SETTING}', :v, true)")


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
        session.execute(_SET_PRACTICE, {"v": str(practice_id)})


@event.listens_for(Session, "after_begin")
def _reapply_practice(session: Session, _transaction: SessionTransaction, connection: Connection) -> None:
    practice_id = session.info.get(_PRACTICE_KEY)
    if practice_id is not None and connection.dialect.name == "postgresql":
        connection.execute(_SET_PRACTICE, {"v": str(practice_id)})


# -- the readers: missing and forbidden look the same ---------------------------------------------


def access_owned(session: Session, model: type[T], *, insurer_id: uuid.UUID, key: Any, what: str = "object") -> T:
    """The row of ``model`` with primary key ``(insurer_id, *key)``; NotFound if missing or foreign."""
    rest = key if isinstance(key, tuple) else (key,)
    row = session.get(model, (insurer_id, *rest))
    if row is None or getattr(row, "insurer_id", None) != insurer_id:
        raise NotFound(f"no such {what}")
    return row


def owned_by(model: type[T], insurer_id: uuid.UUID) -> Select[T]:
    """``select(model)`` limited to one insurer's rows; add filters and ordering to it."""
    column: Any = getattr(model, "insurer_id")  # noqa: B009  (every insurer-owned model has it)
    return select(model).where(column == insurer_id)


def record_of(
    session: Session,
    model: type[T],
    record_id: uuid.UUID,
    *,
    practice_id: uuid.UUID | None = None,
    insurer_id: uuid.UUID | None = None,
    missing: type[NotFound] = NotFound,
    what: str = "record",
) -> T:
    """The caller's own ``model`` row with this ``id``, the session bound to its insurer.

    A practice's (``practice_id``): read behind the practice wall, then the row's insurer is bound as
    tenant for everything else. An insurer's (``insurer_id``): that insurer is bound, then the row is
    read. Missing and someone else's answer the same ``missing("no <what> with this id for this
    practice|insurer")``.
    """
    columns: Any = model  # every record model has id, insurer_id and (a practice's) practice_id
    if practice_id is not None and insurer_id is None:
        bind_practice(session, practice_id)
        row = session.scalar(select(model).where(columns.id == record_id, columns.practice_id == practice_id))
        if row is None:
            raise missing(f"no {what} with this id for this practice")
        bind_tenant(session, getattr(row, "insurer_id"))  # noqa: B009  (see columns above)
        return row
    if insurer_id is not None and practice_id is None:
        bind_tenant(session, insurer_id)
        row = session.scalar(select(model).where(columns.id == record_id, columns.insurer_id == insurer_id))
        if row is None:
            raise missing(f"no {what} with this id for this insurer")
        return row
    raise TypeError("record_of needs exactly one of practice_id and insurer_id")
