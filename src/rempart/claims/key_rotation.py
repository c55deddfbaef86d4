"""Claims under their insurer's keys, for a key rotation: a claims agent's rejection comment.

The crypto layer sweeps every row under the insurer's keys (``rempart.protection.rotation``); the
members domain gives its beneficiaries (``members.key_rotation``), this module the comments of
rejected claims. A comment carries its key version in its ciphertext's header only (the claims
table has no version column): the rows with a comment are few (rejections after a person's review),
so those behind are found by reading that header.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rempart.claims.models import Claim
from rempart.claims.service import REVIEW_COMMENT
from rempart.protection.service import InsurerCipher


def _behind(session: Session, insurer_id: uuid.UUID, data_version: int) -> list[tuple[uuid.UUID, bytes]]:
    rows = session.execute(
        select(Claim.id, Claim.review_comment_enc)
        .where(Claim.insurer_id == insurer_id, Claim.review_comment_enc.is_not(None))
        .order_by(Claim.id)
    ).all()
    return [
        (row.id, row.review_comment_enc)
        for row in rows
        if row.review_comment_enc is not None
        and InsurerCipher.ciphertext_version(row.review_comment_enc) < data_version
    ]


class ClaimCommentRows:
    """The rejection comments of the insurer's claims (``EncryptedRows``); no blind index."""

    def reencrypt_behind(
        self, session: Session, cipher: InsurerCipher, *, data_version: int, index_version: int, limit: int
    ) -> int:
        updates = [
            {
                "insurer_id": cipher.insurer_id,
                "id": claim_id,
                "review_comment_enc": cipher.encrypt(
                    cipher.decrypt(blob, table="claims", row_id=claim_id, column=REVIEW_COMMENT),
                    table="claims",
                    row_id=claim_id,
                    column=REVIEW_COMMENT,
                ),
            }
            for claim_id, blob in _behind(session, cipher.insurer_id, data_version)[:limit]
        ]
        if updates:
            session.execute(update(Claim), updates)
        return len(updates)

    def count_behind(self, session: Session, insurer_id: uuid.UUID, *, data_version: int, index_version: int) -> int:
        return len(_behind(session, insurer_id, data_version))
