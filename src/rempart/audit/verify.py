"""``rempart audit verify``: recompute the sealed log and name what does not match.

What is checked, checkpoint after checkpoint from the first (or from ``since``):

* each head is in canonical form, signed by a known key, and names the previous head's hash;
* numbers and sealed sequence ranges follow on without a gap;
* the log-level tree over the batch roots gives the signed ``log_root``;
* the events stored under the checkpoint's sequence numbers, rendered by the database and hashed in
  one pass, give the signed ``content`` digest (one bulk hash per batch: this is the fast path);
* with ``deep``, each event's leaf hash and each batch's Merkle root are recomputed too, which is
  what inclusion proofs rely on.

When a batch does not match, ``diagnose`` compares each event with the stored leaf list (itself
authenticated by the signed batch root) and names the event that was edited, removed, added or
moved. Events never sealed are reported if older than a grace period, and so are events carrying a
sequence number beyond the last checkpoint. A witness file (heads exported to an insurer) catches a
log cut short at its end, which nothing inside the database can show.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from hashlib import sha256
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from rempart.audit import merkle
from rempart.audit.canonical import canonical_sql, event_id_sql, sequence_entry_sql
from rempart.audit.keys import PublicKeys
from rempart.audit.sealing import ZERO_HASH, CheckpointHead, head_hash
from rempart.db import utcnow

# Checkpoints whose contents are fetched in one query (PostgreSQL aggregates per checkpoint).
_GROUP_EVENTS = 100_000
_GROUP_CHECKPOINTS = 2_000


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


@dataclass
class VerifyReport:
    checkpoints: int = 0
    events: int = 0
    first_checkpoint: int | None = None
    last_checkpoint: int | None = None
    pending: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class _Row:
    number: int
    head: str
    head_hash: bytes
    signature: bytes
    key_id: str
    first_seq: int
    count: int
    frontier: bytes
    batch_root_column: bytes | None = None


_ROW_COLUMNS = "number, head, head_hash, signature, key_id, first_seq, count, frontier"


def _row(r: Any) -> _Row:
    return _Row(int(r[0]), r[1], bytes(r[2]), bytes(r[3]), r[4], int(r[5]), int(r[6]), bytes(r[7]))


def _checkpoint_rows(conn: Connection, start: int) -> Generator[_Row]:
    result = conn.execute(
        text(f"SELECT {_ROW_COLUMNS} FROM audit_checkpoints WHERE number >= :start ORDER BY number").execution_options(  # noqa: S608  (constant column list)
            yield_per=2_000
        ),
        {"start": start},
    )
    with result:
        for r in result:
            yield _row(r)


def _checkpoint_row(conn: Connection, number: int) -> _Row | None:
    query = f"SELECT {_ROW_COLUMNS} FROM audit_checkpoints WHERE number = :n"  # noqa: S608  (constant columns)
    r = conn.execute(text(query), {"n": number}).first()
    return _row(r) if r is not None else None


def _leaves_of(conn: Connection, number: int) -> bytes:
    blob = conn.execute(text("SELECT leaves FROM audit_checkpoints WHERE number = :n"), {"n": number}).scalar()
    return bytes(blob) if blob is not None else b""


class _Contents:
    """Fetches batches' sequence entries, many checkpoints per query."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self.entry = sequence_entry_sql(self.dialect, "e")

    def fetch(self, heads: list[CheckpointHead]) -> dict[int, bytes]:
        if self.dialect == "postgresql":
            return self._postgresql(heads)
        return self._by_rows(heads)

    def _postgresql(self, heads: list[CheckpointHead]) -> dict[int, bytes]:
        ranges = [(h.number, h.first_seq, h.first_seq + h.count) for h in heads]
        rows = self.conn.execute(
            text(
                "SELECT r.number, string_agg(" + self.entry + ", '' ORDER BY e.seal_seq, e.id) "
                "FILTER (WHERE e.id IS NOT NULL) "
                "FROM unnest(CAST(:numbers AS bigint[]), CAST(:los AS bigint[]), CAST(:his AS bigint[])) "
                "AS r(number, lo, hi) "
                "LEFT JOIN access_events AS e ON e.seal_seq >= r.lo AND e.seal_seq < r.hi "
                "GROUP BY r.number"
            ),
            {
                "numbers": [r[0] for r in ranges],
                "los": [r[1] for r in ranges],
                "his": [r[2] for r in ranges],
            },
        )
        return {int(number): (content or "").encode() for number, content in rows}

    def _by_rows(self, heads: list[CheckpointHead]) -> dict[int, bytes]:
        lo, hi = heads[0].first_seq, heads[-1].first_seq + heads[-1].count
        rows = self.conn.exec_driver_sql(
            f"SELECT e.seal_seq, {self.entry} FROM access_events AS e "  # noqa: S608
            "WHERE e.seal_seq >= ? AND e.seal_seq < ? ORDER BY e.seal_seq, e.id",
            (lo, hi),
        ).fetchall()
        seqs = [r[0] for r in rows]
        out = {}
        for h in heads:
            i = bisect.bisect_left(seqs, h.first_seq)
            j = bisect.bisect_left(seqs, h.first_seq + h.count)
            out[h.number] = "".join(r[1] for r in rows[i:j]).encode()
        return out


def _events_of(conn: Connection, first_seq: int, count: int) -> list[tuple[int, str, str]]:
    """(seal_seq, event id, canonical encoding) of the rows stored under a checkpoint's numbers."""
    dialect = conn.dialect.name
    rows = conn.execute(
        text(
            f"SELECT e.seal_seq, {event_id_sql(dialect, 'e')}, {canonical_sql(dialect, 'e')} "  # noqa: S608
            "FROM access_events AS e WHERE e.seal_seq >= :lo AND e.seal_seq < :hi ORDER BY e.seal_seq, e.id"
        ),
        {"lo": first_seq, "hi": first_seq + count},
    ).all()
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


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
    for seq, event_id, canonical in _events_of(conn, head.first_seq, head.count):
        by_seq.setdefault(seq, []).append((event_id, merkle.leaf_hash(canonical.encode())))

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
    if not problems:
        problems.append(
            Problem(ProblemKind.EDITED, "the batch does not match its signed content digest", checkpoint=number)
        )
    return problems


def _check_deep(conn: Connection, head: CheckpointHead) -> list[Problem]:
    events = _events_of(conn, head.first_seq, head.count)
    leaves = [merkle.leaf_hash(c.encode()) for _s, _e, c in events]
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


@dataclass
class _Chain:
    """What the next checkpoint must agree with."""

    number: int
    prev_hash: bytes
    next_seq: int
    frontier: merkle.Frontier


def _anchor(conn: Connection, start: int, keys: PublicKeys, report: VerifyReport) -> _Chain:
    if start <= 1:
        return _Chain(1, ZERO_HASH, 0, merkle.Frontier())
    prev = _checkpoint_row(conn, start - 1)
    if prev is None:
        report.problems.append(
            Problem(ProblemKind.CHECKPOINT_MISSING, "the checkpoint before --since is missing", start - 1)
        )
        return _Chain(start, b"", -1, merkle.Frontier())
    head = _parse(prev, keys, report)
    if head is None:
        return _Chain(start, b"", -1, merkle.Frontier())
    try:
        frontier = merkle.Frontier.from_bytes(prev.number, prev.frontier)
    except ValueError:
        frontier = merkle.Frontier()
    if frontier.size != prev.number or frontier.root().hex() != head.log_root:
        report.problems.append(
            Problem(ProblemKind.CHECKPOINT_ALTERED, "its stored frontier does not give its log root", prev.number)
        )
    return _Chain(start, prev.head_hash, head.first_seq + head.count, frontier)


def _parse(row: _Row, keys: PublicKeys, report: VerifyReport) -> CheckpointHead | None:
    try:
        head = CheckpointHead.decode(row.head)
    except (ValueError, TypeError):
        report.problems.append(Problem(ProblemKind.CHECKPOINT_ALTERED, "its head is not readable", row.number))
        return None
    if not keys.verify(head.key_id, row.signature, row.head.encode()):
        report.problems.append(Problem(ProblemKind.BAD_SIGNATURE, "its signature does not verify", row.number))
        return None
    if head_hash(row.head) != row.head_hash or (head.number, head.first_seq, head.count, head.key_id) != (
        row.number,
        row.first_seq,
        row.count,
        row.key_id,
    ):
        report.problems.append(
            Problem(ProblemKind.CHECKPOINT_ALTERED, "its columns disagree with its signed head", row.number)
        )
    return head


def resolve_since(conn: Connection, since: int | datetime | None) -> int:
    """The first checkpoint to verify: a number, or the first sealed at or after a time."""
    if since is None:
        return 1
    if isinstance(since, int):
        return max(1, since)
    number = conn.execute(
        text("SELECT min(number) FROM audit_checkpoints WHERE sealed_at >= :t"), {"t": since}
    ).scalar()
    if number is None:  # nothing sealed since then: start after the last checkpoint
        number = (conn.execute(text("SELECT max(number) FROM audit_checkpoints")).scalar() or 0) + 1
    return int(number)


def verify_log(
    engine: Engine,
    *,
    keys: PublicKeys,
    since: int | datetime | None = None,
    deep: bool = False,
    witness: Iterable[str] = (),
    now: datetime | None = None,
    pending_grace: timedelta = timedelta(minutes=5),
    late_after: timedelta = timedelta(minutes=10),
    max_problems: int = 1_000,
) -> VerifyReport:
    report = VerifyReport()
    started = time.perf_counter()
    now = now or utcnow()
    with engine.connect() as conn:
        start = resolve_since(conn, since)
        chain = _anchor(conn, start, keys, report)
        contents = _Contents(conn)
        group: list[CheckpointHead] = []
        group_events = 0
        rows = _checkpoint_rows(conn, start)
        for row in rows:
            if len(report.problems) >= max_problems:
                rows.close()
                break
            head = _check_link(row, chain, keys, report, late_after)
            if head is None:
                continue
            report.checkpoints += 1
            report.events += head.count
            report.first_checkpoint = report.first_checkpoint or head.number
            report.last_checkpoint = head.number
            group.append(head)
            group_events += head.count
            if group_events >= _GROUP_EVENTS or len(group) >= _GROUP_CHECKPOINTS:
                _check_contents(conn, contents, group, deep, report)
                group, group_events = [], 0
        if group:
            _check_contents(conn, contents, group, deep, report)
        _check_outside(conn, chain.next_seq, now - pending_grace, report)
        _check_witness(conn, witness, report)
    report.seconds = time.perf_counter() - started
    return report


def _check_link(
    row: _Row, chain: _Chain, keys: PublicKeys, report: VerifyReport, late_after: timedelta
) -> CheckpointHead | None:
    if row.number != chain.number:
        for missing in range(chain.number, row.number):
            report.problems.append(Problem(ProblemKind.CHECKPOINT_MISSING, "a checkpoint was removed", missing))
        chain.prev_hash, chain.next_seq = b"", -1
    head = _parse(row, keys, report)
    chain.number = row.number + 1
    if head is None:
        chain.prev_hash, chain.next_seq = b"", -1
        return None
    if chain.prev_hash and bytes.fromhex(head.prev) != chain.prev_hash:
        report.problems.append(Problem(ProblemKind.BROKEN_CHAIN, "it does not name the previous head", row.number))
    if chain.next_seq >= 0 and head.first_seq != chain.next_seq:
        report.problems.append(
            Problem(
                ProblemKind.BROKEN_CHAIN,
                f"its events start at #{head.first_seq}, not #{chain.next_seq}",
                row.number,
            )
        )
    if chain.frontier.size == row.number - 1:
        chain.frontier.append(merkle.leaf_hash(bytes.fromhex(head.batch_root)))
        if chain.frontier.root().hex() != head.log_root:
            report.problems.append(
                Problem(ProblemKind.BROKEN_CHAIN, "its log root does not extend the previous ones", row.number)
            )
    else:
        # After a gap the log tree cannot be recomputed; carry on from this head's own frontier.
        try:
            chain.frontier = merkle.Frontier.from_bytes(row.number, row.frontier)
        except ValueError:
            chain.frontier = merkle.Frontier()
    chain.prev_hash = row.head_hash
    chain.next_seq = head.first_seq + head.count
    sealed_at = datetime.strptime(head.sealed_at, "%Y-%m-%dT%H:%M:%S.%f%z")
    first_at = datetime.strptime(head.first_occurred_at, "%Y-%m-%dT%H:%M:%S.%f%z")
    if sealed_at - first_at > late_after:
        report.warnings.append(
            f"checkpoint {head.number} sealed an event {sealed_at - first_at} after it occurred: the sealer "
            "was stopped, or the event was written into the database from outside the application"
        )
    return head


def _check_contents(
    conn: Connection, contents: _Contents, group: list[CheckpointHead], deep: bool, report: VerifyReport
) -> None:
    fetched = contents.fetch(group)
    for head in group:
        if sha256(fetched.get(head.number, b"")).hexdigest() != head.content:
            report.problems.extend(diagnose(conn, head))
        elif deep:
            report.problems.extend(_check_deep(conn, head))


def _check_outside(conn: Connection, next_seq: int, stale_before: datetime, report: VerifyReport) -> None:
    """Events outside every checkpoint: beyond the last sealed number, or never sealed."""
    dialect = conn.dialect.name
    if next_seq >= 0:
        beyond = conn.execute(
            text(
                f"SELECT e.seal_seq, {event_id_sql(dialect, 'e')} FROM access_events AS e "  # noqa: S608
                "WHERE e.seal_seq >= :n ORDER BY e.seal_seq LIMIT 100"
            ),
            {"n": next_seq},
        ).all()
        for seq, event_id in beyond:
            report.problems.append(
                Problem(
                    ProblemKind.INSERTED,
                    "an event carries a sequence number that no checkpoint sealed",
                    seq=int(seq),
                    event_id=str(event_id),
                )
            )
    pending = conn.execute(text("SELECT count(*) FROM access_events WHERE seal_seq IS NULL")).scalar()
    report.pending = int(pending or 0)
    if report.pending:
        stale = conn.execute(
            text(
                f"SELECT {event_id_sql(dialect, 'e')} FROM access_events AS e "  # noqa: S608
                "WHERE e.seal_seq IS NULL AND e.occurred_at < :t ORDER BY e.occurred_at LIMIT 100"
            ),
            {"t": stale_before},
        ).all()
        for (event_id,) in stale:
            report.problems.append(
                Problem(
                    ProblemKind.UNSEALED,
                    "the event was never sealed although it is older than the sealing interval: the sealer "
                    "is stopped, or the row was written into the database from outside the application",
                    event_id=str(event_id),
                )
            )


def _check_witness(conn: Connection, witness: Iterable[str], report: VerifyReport) -> None:
    """Heads a witness kept must still be in the log, unchanged."""
    for head in witness:
        try:
            number = CheckpointHead.decode(head).number
        except (ValueError, TypeError):
            report.warnings.append("the witness file holds a line that is not a checkpoint head")
            continue
        stored = conn.execute(text("SELECT head FROM audit_checkpoints WHERE number = :n"), {"n": number}).scalar()
        if stored is None:
            report.problems.append(
                Problem(ProblemKind.TRUNCATED, "a checkpoint the witness holds is no longer in the log", number)
            )
        elif stored != head:
            report.problems.append(
                Problem(ProblemKind.CHECKPOINT_ALTERED, "it differs from the head the witness holds", number)
            )


def report_dict(report: VerifyReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "checkpoints": report.checkpoints,
        "events": report.events,
        "first_checkpoint": report.first_checkpoint,
        "last_checkpoint": report.last_checkpoint,
        "pending": report.pending,
        "seconds": round(report.seconds, 3),
        "events_per_second": round(report.events_per_second),
        "problems": [p.describe() for p in report.problems],
        "warnings": report.warnings,
    }
