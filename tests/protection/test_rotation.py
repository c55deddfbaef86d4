"""Key rotation: after `keys rotate`, every value still opens, matches still work, and the old key
opens nothing."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from typer.testing import CliRunner

from rempart.cli import app
from rempart.config import get_settings
from rempart.members.key_rotation import rotate_insurer_keys
from rempart.members.models import ENCRYPTED_FIELDS, Beneficiary
from rempart.protection.models import InsurerKey, KeyPurpose, KeyState
from rempart.protection.service import NONCE_BYTES, InsurerCipher
from rempart.runtime import Runtime
from tests.factories import load_members, make_insurer, population


def _open_all(runtime: Runtime, insurer_id: uuid.UUID) -> dict[uuid.UUID, dict[str, str]]:
    with runtime.sessions() as session:
        cipher = runtime.keys.cipher(session, insurer_id, fresh=True)
        return {
            row.id: {
                f: cipher.decrypt(getattr(row, f"{f}_enc"), table="beneficiaries", row_id=row.id, column=f)
                for f in ENCRYPTED_FIELDS
            }
            for row in session.scalars(select(Beneficiary).where(Beneficiary.insurer_id == insurer_id))
        }


def _old_key_opens(old_key: AESGCM, cipher: InsurerCipher, row: Beneficiary, field: str) -> bool:
    blob = getattr(row, f"{field}_enc")
    start = 5
    nonce, sealed = blob[start : start + NONCE_BYTES], blob[start + NONCE_BYTES :]
    for version in (1, InsurerCipher.ciphertext_version(blob)):
        aad = f"{row.insurer_id}|beneficiaries|{row.id}|{field}|{version}".encode()
        try:
            old_key.decrypt(nonce, sealed, aad)
        except InvalidTag:
            continue
        return True
    return False


def test_rotation_reencrypts_everything_and_the_old_key_opens_nothing(runtime: Runtime) -> None:
    insurer = make_insurer(runtime)
    records = population(40)
    load_members(runtime, insurer, records)
    before = _open_all(runtime, insurer.id)
    with runtime.sessions() as session:
        old = runtime.keys.cipher(session, insurer.id, fresh=True)
    old_data_key, old_index = old.data_keys[1], old.identity_index(records[0].nir, records[0].birth_date, 1)

    report = rotate_insurer_keys(runtime=runtime, amc_number=insurer.amc_number, batch_size=7, grace_seconds=0)

    assert (report.data_version, report.index_version, report.rows_reencrypted) == (2, 2, len(records))
    assert _open_all(runtime, insurer.id) == before
    with runtime.sessions() as session:
        keys = session.scalars(select(InsurerKey).where(InsurerKey.insurer_id == insurer.id)).all()
        assert {(k.purpose, k.version, k.state) for k in keys} == {
            (KeyPurpose.DATA, 1, KeyState.DESTROYED),
            (KeyPurpose.INDEX, 1, KeyState.DESTROYED),
            (KeyPurpose.DATA, 2, KeyState.ACTIVE),
            (KeyPurpose.INDEX, 2, KeyState.ACTIVE),
        }
        assert all(k.wrapped is None for k in keys if k.version == 1)
        cipher = runtime.keys.cipher(session, insurer.id, fresh=True)
        assert list(cipher.data_keys) == [2]
        rows = session.scalars(select(Beneficiary).where(Beneficiary.insurer_id == insurer.id)).all()
        assert {(r.data_key_version, r.index_key_version) for r in rows} == {(2, 2)}
        assert not any(_old_key_opens(old_data_key, cipher, r, f) for r in rows for f in ENCRYPTED_FIELDS)
        # The blind index moved to the new key: the old index value matches no row, the new one does.
        assert old_index not in {r.identity_bidx for r in rows}
        new_index = cipher.identity_index(records[0].nir, records[0].birth_date, records[0].birth_rank)
        assert new_index in {r.identity_bidx for r in rows}


def test_during_rotation_both_keys_open_and_match(runtime: Runtime) -> None:
    insurer = make_insurer(runtime)
    records = population(10)
    load_members(runtime, insurer, records)
    with runtime.sessions.begin() as session:
        runtime.keys.start_rotation(session, insurer.id)
    with runtime.sessions() as session:
        cipher = runtime.keys.cipher(session, insurer.id, fresh=True)
        assert sorted(cipher.data_keys) == [1, 2]
        assert cipher.active_data_version == 2
        stored = set(session.scalars(select(Beneficiary.identity_bidx)))
        candidates = cipher.identity_index_candidates(records[0].nir, records[0].birth_date, records[0].birth_rank)
        assert stored.intersection(candidates)


def test_the_kek_can_be_replaced_and_the_cli_rotates(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rempart.protection.kek import LocalKeyRing, write_private

    insurer = make_insurer(runtime)
    load_members(runtime, insurer, population(5))
    ring = tmp_path / "kek.json"
    write_private(ring, runtime.settings.kek_file.read_text())
    new_kek = LocalKeyRing.add_key(ring)
    monkeypatch.setenv("REMPART_KEK_FILE", str(ring))
    get_settings.cache_clear()  # fixtures may have read the settings before this variable was set

    result = CliRunner().invoke(
        app, ["keys", "rotate", "--insurer", insurer.amc_number, "--db", runtime.settings.database_url, "--grace", "0"]
    )

    assert result.exit_code == 0, result.output
    assert "re-encrypted" in result.output
    with runtime.sessions() as session:
        live = session.scalars(
            select(InsurerKey).where(InsurerKey.insurer_id == insurer.id, InsurerKey.state == KeyState.ACTIVE)
        ).all()
        assert {k.kek_id for k in live} == {new_kek}
