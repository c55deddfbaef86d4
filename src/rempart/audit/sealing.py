"""The sealer: places recorded events in a contiguous sequence and signs checkpoints over them.

Design (why not a hash chain per event): the hot path must stay one insert, so no request may read
the previous event or take a global lock. Events are therefore written unordered and a single sealer
at a time (several app processes take turns through a row lock) picks up what has been committed,
every second or so, and gives those events consecutive ``seal_seq`` numbers. Sequence numbers,
unlike auto-increment ids, have no gaps: a missing number is a deleted event.

Each checkpoint commits to its batch three ways, in a head signed with Ed25519:

* ``content``: SHA-256 over the batch's events in sequence order, in the compact encoding named by
  ``content_format`` (``rempart.audit.content``: on PostgreSQL the binary ``COPY`` stream, on SQLite
  each event as SQLite's ``json_array``). ``verify`` hashes that stream as it arrives, one digest per batch
  (a new hash per event, as the leaves cost, would cap ``verify`` far below its goal), in several
  processes at once. Heads of version 1 have no ``content_format``: their content is the canonical
  text.
* ``batch_root``: the RFC 9162 Merkle tree head over the batch's leaf hashes, whose list is stored
  with the checkpoint. It gives logarithmic inclusion proofs and lets ``verify`` name the one event
  that was edited, dropped or moved.
* ``log_root``: the RFC 9162 tree over every batch root so far (kept as a compact frontier), so a
  proof links an event to any later checkpoint in O(log n) hashes; and ``prev``, the hash of the
  previous head, so that the heads form a chain a witness checks with the public key alone
  (removing, reordering or rewriting a checkpoint breaks it). Consistency proofs between two log
  roots (RFC 9162 section 2.1.4) would spare a witness the heads in between; they are not built.

Known limit: an event inserted straight into the database (outside the app) before the sealer runs
gets sealed like any other. ``verify`` flags events that were sealed long after they occurred.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Literal

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from rempart.audit import merkle
from rempart.audit.canonical import batch_bytes, pending_batch_bytes, split_batch
from rempart.audit.content import COPY_TEXT, content_to_sign, pending_content_to_sign
from rempart.audit.keys import CheckpointSigner
from rempart.audit.models import AccessEvent, Checkpoint, SealerLock
from rempart.audit.partitions import ensure_partitions
from rempart.db import is_postgresql, utcnow
from rempart.logs import get_logger

log = get_logger("rempart.audit.sealer")

LOG_NAME = "rempart-access-log"
HEAD_VERSION = 2
HEAD_VERSIONS = frozenset({1, 2})
ZERO_HASH = bytes(32)
DEFAULT_MAX_BATCH = 50_000
PARTITION_CHECK_EVERY = timedelta(hours=6)
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class CheckpointHead:
    """The signed statement about one batch."""

    number: int
    first_seq: int
    count: int
    sealed_at: str
    first_occurred_at: str
    last_occurred_at: str
    content: str
    batch_root: str
    log_root: str
    prev: str
    key_id: str
    log: str = LOG_NAME
    v: int = HEAD_VERSION
    content_format: str = COPY_TEXT

    def encode(self) -> str:
        """Stable JSON: sorted keys, no spaces, ASCII. These exact bytes are signed."""
        fields = dict(self.__dict__)
        if self.v == 1:  # version 1 heads predate the field: their content is always the text
            fields.pop("content_format")
        return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def decode(cls, head: str) -> CheckpointHead:
        data = json.loads(head)
        if not isinstance(data, dict) or data.get("log") != LOG_NAME or data.get("v") not in HEAD_VERSIONS:
            raise ValueError("not a checkpoint head of this log")
        if data["v"] == 1 and "content_format" in data:
            raise ValueError("a version 1 head names no content format")
        parsed = cls(**data)
        if parsed.encode() != head:
            raise ValueError("a checkpoint head is not in canonical form")
        return parsed


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def head_hash(head: str) -> bytes:
    return sha256(head.encode()).digest()


def _take_turn(session: Session, now: datetime) -> bool:
    """Become the only sealer for this transaction, or return False if another one is at work."""
    lock = select(SealerLock.id).where(SealerLock.id == 1)
    if is_postgresql(session):
        if session.execute(lock.with_for_update(skip_locked=True)).scalar() is not None:
            return True
        if session.execute(lock).scalar() is not None:
            return False  # the row exists: another sealer holds it
        # The row was removed (the migration creates it): put it back, waiting a little at most.
        session.execute(text("SET LOCAL lock_timeout = '5s'"))
        session.execute(pg_insert(SealerLock).values(id=1, locked_at=now).on_conflict_do_nothing())
        return session.execute(lock.with_for_update(skip_locked=True)).scalar() is not None
    # SQLite: the first write takes the database's single write lock until commit.
    session.execute(sqlite_insert(SealerLock).values(id=1, locked_at=now).on_conflict_do_nothing())
    session.execute(update(SealerLock).where(SealerLock.id == 1).values(locked_at=now))
    return True


def seal_pending(
    session: Session,
    *,
    signer: CheckpointSigner,
    now: datetime | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> Checkpoint | None:
    """Seal up to ``max_batch`` unsealed events into one signed checkpoint, in the session's
    transaction. Returns None when there was nothing to seal or another sealer holds the turn."""
    now = now or utcnow()
    if not is_postgresql(session):
        prepared = _prepare_sqlite(session, signer=signer, now=now, max_batch=max_batch)
        if prepared is None:
            return None
        if prepared is not False:
            return _seal_prepared(session, prepared, now)
    if not _take_turn(session, now):
        return None
    _maintain_partitions(session, now)

    last = session.scalars(select(Checkpoint).order_by(Checkpoint.number.desc()).limit(1)).first()
    events = AccessEvent.__table__
    pending = session.execute(
        select(events.c.id, events.c.occurred_at)
        .where(events.c.seal_seq.is_(None))
        .order_by(events.c.id)
        .limit(max_batch)
    ).all()
    if not pending:
        return None

    first_seq = last.first_seq + last.count if last else 0
    occurred = [row[1] for row in pending]
    earliest, latest = min(occurred), max(occurred)
    _assign_sequence(session, [row[0] for row in pending], first_seq, earliest, latest)
    # The batch as the database now renders it: exactly what ``verify`` will hash.
    conn = session.connection()
    data = batch_bytes(conn, first_seq, first_seq + len(pending))
    checkpoint = build_checkpoint(
        last=last,
        data=data,
        content=content_to_sign(conn, first_seq, first_seq + len(pending)),
        earliest=earliest,
        latest=latest,
        signer=signer,
        now=now,
    )
    session.add(checkpoint)
    session.flush()
    return checkpoint


@dataclass(frozen=True)
class _Prepared:
    """A checkpoint built ahead of the write lock over a run of consecutive unsealed ids."""

    checkpoint: Checkpoint
    last_number: int
    first_id: int
    last_id: int


def _prepare_sqlite(
    session: Session, *, signer: CheckpointSigner, now: datetime, max_batch: int
) -> _Prepared | Literal[False] | None:
    """SQLite has one writer at a time, and every request that records an access waits for it; so
    the sealer reads, renders, hashes and signs the next batch first, on a connection of its own
    (a read, which waits for nobody), and takes the write lock only to number the events and store
    the checkpoint. It can do so because SQLite hands out rowids in commit order: unsealed events
    form a run of consecutive ids, numbered in id order, so the lines they will have once numbered
    are known beforehand. Returns None when nothing waits, False when the batch is not such a run
    (the sealer then works as on PostgreSQL, under the lock)."""
    events = AccessEvent.__table__
    engine = session.get_bind()
    if not isinstance(engine, Engine):
        return False  # a session bound to one connection has no other to read on
    with engine.connect() as reader:
        last = reader.execute(
            select(Checkpoint.number, Checkpoint.first_seq, Checkpoint.count, Checkpoint.head_hash, Checkpoint.frontier)
            .order_by(Checkpoint.number.desc())
            .limit(1)
        ).first()
        ids = (
            reader.execute(
                select(events.c.id).where(events.c.seal_seq.is_(None)).order_by(events.c.id).limit(max_batch)
            )
            .scalars()
            .all()
        )
        if not ids:
            return None
        first_id, last_id = ids[0], ids[-1]
        if last_id - first_id != len(ids) - 1:
            return False
        earliest, latest = reader.execute(
            select(func.min(events.c.occurred_at), func.max(events.c.occurred_at)).where(
                events.c.id.between(first_id, last_id), events.c.seal_seq.is_(None)
            )
        ).one()
        previous = (
            Checkpoint(number=last[0], first_seq=last[1], count=last[2], head_hash=last[3], frontier=last[4])
            if last is not None
            else None
        )
        first_seq = last[1] + last[2] if last is not None else 0
        data = pending_batch_bytes(reader, first_id, last_id, first_seq)
        content = pending_content_to_sign(reader, first_id, last_id, first_seq)
    try:
        checkpoint = build_checkpoint(
            last=previous,
            data=data,
            content=content,
            earliest=earliest,
            latest=latest,
            signer=signer,
            now=now,
        )
    except RuntimeError:
        return False  # another sealer numbered some of them between the reads: work under the lock
    if checkpoint.count != len(ids):
        return False  # rows came or went between the reads: work under the lock this time
    return _Prepared(checkpoint, last[0] if last is not None else 0, first_id, last_id)


def _seal_prepared(session: Session, prepared: _Prepared, now: datetime) -> Checkpoint | None:
    """Under the write lock: the log must still end where the prepared checkpoint follows on, and
    every event of the run must still wait; then they are numbered and the checkpoint stored."""
    _take_turn(session, now)
    latest = session.scalar(select(func.max(Checkpoint.number))) or 0
    if latest != prepared.last_number:
        return None  # another sealer went first: this batch is theirs, or the next round's
    checkpoint = prepared.checkpoint
    result = session.connection().exec_driver_sql(
        "UPDATE access_events SET seal_seq = id + ? WHERE id BETWEEN ? AND ? AND seal_seq IS NULL",
        (checkpoint.first_seq - prepared.first_id, prepared.first_id, prepared.last_id),
    )
    if int(getattr(result, "rowcount", -1)) != checkpoint.count:
        raise RuntimeError("the events to seal changed while sealing")
    session.add(checkpoint)
    session.flush()
    return checkpoint


def build_checkpoint(
    *,
    last: Checkpoint | None,
    data: bytes,
    content: tuple[str, bytes] | None = None,
    earliest: datetime,
    latest: datetime,
    signer: CheckpointSigner,
    now: datetime,
) -> Checkpoint:
    """The signed checkpoint that follows ``last`` over a batch (``canonical.batch_bytes``) holding
    the events numbered from the one after ``last``'s, which occurred between the two times.
    ``content`` is the same batch in a compact format (``rempart.audit.content``); by default the
    text itself."""
    content_format, content_data = content or (COPY_TEXT, data)
    first_seq = last.first_seq + last.count if last else 0
    number = last.number + 1 if last else 1
    lines = split_batch(data)
    if [seq for seq, _line in lines] != list(range(first_seq, first_seq + len(lines))) or not lines:
        raise RuntimeError("the batch to seal is not numbered from the next sequence number without a gap")
    leaves = [merkle.leaf_hash(line) for _seq, line in lines]
    digest = sha256(content_data).digest()
    batch_root = merkle.root(leaves)
    frontier = merkle.Frontier.from_bytes(last.number, last.frontier) if last else merkle.Frontier()
    frontier.append(merkle.leaf_hash(batch_root))
    head = CheckpointHead(
        number=number,
        first_seq=first_seq,
        count=len(lines),
        sealed_at=format_time(now),
        first_occurred_at=format_time(earliest),
        last_occurred_at=format_time(latest),
        content=digest.hex(),
        batch_root=batch_root.hex(),
        log_root=frontier.root().hex(),
        prev=(last.head_hash if last else ZERO_HASH).hex(),
        key_id=signer.key_id,
        content_format=content_format,
    ).encode()
    return Checkpoint(
        number=number,
        first_seq=first_seq,
        count=len(lines),
        sealed_at=now,
        first_occurred_at=earliest,
        last_occurred_at=latest,
        key_id=signer.key_id,
        head=head,
        head_hash=head_hash(head),
        signature=signer.sign(head.encode()),
        leaves=b"".join(leaves),
        frontier=frontier.to_bytes(),
    )


def _assign_sequence(session: Session, ids: list[int], first_seq: int, earliest: datetime, latest: datetime) -> None:
    if is_postgresql(session):
        # The time bounds let PostgreSQL touch only the partitions that hold the batch.
        result = session.execute(
            text(
                "UPDATE access_events AS e SET seal_seq = v.seq "
                "FROM unnest(CAST(:ids AS bigint[]), CAST(:seqs AS bigint[])) AS v(id, seq) "
                "WHERE e.id = v.id AND e.seal_seq IS NULL "
                "AND e.occurred_at >= :earliest AND e.occurred_at <= :latest"
            ),
            {
                "ids": ids,
                "seqs": list(range(first_seq, first_seq + len(ids))),
                "earliest": earliest,
                "latest": latest,
            },
        )
        updated = int(getattr(result, "rowcount", -1))
    elif ids[-1] - ids[0] == len(ids) - 1:
        # SQLite's single writer hands out consecutive rowids, so a batch is nearly always one run of
        # ids: one set-based UPDATE in C, instead of a statement per event from Python, shortens the
        # time the sealer holds the database's only write lock, which every request waits on.
        result = session.connection().exec_driver_sql(
            "UPDATE access_events SET seal_seq = id + ? WHERE id BETWEEN ? AND ? AND seal_seq IS NULL",
            (first_seq - ids[0], ids[0], ids[-1]),
        )
        updated = int(getattr(result, "rowcount", -1))
    else:
        result = session.connection().exec_driver_sql(
            "UPDATE access_events SET seal_seq = ? WHERE id = ? AND seal_seq IS NULL",
            [(first_seq + i, event_id) for i, event_id in enumerate(ids)],
        )
        updated = int(getattr(result, "rowcount", -1))
    if updated != len(ids):
        # Someone else sealed or removed some of these rows meanwhile: give up this turn whole.
        raise RuntimeError("the events to seal changed while sealing")


def _maintain_partitions(session: Session, now: datetime) -> None:
    if not is_postgresql(session):
        return
    checked = session.scalar(select(SealerLock.partitions_checked_at).where(SealerLock.id == 1))
    if checked is not None and now - checked < PARTITION_CHECK_EVERY:
        return
    ensure_partitions(session, start=now, months=3)
    session.execute(update(SealerLock).where(SealerLock.id == 1).values(partitions_checked_at=now))


def seal_all(
    sessions: sessionmaker[Session],
    *,
    signer: CheckpointSigner,
    now: datetime | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> list[int]:
    """Seal until nothing is pending; one transaction per checkpoint. Returns checkpoint numbers."""
    numbers: list[int] = []
    while True:
        with sessions.begin() as session:
            checkpoint = seal_pending(session, signer=signer, now=now, max_batch=max_batch)
            if checkpoint is None:
                return numbers
            numbers.append(checkpoint.number)
            if checkpoint.count < max_batch:
                return numbers


class SealerThread:
    """Seals every ``interval`` seconds in a daemon thread of an app or worker process."""

    def __init__(
        self,
        engine: Engine,
        *,
        signer: CheckpointSigner,
        interval: float = 1.0,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        self.sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self.signer = signer
        self.interval = interval
        self.max_batch = max_batch
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"audit-sealer-{uuid.uuid4().hex[:6]}", daemon=True)
        self._rounds = 0
        self._round_done = threading.Condition()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait_rounds(self, count: int, timeout: float) -> bool:
        """Block until ``count`` more sealing rounds have run (for tests and health checks)."""
        with self._round_done:
            target = self._rounds + count
            return self._round_done.wait_for(lambda: self._rounds >= target, timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                seal_all(self.sessions, signer=self.signer, max_batch=self.max_batch)
            except Exception as exc:  # noqa: BLE001  (a sealer must outlive a failed turn; it retries)
                log.error("audit_seal_failed", error_type=type(exc).__name__)
            with self._round_done:
                self._rounds += 1
                self._round_done.notify_all()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
