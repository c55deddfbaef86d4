"""insurer API clients: an API client belongs to a practice or to an insurer (exactly one), and an
insurer's client carries the scopes it was granted

Revision ID: 0015_insurer_clients
Revises: 0014_back_office

``api_clients`` stays a platform table, outside row-level security: the token endpoint reads a
client before any tenant is known, and practice clients have no insurer. Reads of an insurer's
clients go through ``rempart.identity.clients.access_client`` / ``clients_of``, scoped by owner.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0015_insurer_clients"
down_revision = "0014_back_office"
branch_labels = None
depends_on = None

_TABLE = "api_clients"
_ONE_OWNER = "(practice_id IS NULL) <> (insurer_id IS NULL)"
_SCOPES = "(insurer_id IS NULL) = (scopes = '')"
_FK = "fk_api_clients_insurer_id_insurers"


def _edit_sqlite_schema(bind: sa.engine.Connection, edit: Callable[[str], str]) -> None:
    """Rewrite ``api_clients``' stored CREATE TABLE. Batch mode's copy-and-drop of the table would
    fire the ON DELETE CASCADE of api_client_keys and access_tokens (see migrations.constraints):
    SQLite documents editing the stored schema for changes the rows already satisfy, which these
    are (every existing client has a practice, no insurer and no scopes)."""
    current = str(
        bind.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {"t": _TABLE}
        ).scalar_one()
    )
    replaced = edit(current)
    version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar_one())
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    bind.execute(
        sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = :t"),
        {"sql": replaced, "t": _TABLE},
    )
    bind.exec_driver_sql(f"PRAGMA schema_version={version + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")


def _practice_nullable(sql: str, *, nullable: bool) -> str:
    pattern = re.compile(r"practice_id CHAR\(32\)( NOT NULL)?")
    if len(pattern.findall(sql)) != 1:
        raise RuntimeError("api_clients.practice_id not found once")
    return pattern.sub("practice_id CHAR(32)" + ("" if nullable else " NOT NULL"), sql)


_SQLITE_CONSTRAINTS = (
    f", \n\tCONSTRAINT {_FK} FOREIGN KEY(insurer_id) REFERENCES insurers (id) ON DELETE CASCADE"
    f", \n\tCONSTRAINT ck_api_clients_one_owner CHECK ({_ONE_OWNER})"
    f", \n\tCONSTRAINT ck_api_clients_scopes_of_insurer_clients CHECK ({_SCOPES})"
)


def _add_constraints(sql: str) -> str:
    end = sql.rstrip().rindex(")")
    return _practice_nullable(sql[:end].rstrip() + _SQLITE_CONSTRAINTS + "\n)", nullable=True)


def _drop_constraints(sql: str) -> str:
    if _SQLITE_CONSTRAINTS not in sql:
        raise RuntimeError("the insurer clients' constraints are not where 0015 put them")
    return _practice_nullable(sql.replace(_SQLITE_CONSTRAINTS, ""), nullable=False)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # ADD COLUMN is native (no copy); the constraints and the nullable practice are a schema edit.
        op.execute(f"ALTER TABLE {_TABLE} ADD COLUMN insurer_id CHAR(32)")
        op.execute(f"ALTER TABLE {_TABLE} ADD COLUMN scopes VARCHAR(200) DEFAULT '' NOT NULL")
        _edit_sqlite_schema(bind, _add_constraints)
    else:
        op.add_column(_TABLE, sa.Column("insurer_id", sa.Uuid(), nullable=True))
        op.add_column(_TABLE, sa.Column("scopes", sa.String(length=200), nullable=False, server_default=""))
        op.alter_column(_TABLE, "practice_id", existing_type=sa.Uuid(), nullable=True)
        op.create_foreign_key(op.f(_FK), _TABLE, "insurers", ["insurer_id"], ["id"], ondelete="CASCADE")
        op.create_check_constraint(op.f("ck_api_clients_one_owner"), _TABLE, _ONE_OWNER)
        op.create_check_constraint(op.f("ck_api_clients_scopes_of_insurer_clients"), _TABLE, _SCOPES)
    op.create_index(op.f("ix_api_clients_insurer_id"), _TABLE, ["insurer_id"])


def downgrade() -> None:
    bind = op.get_bind()
    # An insurer's clients cannot be put back under a practice: they go, with their keys and tokens.
    op.execute(f"DELETE FROM {_TABLE} WHERE insurer_id IS NOT NULL")  # noqa: S608  (a constant table name)
    op.drop_index(op.f("ix_api_clients_insurer_id"), table_name=_TABLE)
    if bind.dialect.name == "sqlite":
        _edit_sqlite_schema(bind, _drop_constraints)
        op.execute(f"ALTER TABLE {_TABLE} DROP COLUMN scopes")
        op.execute(f"ALTER TABLE {_TABLE} DROP COLUMN insurer_id")
    else:
        op.drop_constraint(op.f("ck_api_clients_scopes_of_insurer_clients"), _TABLE, type_="check")
        op.drop_constraint(op.f("ck_api_clients_one_owner"), _TABLE, type_="check")
        op.drop_constraint(op.f(_FK), _TABLE, type_="foreignkey")
        op.alter_column(_TABLE, "practice_id", existing_type=sa.Uuid(), nullable=False)
        op.drop_column(_TABLE, "scopes")
        op.drop_column(_TABLE, "insurer_id")
