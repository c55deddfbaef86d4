"""Invariant 5: values exist only as ciphertext bound to insurer, row and field."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from rempart.errors import KeyUnavailable
from rempart.insurers.service import create_insurer
from rempart.runtime import Runtime


def test_a_value_opens_only_on_its_own_insurer_row_and_field(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        a = create_insurer(session=session, keys=runtime.keys, amc_number="12345678", name="Mutuelle A")
        b = create_insurer(session=session, keys=runtime.keys, amc_number="87654321", name="Mutuelle B")
        cipher_a = runtime.keys.cipher(session, a.id)
        cipher_b = runtime.keys.cipher(session, b.id)
    row, other_row = uuid.uuid4(), uuid.uuid4()
    blob = cipher_a.encrypt("1 85 05 78 006 084 36", table="beneficiaries", row_id=row, column="nir")

    assert b"85 05" not in blob
    assert cipher_a.decrypt(blob, table="beneficiaries", row_id=row, column="nir") == "1 85 05 78 006 084 36"
    for attempt in (
        lambda: cipher_a.decrypt(blob, table="beneficiaries", row_id=other_row, column="nir"),
        lambda: cipher_a.decrypt(blob, table="beneficiaries", row_id=row, column="last_name"),
        lambda: cipher_b.decrypt(blob, table="beneficiaries", row_id=row, column="nir"),
    ):
        with pytest.raises(KeyUnavailable):
            attempt()


def test_blind_index_is_per_insurer_and_exact(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        a = create_insurer(session=session, keys=runtime.keys, amc_number="12345678", name="Mutuelle A")
        b = create_insurer(session=session, keys=runtime.keys, amc_number="87654321", name="Mutuelle B")
        cipher_a = runtime.keys.cipher(session, a.id)
        cipher_b = runtime.keys.cipher(session, b.id)
    nir, born = "185057800608436", date(1985, 5, 12)

    assert cipher_a.identity_index(nir, born, 1) == cipher_a.identity_index("1 85 05 78 006 084 36", born, 1)
    assert cipher_a.identity_index(nir, born, 1) != cipher_b.identity_index(nir, born, 1)
    assert cipher_a.identity_index(nir, born, 1) != cipher_a.identity_index(nir, born, 2)
    assert cipher_a.identity_index(nir, born, 1) != cipher_a.identity_index(nir, date(1985, 5, 13), 1)
