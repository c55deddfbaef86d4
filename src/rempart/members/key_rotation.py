"""Rotating an insurer's keys over its members: ``rempart keys rotate --insurer AMC``.

The crypto layer does the rotation (``rempart.protection.rotation``: the new keys, the wait for
every process to load them, the sweep in batches, the destruction of the old keys, the lock); the
members domain tells it which rows are under the insurer's keys and how one is re-encrypted: a
beneficiary's encrypted fields and its identity blind index.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from rempart.insurers.service import insurer_by_amc
from rempart.members.models import ENCRYPTED_FIELDS, Beneficiary
from rempart.protection.rotation import CombinedRows, EncryptedRows, RotationReport, rotate_keys
from rempart.protection.service import KEY_CACHE_SECONDS, InsurerCipher
from rempart.runtime import Runtime


def _behind(insurer_id: uuid.UUID, data_version: int, index_version: int) -> ColumnElement[bool]:
    return and_(
        Beneficiary.insurer_id == insurer_id,
        or_(Beneficiary.data_key_version < data_version, Beneficiary.index_key_version < index_version),
    )


class BeneficiaryRows:
    """The beneficiaries, the rows of members encrypted under their insurer's keys (``EncryptedRows``)."""

    def reencrypt_behind(
        self, session: Session, cipher: InsurerCipher, *, data_version: int, index_version: int, limit: int
    ) -> int:
        insurer_id = cipher.insurer_id
        rows = session.scalars(
            select(Beneficiary)
            .where(_behind(insurer_id, data_version, index_version))
            .order_by(Beneficiary.id)
            .limit(limit)
        ).all()
        updates = []
        for row in rows:
            plain = {
                f: cipher.decrypt(getattr(row, f"{f}_enc"), table="beneficiaries", row_id=row.id, column=f)
                for f in ENCRYPTED_FIELDS
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

    def count_behind(self, session: Session, insurer_id: uuid.UUID, *, data_version: int, index_version: int) -> int:
        behind = select(func.count()).select_from(Beneficiary).where(_behind(insurer_id, data_version, index_version))
        return session.scalar(behind) or 0


def rotate_insurer_keys(
    *,
    runtime: Runtime,
    amc_number: str,
    batch_size: int = 1000,
    grace_seconds: float = KEY_CACHE_SECONDS + 1,
    on_progress: Callable[[int], None] | None = None,
    also: Sequence[EncryptedRows] = (),
) -> RotationReport:
    with runtime.sessions() as session:
        insurer_id = insurer_by_amc(session, amc_number).id
    return rotate_keys(
        engine=runtime.engine,
        sessions=runtime.sessions,
        keys=runtime.keys,
        insurer_id=insurer_id,
        rows=CombinedRows([BeneficiaryRows(), *also]),
        batch_size=batch_size,
        grace_seconds=grace_seconds,
        on_progress=on_progress,
    )
