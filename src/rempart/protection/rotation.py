"""Key rotation without downtime: ``rempart keys rotate --insurer AMC``.

1. Re-wrap the insurer's keys under the active key-encryption key and add new data and index keys;
   the old ones become "retiring": they still open values, new values use the new keys, and
   rights checks match a blind index under either key.
2. Wait out the key cache, then re-encrypt and re-index every beneficiary in batches, one short transaction each.
   This starts only once every process has reloaded its keys, so none still writes under the old
   key or misses a row re-indexed under the new one.
3. Destroy the retired keys: their wrapped material is erased and opens nothing any more.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import or_, select, update

from rempart.db import bind_tenant
from rempart.insurers.service import insurer_by_amc
from rempart.members.models import Beneficiary
from rempart.protection.service import KEY_CACHE_SECONDS
from rempart.runtime import Runtime

_FIELDS = ("nir", "last_name", "first_name", "birth_date", "marital_status")


@dataclass
class RotationReport:
    insurer_id: uuid.UUID
    data_version: int
    index_version: int
    keys_rewrapped: int
    rows_reencrypted: int
    keys_destroyed: int


def _reencrypt_batch(runtime: Runtime, insurer_id: uuid.UUID, data_version: int, index_version: int, size: int) -> int:
    with runtime.sessions.begin() as session:
        bind_tenant(session, insurer_id)
        cipher = runtime.keys.cipher(session, insurer_id, fresh=True)
        rows = session.scalars(
            select(Beneficiary)
            .where(
                Beneficiary.insurer_id == insurer_id,
                or_(Beneficiary.data_key_version < data_version, Beneficiary.index_key_version < index_version),
            )
            .order_by(Beneficiary.id)
            .limit(size)
        ).all()
        updates = []
        for row in rows:
            plain = {
                f: cipher.decrypt(getattr(row, f"{f}_enc"), table="beneficiaries", row_id=row.id, column=f)
                for f in _FIELDS
            }
            values: dict[str, object] = {
                f"{f}_enc": cipher.encrypt(v, table="beneficiaries", row_id=row.id, column=f) for f, v in plain.items()
            }
            values["identity_bidx"] = cipher.identity_index(
                plain["nir"], date.fromisoformat(plain["birth_date"]), row.birth_rank
            )
            updates.append(
                {
                    "insurer_id": insurer_id,
                    "id": row.id,
                    "data_key_version": cipher.active_data_version,
                    "index_key_version": cipher.active_index_version,
                    **values,
                }
            )
        session.expunge_all()
        if updates:
            session.execute(update(Beneficiary), updates)
        return len(updates)


def rotate_insurer_keys(
    *,
    runtime: Runtime,
    amc_number: str,
    batch_size: int = 1000,
    grace_seconds: float = KEY_CACHE_SECONDS + 1,
    on_progress: Callable[[int], None] | None = None,
) -> RotationReport:
    with runtime.sessions.begin() as session:
        insurer = insurer_by_amc(session, amc_number)
        rewrapped = runtime.keys.rewrap_all(session, insurer.id)
        data_version, index_version = runtime.keys.start_rotation(session, insurer.id)

    done = 0

    def sweep() -> None:
        nonlocal done
        while count := _reencrypt_batch(runtime, insurer.id, data_version, index_version, batch_size):
            done += count
            if on_progress:
                on_progress(done)

    if grace_seconds > 0:
        # Every process reloads its keys within KEY_CACHE_SECONDS: after this, all of them encrypt
        # under the new key and match blind indexes under both, so re-indexing a row never hides it.
        time.sleep(grace_seconds)
    sweep()
    with runtime.sessions.begin() as session:
        destroyed = runtime.keys.destroy_retired(session, insurer.id)
    return RotationReport(insurer.id, data_version, index_version, rewrapped, done, destroyed)
