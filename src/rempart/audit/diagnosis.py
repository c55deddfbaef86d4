"""Naming what changed in a sealed batch that no longer matches its signed content.

Each stored event is compared with the batch's leaf list, itself authenticated by the signed batch
root: an event whose hash sits at another position was moved, one whose hash is nowhere was edited,
a sealed position with no event lost it, and a second event under one number was slipped in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import text
from sqlalchemy.engine import Connection

from rempart.audit import merkle
from rempart.audit.canonical import batch_bytes, split_batch
from rempart.audit.content import SQLITE_JSON, blob_events
from rempart.audit.sealing import CheckpointHead


class ProblemKind(StrEnum):
    EDITED = "edited"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    UNSEALED = "unsealed"
    CHECKPOINT_MISSING = "checkpoint_missing"
    CHECKPOINT_ALTERED = "checkpoint_altered"
    BAD_SIGNATURE = "bad_signature"
    BROKEN_CHAIN = "broken_chain"
    LEAVES_ALTERED = "leaves_altered"
    TRUNCATED = "truncated"


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    detail: str
    checkpoint: int | None = None
    seq: int | None = None
    event_id: str | None = None

    def describe(self) -> str:
        where = []
        if self.event_id:
            where.append(f"event {self.event_id}")
        if self.seq is not None:
            where.append(f"sealed #{self.seq}")
        if self.checkpoint is not None:
            where.append(f"checkpoint {self.checkpoint}")
        return f"{self.kind.value}: {self.detail}" + (f" ({', '.join(where)})" if where else "")


def _leaves_of(conn: Connection, number: int) -> bytes:
    blob = conn.execute(text("SELECT leaves FROM audit_checkpoints WHERE number = :n"), {"n": number}).scalar()
    return bytes(blob) if blob is not None else b""


def _events_of(conn: Connection, first_seq: int, count: int) -> list[tuple[int, str, bytes]]:
    """(sealed number, event id, event line) of the rows stored under a checkpoint's numbers."""
    return [
        (seq, line.partition(b"\t")[0].decode(errors="replace"), line)
        for seq, line in split_batch(batch_bytes(conn, first_seq, first_seq + count))
    ]


def diagnose(conn: Connection, head: CheckpointHead) -> list[Problem]:
    """Name each event of a batch that does not match what was sealed."""
    number = head.number
    blob = _leaves_of(conn, number)
    try:
        sealed = merkle.split_hashes(blob)
    except ValueError:
        sealed = []
    if len(sealed) != head.count or merkle.root(sealed).hex() != head.batch_root:
        return [
            Problem(
                ProblemKind.LEAVES_ALTERED,
                f"the events #{head.first_seq}..#{head.first_seq + head.count - 1} do not match the signed "
                "content and the stored leaf list was altered too, so the event cannot be named",
                checkpoint=number,
            )
        ]
    position_of = {leaf: i for i, leaf in enumerate(sealed)}
    by_seq: dict[int, list[tuple[str, bytes]]] = {}
    for seq, event_id, line in _events_of(conn, head.first_seq, head.count):
        by_seq.setdefault(seq, []).append((event_id, merkle.leaf_hash(line)))

    problems: list[Problem] = []
    for i, expected in enumerate(sealed):
        seq = head.first_seq + i
        stored = by_seq.get(seq, [])
        if not stored:
            problems.append(Problem(ProblemKind.DELETED, "a sealed event is missing from the database", number, seq))
            continue
        genuine_seen = False
        for event_id, leaf in stored:
            if leaf == expected and not genuine_seen:
                genuine_seen = True
            elif leaf in position_of and leaf != expected:
                moved_from = head.first_seq + position_of[leaf]
                detail = f"this event was sealed as #{moved_from} and now sits at #{seq}"
                problems.append(Problem(ProblemKind.REORDERED, detail, number, seq, event_id))
            elif len(stored) > 1:
                detail = "an event that was never sealed sits under a sealed number"
                problems.append(Problem(ProblemKind.INSERTED, detail, number, seq, event_id))
            else:
                detail = "the event differs from what was sealed"
                problems.append(Problem(ProblemKind.EDITED, detail, number, seq, event_id))
    return problems or _unnamed(conn, head)


def _unnamed(conn: Connection, head: CheckpointHead) -> list[Problem]:
    """Every event matches its leaf, yet the batch does not match its content digest."""
    if head.content_format == SQLITE_JSON:
        # The canonical text reads a BLOB as its bytes: a value now stored as raw bytes is what
        # changed, and what the signed JSON could not hold.
        detail = "a value is stored as raw bytes (a BLOB), not as the text that was sealed"
        blobs = blob_events(conn, head.first_seq, head.first_seq + head.count)
        if blobs:
            return [Problem(ProblemKind.EDITED, detail, head.number, seq, event_id) for seq, event_id in blobs]
    return [Problem(ProblemKind.EDITED, "the batch does not match its signed content digest", checkpoint=head.number)]


def check_deep(conn: Connection, head: CheckpointHead) -> list[Problem]:
    events = _events_of(conn, head.first_seq, head.count)
    leaves = [merkle.leaf_hash(line) for _s, _e, line in events]
    if [s for s, _e, _c in events] != list(range(head.first_seq, head.first_seq + head.count)):
        return diagnose(conn, head)
    if b"".join(leaves) != _leaves_of(conn, head.number) or merkle.root(leaves).hex() != head.batch_root:
        problems = diagnose(conn, head)
        if problems and problems[0].kind is ProblemKind.EDITED and problems[0].seq is None:
            return [
                Problem(
                    ProblemKind.LEAVES_ALTERED,
                    "the stored leaf list or batch root does not match the events",
                    checkpoint=head.number,
                )
            ]
        return problems
    return []
