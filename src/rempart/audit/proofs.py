"""Inclusion proofs: that one event is in a given checkpoint, checkable with the public keys alone.

A proof carries the event's canonical encoding, its audit path up to its batch's root (RFC 9162
section 2.1.3), and the audit path of that batch root in the log-level tree of the target
checkpoint, whose signed head closes the argument. An insurer holding the head as a witness needs
nothing from Rempart's database to check it.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from rempart.audit import merkle
from rempart.audit.canonical import batch_bytes, parse_event, split_batch
from rempart.audit.keys import PublicKeys
from rempart.audit.models import AccessEvent
from rempart.audit.sealing import CheckpointHead
from rempart.errors import NotFound, ValidationFailed

PROOF_VERSION = 1


@dataclass(frozen=True)
class ProofCheck:
    ok: bool
    reason: str
    event: dict[str, str | None] | None = None
    checkpoint: int | None = None


def prove_inclusion(
    conn: Connection, *, event_id: uuid.UUID | None = None, seq: int | None = None, checkpoint: int | None = None
) -> dict[str, Any]:
    """Build the proof that an event (by id, or by sealed number) is in ``checkpoint`` (default: the
    latest one). Finding an event by id reads the whole table (there is no index on it, to keep the
    hot path at its few indexes); by sealed number it is an index lookup."""
    events = AccessEvent.__table__
    if seq is None:
        if event_id is None:
            raise ValidationFailed("name the event by id or by sealed number")
        found = conn.execute(select(events.c.seal_seq).where(events.c.event_id == event_id).limit(1)).first()
        if found is None:
            raise NotFound("no such access event")
        if found[0] is None:
            raise ValidationFailed("this event is not sealed yet; retry in a few seconds")
        seq = int(found[0])
    lines = [
        line
        for _seq, line in split_batch(batch_bytes(conn, seq, seq + 1))
        if event_id is None or line.startswith(str(event_id).encode() + b"\t")
    ]
    if not lines:
        raise NotFound("no such access event")
    canonical = lines[0].decode()
    own = conn.execute(
        text(
            "SELECT number, first_seq, count, leaves FROM audit_checkpoints "
            "WHERE first_seq <= :seq ORDER BY first_seq DESC LIMIT 1"
        ),
        {"seq": seq},
    ).first()
    if own is None or not own[1] <= seq < own[1] + own[2]:
        raise NotFound("no checkpoint seals this event")
    number, first_seq, count = int(own[0]), int(own[1]), int(own[2])
    target = checkpoint or int(conn.execute(text("SELECT max(number) FROM audit_checkpoints")).scalar() or 0)
    if target < number:
        raise ValidationFailed(f"the event was sealed in checkpoint {number}, after checkpoint {target}")
    target_row = conn.execute(
        text("SELECT head, signature FROM audit_checkpoints WHERE number = :n"), {"n": target}
    ).first()
    if target_row is None:
        raise NotFound("no such checkpoint")

    leaves = merkle.split_hashes(bytes(own[3]))
    index = seq - first_seq
    batch_roots = [
        merkle.leaf_hash(bytes.fromhex(CheckpointHead.decode(h).batch_root))
        for (h,) in conn.execute(
            text("SELECT head FROM audit_checkpoints WHERE number <= :n ORDER BY number"), {"n": target}
        )
    ]
    return {
        "v": PROOF_VERSION,
        "event": canonical,
        "seq": seq,
        "checkpoint": number,
        "leaf_index": index,
        "batch_size": count,
        "batch_path": [h.hex() for h in merkle.inclusion_path(leaves, index)],
        "batch_root": merkle.root(leaves).hex(),
        "log_index": number - 1,
        "log_path": [h.hex() for h in merkle.inclusion_path(batch_roots, number - 1)],
        "head": str(target_row[0]),
        "signature": base64.b64encode(bytes(target_row[1])).decode(),
    }


def check_proof(proof: dict[str, Any], keys: PublicKeys) -> ProofCheck:
    """Check a proof with the public keys only."""
    try:
        head = CheckpointHead.decode(proof["head"])
        signature = base64.b64decode(proof["signature"])
        event = parse_event(proof["event"])
        batch_path = [bytes.fromhex(h) for h in proof["batch_path"]]
        log_path = [bytes.fromhex(h) for h in proof["log_path"]]
        leaf_index, batch_size = int(proof["leaf_index"]), int(proof["batch_size"])
        log_index = int(proof["log_index"])
    except (KeyError, ValueError, TypeError):
        return ProofCheck(False, "the proof is malformed")
    if not keys.verify(head.key_id, signature, proof["head"].encode()):
        return ProofCheck(False, "the checkpoint's signature does not verify", event)
    batch_root = merkle.root_from_inclusion(
        merkle.leaf_hash(proof["event"].encode()), leaf_index, batch_size, batch_path
    )
    if batch_root is None:
        return ProofCheck(False, "the event's audit path does not fit its batch", event)
    log_root = merkle.root_from_inclusion(merkle.leaf_hash(batch_root), log_index, head.number, log_path)
    if log_root is None or log_root.hex() != head.log_root:
        return ProofCheck(False, "the event is not in this checkpoint", event)
    return ProofCheck(True, f"the event is in checkpoint {head.number}", event, head.number)
