"""``rempart audit verify``: recompute the sealed log and name what does not match.

What is checked, checkpoint after checkpoint from the first (or from ``since``):

* each head is in canonical form, signed by a known key, and names the previous head's hash;
* numbers and sealed sequence ranges follow on without a gap;
* the log-level tree over the batch roots gives the signed ``log_root``;
* the events stored under the checkpoint's sequence numbers, streamed by the database in the
  compact format the head names (``rempart.audit.content``: binary COPY on PostgreSQL) and hashed
  in one pass, give the signed ``content`` digest (one bulk hash per batch: this is the fast path);
* with ``deep``, each event's leaf hash and each batch's Merkle root are recomputed too, which is
  what inclusion proofs rely on.

When a batch does not match, ``diagnose`` compares each event with the stored leaf list (itself
authenticated by the signed batch root) and names the event that was edited, removed, added or
moved. Events never sealed are reported if older than a grace period, and so are events carrying a
sequence number beyond the last checkpoint. A witness file (heads exported to an insurer) catches a
log cut short at its end, which nothing inside the database can show.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Generator, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from hashlib import sha256
from itertools import groupby
from multiprocessing.pool import AsyncResult, Pool
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine

from rempart.audit import merkle
from rempart.audit.content import Unrenderable, batch_digests, can_render, content_bytes
from rempart.audit.diagnosis import Problem, ProblemKind, check_deep, diagnose
from rempart.audit.keys import PublicKeys
from rempart.audit.models import AccessEvent
from rempart.audit.sealing import ZERO_HASH, CheckpointHead, head_hash
from rempart.db import make_engine, utcnow

# Checkpoints whose batches are read in one pass (one COPY on PostgreSQL, cut by counting tuples):
# the unit of work handed to a worker process. Streamed, not held, so its size only sets how evenly
# the work spreads over the workers and how soon the first one starts.
_GROUP_EVENTS = 100_000
_GROUP_CHECKPOINTS = 2_000


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
    processes: int = 1  # this one and the workers that streamed batches

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
    pending_grace: timedelta = timedelta(seconds=60),
    late_after: timedelta = timedelta(minutes=10),
    max_problems: int = 1_000,
    jobs: int = 1,
) -> VerifyReport:
    """Check the log. Heads are checked in order, here; batches' contents, the costly part, are
    streamed and hashed by ``jobs`` worker processes at once, each on its own connection, a run of
    checkpoints at a time (each batch stands alone). Processes, not threads: on PostgreSQL reading a
    tuple is Python work, and on SQLite rendering the stream is the database's own work, in-process;
    either way one interpreter would be the limit. A log smaller than one run is checked here, since
    starting the workers would cost more than it saves."""
    report = VerifyReport()
    started = time.perf_counter()
    now = now or utcnow()
    results: list[list[Problem] | AsyncResult[list[Problem]]] = []
    with engine.connect() as conn, ExitStack() as stack:
        start = resolve_since(conn, since)
        pool = _workers(engine, conn, start, jobs, stack)
        report.processes = jobs if pool is not None else 1
        chain = _anchor(conn, start, keys, report)
        group: list[CheckpointHead] = []
        group_events = 0
        in_flight: list[AsyncResult[list[Problem]]] = []

        def flush(heads: list[CheckpointHead]) -> None:
            # A run goes to a worker while one is free; otherwise this process checks it itself
            # (its own share of the work, and all of it while the workers are still starting).
            in_flight[:] = [result for result in in_flight if not result.ready()]
            if pool is not None and len(in_flight) < jobs - 1:
                in_flight.append(pool.apply_async(_check_contents_in_worker, (heads, deep)))
                results.append(in_flight[-1])
            else:
                results.append(_check_contents(conn, heads, deep))

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
                flush(group)
                group, group_events = [], 0
        if group:
            flush(group)
        for result in results:
            report.problems.extend(result if isinstance(result, list) else result.get())
        _check_outside(conn, chain.next_seq, now - pending_grace, pending_grace, report)
        _check_witness(conn, witness, report)
    report.seconds = time.perf_counter() - started
    return report


def _workers(engine: Engine, conn: Connection, start: int, jobs: int, stack: ExitStack) -> Pool | None:
    """``jobs - 1`` worker processes (this one is the other), started now so that they are ready
    once the first heads are checked; none for a log of less than two runs of batches."""
    if jobs < 2 or not _shareable(engine):
        return None
    span = conn.execute(
        text(
            "SELECT (SELECT first_seq + count FROM audit_checkpoints ORDER BY number DESC LIMIT 1)"
            " - (SELECT first_seq FROM audit_checkpoints WHERE number >= :start ORDER BY number LIMIT 1)"
        ),
        {"start": start},
    ).scalar()
    if span is None or span < 2 * _GROUP_EVENTS:
        return None
    pool = multiprocessing.get_context("spawn").Pool(
        jobs - 1, initializer=_start_worker, initargs=(engine.url.render_as_string(hide_password=False),)
    )
    # Every result has been collected (or verify failed) when the stack closes: the workers are
    # idle, and stopping them outright spares waiting for each to wind down.
    stack.callback(pool.join)
    stack.callback(pool.terminate)
    return pool


def _shareable(engine: Engine) -> bool:
    """Whether other processes can open the same database (not an in-memory SQLite one)."""
    return engine.dialect.name != "sqlite" or engine.url.database not in {None, "", ":memory:"}


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


def _check_contents(conn: Connection, group: list[CheckpointHead], deep: bool) -> list[Problem]:
    problems = []
    # Runs of checkpoints sharing a content format this database renders are read in one pass; a
    # format it cannot render (a log moved between databases) is checked through the leaves.
    for (fmt, renderable), run in groupby(group, key=lambda h: (h.content_format, can_render(conn, h.content_format))):
        heads = list(run)
        if not renderable:
            for head in heads:
                problems.extend(check_deep(conn, head))
            continue
        digests = batch_digests(conn, fmt, [(head.first_seq, head.count) for head in heads])
        for head, digest in zip(heads, digests, strict=True):
            expected = bytes.fromhex(head.content)
            # A batch cut out of the run is read again alone before anything is reported about it.
            if digest != expected and _digest_alone(conn, fmt, head) != expected:
                problems.extend(diagnose(conn, head))
            elif deep:
                problems.extend(check_deep(conn, head))
    return problems


def _digest_alone(conn: Connection, fmt: str, head: CheckpointHead) -> bytes | None:
    try:
        return sha256(content_bytes(conn, fmt, head.first_seq, head.first_seq + head.count)).digest()
    except Unrenderable:  # a value the format cannot hold: not what was sealed, the leaves will say
        return None


# Each process of a parallel verify holds its own engine and connection (SQLite: its own reader).
_worker_engine: Engine | None = None


def _start_worker(url: str) -> None:
    global _worker_engine  # noqa: PLW0603  (one engine per worker process, made by its initializer)
    _worker_engine = make_engine(url, pool_size=1)
    with _worker_engine.connect() as conn:  # connect now, while the main process reads heads
        conn.execute(text("SELECT 1"))


def _check_contents_in_worker(group: list[CheckpointHead], deep: bool) -> list[Problem]:
    if _worker_engine is None:
        raise RuntimeError("a verify worker was started without its engine")
    with _worker_engine.connect() as conn:
        return _check_contents(conn, group, deep)


# How far ahead of verify's clock an event may be dated (clock skew between app machines).
_FUTURE_SKEW = timedelta(minutes=2)


def _check_outside(
    conn: Connection, next_seq: int, stale_before: datetime, grace: timedelta, report: VerifyReport
) -> None:
    """Events outside every checkpoint: beyond the last sealed number, or never sealed.

    What can be proven about the unsealed tail: nothing cryptographic. Until the sealer numbers and
    signs an event, whoever can write to the database can add, edit or delete it without a trace
    (the sealer runs every <= 2 s, so that window is short unless the sealer is stopped; a witness
    sees a stopped sealer as heads that stop coming). What can be checked, and is:

    * no event may carry a sealed number beyond the last checkpoint (only the sealer numbers, in
      the same transaction as the checkpoint): such an event was forged with its sealed fields;
    * no unsealed event may be older than ``pending_grace`` (the sealing interval plus the longest
      transaction that writes events): an older one was written from outside the application or
      backdated, or the sealer is stopped; either way it is reported;
    * no unsealed event may be dated in the future: its time was forged, and it would otherwise
      wait in the tail looking fresh.
    Once sealed, a late event's checkpoint also carries a warning (sealed long after it occurred).
    """
    events = AccessEvent.__table__
    if next_seq >= 0:
        beyond = conn.execute(
            select(events.c.seal_seq, events.c.event_id)
            .where(events.c.seal_seq >= next_seq)
            .order_by(events.c.seal_seq)
            .limit(100)
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
    report.pending = int(
        conn.execute(select(func.count()).select_from(events).where(events.c.seal_seq.is_(None))).scalar() or 0
    )
    if report.pending:
        stale = conn.execute(
            select(events.c.event_id)
            .where(events.c.seal_seq.is_(None), events.c.occurred_at < stale_before)
            .order_by(events.c.occurred_at)
            .limit(100)
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
        future = conn.execute(
            select(events.c.event_id)
            .where(events.c.seal_seq.is_(None), events.c.occurred_at > stale_before + _FUTURE_SKEW + grace)
            .order_by(events.c.occurred_at)
            .limit(100)
        ).all()
        for (event_id,) in future:
            report.problems.append(
                Problem(
                    ProblemKind.INSERTED,
                    "an event waiting to be sealed is dated in the future: its time was forged",
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
        "processes": report.processes,
        "events_per_second": round(report.events_per_second),
        "problems": [p.describe() for p in report.problems],
        "warnings": report.warnings,
    }
