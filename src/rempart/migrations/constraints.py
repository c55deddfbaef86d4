"""Helpers of migrations that change which values an enum column's CHECK constraint allows."""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op


def values_in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def replace_check(table: str, name: str, condition: str) -> None:
    """Replace the enum's CHECK constraint (named ``ck_<table>_<enum name>`` by the convention)."""
    full = f"ck_{table}_{name}"
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f(full), table, type_="check")
        op.create_check_constraint(op.f(full), table, condition)
        return
    # SQLite cannot alter a constraint, and batch mode's copy-and-drop of the table would fire the
    # ON DELETE CASCADE of api_client_keys and access_tokens (foreign keys are on, and cannot be
    # turned off inside the migration's transaction). SQLite documents editing the stored schema
    # for a CHECK change that the rows already satisfy (https://sqlite.org/lang_altertable.html,
    # "other kinds of table schema changes"), which is what this is: only the allowed values change.
    sql = bind.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {"t": table})
    current = str(sql.scalar_one())
    pattern = re.compile(rf"CONSTRAINT {full} CHECK \((?:[^()]|\([^()]*\))*\)")
    if len(pattern.findall(current)) != 1:
        raise RuntimeError(f"{full} not found once in the schema of {table}")
    replaced = pattern.sub(lambda _: f"CONSTRAINT {full} CHECK ({condition})", current)
    version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar_one())
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    bind.execute(
        sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = :t"), {"sql": replaced, "t": table}
    )
    bind.exec_driver_sql(f"PRAGMA schema_version={version + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")
