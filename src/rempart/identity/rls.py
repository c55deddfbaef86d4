"""The second tenant wall: PostgreSQL row-level security (DESIGN.md, invariant 6).

The application's own queries already go through ``access_*`` helpers scoped to the caller. Below
them, on PostgreSQL, every insurer-owned table only shows and accepts the rows of the insurer named
for the current transaction (``rempart.insurer_id``, set with ``set_config(..., true)``, which a
pooled connection forgets at commit), and the application runs as a role that cannot bypass RLS.

- Migrations call :func:`enable_tenant_rls` for each insurer-owned table they create.
- Services call :func:`bind_tenant` once they know the insurer; the binding is re-applied at the
  start of every later transaction of the same SQLAlchemy session.
- The ASGI app runs as ``settings.database_app_role`` through :func:`use_app_role`; the CLI keeps
  the owner's connection (migrations, imports, ``audit verify``), which FORCE subjects to the same
  policies unless it is a superuser: owner-side commands bind a tenant per insurer too.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from rempart.db import TENANT_SETTING, bind_tenant, bound_tenant, is_postgresql, tenant

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


# Binding the tenant of a session lives in rempart.db (every layer needs it); re-exported here.
__all__ = ["bind_tenant", "bound_tenant", "tenant"]


def rls_active(session: Session) -> bool:
    """True when this session's queries are subject to row-level security (not a superuser)."""
    if not is_postgresql(session):
        return False
    row = session.execute(
        text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
    ).scalar_one()
    return not row
