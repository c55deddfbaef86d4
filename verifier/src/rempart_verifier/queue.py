"""Store and forward: claims made while the platform cannot take them wait in a local SQLite file.

A pharmacist must be able to dispense while the insurer's channel is off or the network is down;
the claim is sent later with the same Idempotency-Key, which the server deduplicates, so a claim
resent after a crash is never paid twice. No HTTP client lives here: practice software passes its
own authenticated ``send``.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

CHANNEL_DISCONNECTED = "/channel-disconnected"
# Long enough for one slow POST; a forwarder killed mid-send gives its claim back after this.
DEFAULT_LEASE_SECONDS = 120.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queued_claim (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE CHECK (length(idempotency_key) > 0),
    claim TEXT NOT NULL,
    attestation TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'delivered', 'refused')),
    queued_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_token TEXT,
    lease_until REAL,
    status INTEGER,
    answer TEXT,
    settled_at REAL,
    CHECK ((state = 'sending') = (lease_token IS NOT NULL))
)
"""


class Outcome(StrEnum):
    """What became of one send, as far as the queue is concerned."""

    DELIVERED = "delivered"
    REFUSED = "refused"
    # The API said so (503 channel-disconnected): the insurer's channel is off for now.
    CHANNEL_OFF = "channel-off"
    # Any other temporary failure (5xx, 429, 408...): the claim stays queued.
    RETRY_LATER = "retry-later"
    # No answer at all: network down, timeout.
    UNREACHABLE = "unreachable"

    @property
    def final(self) -> bool:
        return self in {Outcome.DELIVERED, Outcome.REFUSED}


def classify(status: int | None, body: Mapping[str, Any] | None) -> Outcome:
    """Only a 2xx or a 4xx that will not change on retry settles a claim; everything else keeps
    it queued, because dropping a claim loses the pharmacist's money."""
    if status is None:
        return Outcome.UNREACHABLE
    if 200 <= status < 300:
        return Outcome.DELIVERED
    problem_type = body.get("type") if body is not None else None
    if status == 503 and isinstance(problem_type, str) and problem_type.endswith(CHANNEL_DISCONNECTED):
        return Outcome.CHANNEL_OFF
    # 408 and 429 are the client's errors only in name: the same request will pass later.
    if 400 <= status < 500 and status not in {408, 429}:
        return Outcome.REFUSED
    return Outcome.RETRY_LATER


@dataclass(frozen=True)
class Delivery:
    """What ``send`` reports. ``body`` is the answer's JSON (or problem+json) when there was one."""

    outcome: Outcome
    status: int | None = None
    body: Mapping[str, Any] | None = None

    @classmethod
    def from_response(cls, status: int | None, body: Mapping[str, Any] | None) -> Delivery:
        return cls(outcome=classify(status, body), status=status, body=body)


@dataclass(frozen=True)
class QueuedClaim:
    seq: int
    idempotency_key: str
    claim: Mapping[str, Any]
    attestation: str
    state: str
    queued_at: datetime
    attempts: int
    status: int | None
    answer: Mapping[str, Any] | None


@dataclass(frozen=True)
class ForwardReport:
    delivered: int
    refused: int
    pending: int
    # Why forwarding stopped before the queue was empty (channel off, unreachable...), if it did.
    stopped_by: Outcome | None = None
    sent: tuple[str, ...] = field(default=())


def _canonical(claim: Mapping[str, Any]) -> str:
    """Sorted keys: the same body put twice compares equal whatever the dict order."""
    return json.dumps(claim, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _row(row: sqlite3.Row) -> QueuedClaim:
    return QueuedClaim(
        seq=row["seq"],
        idempotency_key=row["idempotency_key"],
        claim=json.loads(row["claim"]),
        attestation=row["attestation"],
        state=row["state"],
        queued_at=datetime.fromtimestamp(row["queued_at"], UTC),
        attempts=row["attempts"],
        status=row["status"],
        answer=None if row["answer"] is None else json.loads(row["answer"]),
    )


class ClaimQueue:
    """One SQLite file per practice workstation (or shared by several processes on it)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lease_seconds = lease_seconds
        self._clock = clock
        # Autocommit mode: every transaction below is an explicit BEGIN IMMEDIATE ... COMMIT.
        self._db = sqlite3.connect(os.fspath(path), timeout=30.0, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a put that returned survives a power cut, not only a process kill.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        with self._transaction():
            self._db.execute(_SCHEMA)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so two processes cannot both read a row as
        # free and both claim it.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def put(self, *, idempotency_key: str, claim: Mapping[str, Any], attestation: str) -> QueuedClaim:
        """Durable when it returns. Putting the same claim twice (a double click, a retry after a
        crash) keeps one row; reusing a key for another claim is a bug and raises ValueError."""
        body = _canonical(claim)
        with self._transaction() as db:
            existing = db.execute("SELECT * FROM queued_claim WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
            if existing is not None:
                if existing["claim"] != body or existing["attestation"] != attestation:
                    raise ValueError(f"idempotency key {idempotency_key!r} already queued for another claim")
                return _row(existing)
            row = db.execute(
                "INSERT INTO queued_claim (idempotency_key, claim, attestation, queued_at) VALUES (?, ?, ?, ?)"
                " RETURNING *",
                (idempotency_key, body, attestation, self._clock()),
            ).fetchone()
        return _row(row)

    def pending(self) -> list[QueuedClaim]:
        """Claims not yet settled, in arrival order, including one being sent right now."""
        rows = self._db.execute(
            "SELECT * FROM queued_claim WHERE state IN ('pending', 'sending') ORDER BY seq"
        ).fetchall()
        return [_row(row) for row in rows]

    def get(self, idempotency_key: str) -> QueuedClaim | None:
        row = self._db.execute("SELECT * FROM queued_claim WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
        return None if row is None else _row(row)

    def _take_next(self) -> tuple[QueuedClaim, str] | None:
        """Leases the oldest claim nobody is sending: the lease is what keeps two forwarders from
        sending one claim at once, and its expiry is what recovers a forwarder killed mid-send."""
        now = self._clock()
        token = secrets.token_hex(16)
        with self._transaction() as db:
            row = db.execute(
                "SELECT seq FROM queued_claim WHERE state = 'pending' OR (state = 'sending' AND lease_until <= ?)"
                " ORDER BY seq LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            leased = db.execute(
                "UPDATE queued_claim SET state = 'sending', lease_token = ?, lease_until = ?, attempts = attempts + 1"
                " WHERE seq = ? RETURNING *",
                (token, now + self._lease_seconds, row["seq"]),
            ).fetchone()
        return _row(leased), token

    def _settle(self, seq: int, token: str, delivery: Delivery) -> None:
        body = None if delivery.body is None else json.dumps(dict(delivery.body), ensure_ascii=False)
        with self._transaction() as db:
            if delivery.outcome.final:
                # The server's answer is a fact whoever holds the lease now: record it even if ours
                # expired meanwhile (the other sender's copy was deduplicated by the key).
                db.execute(
                    "UPDATE queued_claim SET state = ?, status = ?, answer = ?, settled_at = ?,"
                    " lease_token = NULL, lease_until = NULL WHERE seq = ? AND state IN ('pending', 'sending')",
                    (delivery.outcome.value, delivery.status, body, self._clock(), seq),
                )
            else:
                db.execute(
                    "UPDATE queued_claim SET state = 'pending', status = ?, answer = ?,"
                    " lease_token = NULL, lease_until = NULL WHERE seq = ? AND lease_token = ?",
                    (delivery.status, body, seq, token),
                )

    def _release(self, seq: int, token: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE queued_claim SET state = 'pending', lease_token = NULL, lease_until = NULL"
                " WHERE seq = ? AND lease_token = ?",
                (seq, token),
            )

    def forward(self, send: Callable[[QueuedClaim], Delivery]) -> ForwardReport:
        """Sends queued claims oldest first and stops at the first sign the platform cannot take
        them: hammering a channel that is off only delays its recovery. If ``send`` raises, the
        claim is given back to the queue and the error goes up."""
        delivered = refused = 0
        stopped_by: Outcome | None = None
        sent: list[str] = []
        while (taken := self._take_next()) is not None:
            claim, token = taken
            try:
                delivery = send(claim)
            except BaseException:
                self._release(claim.seq, token)
                raise
            sent.append(claim.idempotency_key)
            self._settle(claim.seq, token, delivery)
            if delivery.outcome is Outcome.DELIVERED:
                delivered += 1
            elif delivery.outcome is Outcome.REFUSED:
                refused += 1
            else:
                stopped_by = delivery.outcome
                break
        return ForwardReport(
            delivered=delivered,
            refused=refused,
            pending=len(self.pending()),
            stopped_by=stopped_by,
            sent=tuple(sent),
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
