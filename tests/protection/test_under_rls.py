"""Keys, member writes and rotation work for a connection that row-level security constrains
(production's app role, or an owner that is not a superuser): each binds its insurer itself."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from rempart.members.key_rotation import rotate_insurer_keys
from rempart.members.models import Beneficiary
from rempart.runtime import Runtime
from rempart.tenancy import bind_tenant
from tests.factories import load_members, make_insurer, population
from tests.support.tenancy import app_role_runtime


def test_keys_members_and_rotation_under_row_level_security(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("row-level security exists on PostgreSQL only; SQLite relies on the access helpers")
    with app_role_runtime(runtime.settings) as constrained:
        with constrained.sessions() as session:
            assert session.execute(select(func.current_user())).scalar_one() == "rempart_app"
        insurer = make_insurer(constrained)
        other = make_insurer(constrained, amc_number="77120345", name="Prévoyance Vauban")
        records = population(12)
        assert load_members(constrained, insurer, records).beneficiaries_created == len(records)
        assert load_members(constrained, other, population(3, seed=9)).beneficiaries_created > 0

        report = rotate_insurer_keys(runtime=constrained, amc_number=insurer.amc_number, grace_seconds=0)
        assert report.rows_reencrypted == len(records)

        with constrained.sessions() as session:
            # Without a bound tenant the constrained role sees no member at all.
            assert session.scalar(select(func.count()).select_from(Beneficiary)) == 0
            cipher = constrained.keys.cipher(session, insurer.id, fresh=True)
            bind_tenant(session, insurer.id)
            nirs = {
                cipher.decrypt(row.nir_enc, table="beneficiaries", row_id=row.id, column="nir")
                for row in session.scalars(select(Beneficiary).where(Beneficiary.insurer_id == insurer.id))
            }
        assert nirs == {r.nir for r in records}
