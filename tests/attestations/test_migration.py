"""Migration 0011 creates what the attestation models describe, and adds the product's attestation
validity and the claim's attestation."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import rempart.models  # noqa: F401  (every table)
from rempart.db import Base
from rempart.runtime import Runtime

OURS = {"attestation_keys", "attestations"}


def test_the_schema_matches_the_models(runtime: Runtime) -> None:
    with runtime.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diffs = compare_metadata(context, Base.metadata)
        columns = inspect(conn)
        products = {c["name"]: c for c in columns.get_columns("products")}
        claims = {c["name"] for c in columns.get_columns("claims")}
        claim_keys = [fk["referred_table"] for fk in columns.get_foreign_keys("claims")]

    def table(diff: object) -> str | None:
        op = diff[0] if isinstance(diff, list) else diff
        for item in op[1:]:  # type: ignore[index]
            found = getattr(getattr(item, "table", None), "name", None) or getattr(item, "name", None)
            if isinstance(found, str):
                return found
            if isinstance(item, str):
                return item
        return None

    assert [d for d in diffs if table(d) in OURS] == []
    assert products["attestation_days"]["nullable"] is False
    assert "attestation_id" in claims
    if runtime.engine.dialect.name == "postgresql":  # SQLite cannot add a composite key to a table
        assert "attestations" in claim_keys
