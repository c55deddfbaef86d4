"""Checkpoint heads for witnesses: each insurer keeps the signed heads it is sent.

A witness's copy is what shows a log cut short at its end or rewritten from some point on, which
nothing inside the database can show. ``rempart audit verify --witness FILE`` compares the log with
such a copy; the insurer can also check each head's signature and chain with the public keys alone.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from rempart.audit.keys import PublicKeys
from rempart.audit.models import Checkpoint
from rempart.audit.sealing import LOG_NAME
from rempart.db import utcnow


def export_heads(conn: Connection, *, insurer_id: uuid.UUID, since: int, keys: PublicKeys) -> Iterator[dict[str, Any]]:
    """The export: a first line naming the log, the recipient and the public keys, then one line per
    checkpoint with its exact signed head."""
    yield {
        "log": LOG_NAME,
        "insurer_id": str(insurer_id),
        "exported_at": utcnow().isoformat(),
        "jwks": keys.jwks(),
    }
    rows = conn.execute(
        text(
            "SELECT number, head, signature FROM audit_checkpoints WHERE number >= :n ORDER BY number"
        ).execution_options(yield_per=5_000),
        {"n": since},
    )
    for number, head, signature in rows:
        yield {"number": int(number), "head": head, "signature": base64.b64encode(bytes(signature)).decode()}


def check_heads(lines: list[dict[str, Any]], keys: PublicKeys) -> list[str]:
    """What a witness checks on its own: every head signed, and each naming the one before."""
    from rempart.audit.sealing import CheckpointHead, head_hash

    problems = []
    previous: bytes | None = None
    previous_number: int | None = None
    for line in lines:
        if "head" not in line:
            continue
        head = CheckpointHead.decode(line["head"])
        if not keys.verify(head.key_id, base64.b64decode(line["signature"]), line["head"].encode()):
            problems.append(f"checkpoint {head.number}: bad signature")
        if previous is not None and previous_number == head.number - 1 and bytes.fromhex(head.prev) != previous:
            problems.append(f"checkpoint {head.number}: does not follow checkpoint {previous_number}")
        previous, previous_number = head_hash(line["head"]), head.number
    return problems


def signed_heads(session: Session, *, since: int, limit: int) -> list[tuple[int, str, bytes]]:
    """Checkpoints from number ``since`` on, oldest first: (number, head, Ed25519 signature)."""
    rows = session.execute(
        select(Checkpoint.number, Checkpoint.head, Checkpoint.signature)
        .where(Checkpoint.number >= since)
        .order_by(Checkpoint.number)
        .limit(limit)
    ).all()
    return [(number, head, bytes(signature)) for number, head, signature in rows]
