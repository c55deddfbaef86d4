"""Inclusion proofs: that one event is in a given checkpoint, checkable with the public keys alone.

A proof carries the event's canonical encoding, its audit path up to its batch's root (RFC 9162
section 2.1.3), and the audit path of that batch root in the log-level tree of the target
checkpoint, whose signed head closes the argument. An insurer holding the head as a witness needs
nothing from Rempart's database to check it.

Consistency proofs (RFC 9162 section 2.1.4) show that a later checkpoint's log tree extends an
earlier one's: an insurer that kept an old head checks a new one without the heads in between.

Nothing here scans the log: the event is found through the index on ``event_id``, its checkpoint
through the index on ``first_seq``, and the log tree's subtree roots come from the frontiers stored
with the checkpoints (``_LogTree``), so a proof reads O(log² n) checkpoint rows by primary key.
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
# Checkpoint and sealed numbers are BIGINT: past this no log has one, and SQLite cannot bind it.
MAX_NUMBER = 2**63 - 1
_HEAD_NUMBERS = ("number", "first_seq", "count", "v")


def checked_head(value: object) -> CheckpointHead:
    """A head read from a file someone hands over (a witness copy, a proof): ``CheckpointHead.decode``
    and each field of the type the sealer writes, or ``ValueError``."""
    if not isinstance(value, str):
        raise ValueError("a checkpoint head is a JSON string")
    try:
        head = CheckpointHead.decode(value)
    except (TypeError, RecursionError):  # another field, or nested past the parser
        raise ValueError("not a checkpoint head of this log") from None
    for name, field in head.__dict__.items():
        wanted = int if name in _HEAD_NUMBERS else str
        if type(field) is not wanted:
            raise ValueError(f"a checkpoint head's {name} is not a {wanted.__name__}")
    if not (1 <= head.number <= MAX_NUMBER and 0 <= head.first_seq <= MAX_NUMBER and 0 <= head.count <= MAX_NUMBER):
        raise ValueError("a checkpoint head names numbers no log can have")
    return head


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
    latest one). Both are index lookups (``ix_access_events_event_id``, ``ix_access_events_seal_seq``)."""
    events = AccessEvent.__table__
    if seq is not None and not 0 <= seq <= MAX_NUMBER:
        raise NotFound("no such access event")
    if checkpoint is not None and not 1 <= checkpoint <= MAX_NUMBER:
        raise NotFound("no such checkpoint")
    if seq is None:
        if event_id is None:
            raise ValidationFailed("name the event by id or by sealed number")
        # Sealed events through the event id index (on SQLite it holds sealed events only), then
        # the sealer's queue, to tell an event not sealed yet from one that does not exist.
        by_id = select(events.c.seal_seq).where(events.c.event_id == event_id).limit(1)
        found = conn.execute(by_id.where(events.c.seal_seq.is_not(None))).first()
        if found is None:
            if conn.execute(by_id.where(events.c.seal_seq.is_(None))).first() is not None:
                raise ValidationFailed("this event is not sealed yet; retry in a few seconds")
            raise NotFound("no such access event")
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
    log_path = merkle.inclusion_path_of(number - 1, target, _LogTree(conn).range_root)
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
        "log_path": [h.hex() for h in log_path],
        "head": str(target_row[0]),
        "signature": base64.b64encode(bytes(target_row[1])).decode(),
    }


def check_proof(proof: dict[str, Any], keys: PublicKeys) -> ProofCheck:
    """Check a proof with the public keys only."""
    try:
        head = checked_head(proof["head"])
        signature = base64.b64decode(proof["signature"])
        if not isinstance(proof["event"], str):
            raise TypeError
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


class _LogTree:
    """Subtree roots of the log-level tree (one leaf per checkpoint: its batch root) read from the
    frontiers stored with the checkpoints, a few rows by primary key per root."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._frontiers: dict[int, merkle.Frontier] = {}

    def _frontier(self, size: int) -> merkle.Frontier:
        if size not in self._frontiers:
            blob = self.conn.execute(
                text("SELECT frontier FROM audit_checkpoints WHERE number = :n"), {"n": size}
            ).scalar()
            if blob is None:
                raise NotFound(f"checkpoint {size} is missing")
            self._frontiers[size] = merkle.Frontier.from_bytes(size, bytes(blob))
        return self._frontiers[size]

    def range_root(self, lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            head = self.conn.execute(text("SELECT head FROM audit_checkpoints WHERE number = :n"), {"n": hi}).scalar()
            if head is None:
                raise NotFound(f"checkpoint {hi} is missing")
            return merkle.leaf_hash(bytes.fromhex(CheckpointHead.decode(str(head)).batch_root))
        # The frontier after checkpoint ``hi`` holds [lo, hi) as its last nodes when ``lo`` starts one.
        whole = self._frontier(hi).root_from(lo)
        if whole is not None:
            return whole
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        return merkle.node_hash(self.range_root(lo, lo + k), self.range_root(lo + k, hi))


def _signed_head(conn: Connection, number: int) -> tuple[str, bytes]:
    row = conn.execute(text("SELECT head, signature FROM audit_checkpoints WHERE number = :n"), {"n": number}).first()
    if row is None:
        raise NotFound(f"no checkpoint {number}")
    return str(row[0]), bytes(row[1])


def prove_consistency(conn: Connection, *, old: int, new: int | None = None) -> dict[str, Any]:
    """The proof that checkpoint ``new`` (default: the latest) extends checkpoint ``old``: RFC 9162
    section 2.1.4 over the log tree, with both signed heads."""
    new = new or int(conn.execute(text("SELECT max(number) FROM audit_checkpoints")).scalar() or 0)
    if not 1 <= old <= new:
        raise ValidationFailed("a consistency proof goes from an earlier checkpoint to a later one")
    if new > MAX_NUMBER:
        raise NotFound(f"no checkpoint {new}")
    old_head, old_signature = _signed_head(conn, old)
    new_head, new_signature = _signed_head(conn, new)
    path = merkle.consistency_path(old, new, _LogTree(conn).range_root)
    return {
        "v": PROOF_VERSION,
        "old_head": old_head,
        "old_signature": base64.b64encode(old_signature).decode(),
        "new_head": new_head,
        "new_signature": base64.b64encode(new_signature).decode(),
        "path": [h.hex() for h in path],
    }


def check_consistency(proof: dict[str, Any], keys: PublicKeys, *, old_head: str | None = None) -> ProofCheck:
    """Check a consistency proof with the public keys only. A witness passes the ``old_head`` it
    kept, so that the proof cannot swap in another old head."""
    try:
        old = checked_head(proof["old_head"])
        new = checked_head(proof["new_head"])
        signatures = base64.b64decode(proof["old_signature"]), base64.b64decode(proof["new_signature"])
        path = [bytes.fromhex(h) for h in proof["path"]]
    except (KeyError, ValueError, TypeError):
        return ProofCheck(False, "the proof is malformed")
    if old_head is not None and old_head != proof["old_head"]:
        return ProofCheck(False, "the proof starts from another head than the one kept")
    for head, text_, signature in ((old, proof["old_head"], signatures[0]), (new, proof["new_head"], signatures[1])):
        if not keys.verify(head.key_id, signature, text_.encode()):
            return ProofCheck(False, f"checkpoint {head.number}'s signature does not verify")
    ok = merkle.verify_consistency(
        old.number, new.number, bytes.fromhex(old.log_root), bytes.fromhex(new.log_root), path
    )
    if not ok:
        return ProofCheck(False, f"checkpoint {new.number} does not extend checkpoint {old.number}")
    return ProofCheck(True, f"checkpoint {new.number} extends checkpoint {old.number}", checkpoint=new.number)
