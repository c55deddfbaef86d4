"""The content digest of a sealed batch: the compact stream that ``verify`` hashes by default.

A checkpoint commits to its events twice. The leaf hashes (``rempart.audit.canonical``, one
portable text line per event) serve proofs to witnesses and name the event that changed; they cost
one small hash per event, which is what ``verify --deep`` pays. The content digest is one SHA-256
over the whole batch in whichever injective encoding the database hands over fastest, so that the
default ``verify`` does as little Python work per event as the driver allows (on PostgreSQL one
libpq call and one hash update per tuple; on SQLite none, SQLite joining each batch itself):

* ``pg-copy-binary`` (PostgreSQL): the tuples of ``COPY (SELECT seal_seq, <event columns> ... ORDER
  BY seal_seq) TO STDOUT (FORMAT binary)``, header and trailer left out. The server copies UUIDs and
  times as they are stored (16 and 8 bytes) instead of formatting them as text, which is what made
  the text COPY the bottleneck; every field is length-prefixed, NULL included, so the stream is
  injective. Times are microseconds since 2000-01-01 UTC, whatever the session's time zone.
* ``sqlite-lp`` (SQLite): one line per event built by a single ``printf`` in SQLite, the sealed
  number then each column as ``<length>:<value>`` (a NULL as a bare ``:``, an empty text as
  ``0:``), so no value can shift into its neighbour. One ``printf`` per row instead of dozens of
  concatenations is what makes SQLite hand it over about as fast as plain rows.
* ``copy-text``: the canonical text lines themselves (heads of version 1).

The format is named in the signed head. A checkpoint whose format this database cannot render (a log
moved from SQLite to PostgreSQL) is checked through its leaves instead, as ``--deep`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from hashlib import sha256
from typing import Any

from psycopg import pq
from sqlalchemy.engine import Connection

from rempart.audit.canonical import NAMES, batch_bytes

COPY_TEXT = "copy-text"
PG_BINARY = "pg-copy-binary"
SQLITE_LP = "sqlite-lp"

_PG_COLUMNS = ", ".join(("seal_seq", *NAMES))
_PG_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_PG_TRAILER = b"\xff\xff"
# Each tuple opens with its field count (int16) and the sealed number's length (int32) and value.
_PG_TUPLE_START = (1 + len(NAMES)).to_bytes(2, "big") + (8).to_bytes(4, "big")
_SQLITE_FORMAT = "%d" + "\t%d:%s" * len(NAMES) + "\n"
_SQLITE_ARGS = ", ".join(f"length({name}), {name}" for name in NAMES)


def native_format(conn: Connection) -> str:
    return PG_BINARY if conn.dialect.name == "postgresql" else SQLITE_LP


def can_render(conn: Connection, content_format: str) -> bool:
    return content_format in {COPY_TEXT, native_format(conn)}


def content_bytes(conn: Connection, content_format: str, lo: int, hi: int) -> bytes:
    """The stream of the events numbered ``lo`` to ``hi - 1`` in ``content_format`` (whatever the
    table holds under those numbers: duplicates and strays included)."""
    if content_format == COPY_TEXT:
        return batch_bytes(conn, lo, hi)
    if content_format == PG_BINARY and conn.dialect.name == "postgresql":
        query = (
            f"COPY (SELECT {_PG_COLUMNS} FROM access_events "  # noqa: S608  (constant columns)
            f"WHERE seal_seq >= {int(lo)} AND seal_seq < {int(hi)} ORDER BY seal_seq) TO STDOUT (FORMAT binary)"
        )
        # Appended to one growing buffer: keeping each row's chunk alive until a final join costs
        # four times the read itself (one allocation held per row).
        data = bytearray()
        with conn.connection.dbapi_connection.cursor() as cursor, cursor.copy(query) as copy:  # type: ignore[union-attr]
            for chunk in copy:
                data += chunk
        if not data.startswith(_PG_SIGNATURE) or not data.endswith(_PG_TRAILER):
            raise RuntimeError("the database's binary COPY stream has an unexpected form")
        extension = int.from_bytes(data[15:19], "big")
        return bytes(memoryview(data)[19 + extension : -len(_PG_TRAILER)])
    if content_format == SQLITE_LP and conn.dialect.name == "sqlite":
        lines = conn.exec_driver_sql(
            f"SELECT printf('{_SQLITE_FORMAT}', seal_seq, {_SQLITE_ARGS}) FROM access_events "  # noqa: S608
            "WHERE seal_seq >= ? AND seal_seq < ? ORDER BY seal_seq, id",
            (lo, hi),
        ).fetchall()
        return "".join([line for (line,) in lines]).encode()
    raise ValueError(f"this database cannot render the content format {content_format!r}")


def pending_content_bytes(conn: Connection, first_id: int, last_id: int, first_seq: int) -> bytes:
    """SQLite: the ``sqlite-lp`` stream the unsealed events with ids ``first_id`` to ``last_id`` (a
    run of consecutive ids) will have once numbered from ``first_seq`` in id order (see
    ``canonical.pending_batch_bytes``)."""
    lines = conn.exec_driver_sql(
        f"SELECT printf('{_SQLITE_FORMAT}', id + ?, {_SQLITE_ARGS}) FROM access_events "  # noqa: S608
        "WHERE id BETWEEN ? AND ? AND seal_seq IS NULL ORDER BY id",
        (first_seq - first_id, first_id, last_id),
    ).fetchall()
    return "".join([line for (line,) in lines]).encode()


def batch_start(content_format: str, seq: int) -> bytes:
    """The bytes that open the entry of the event numbered ``seq``."""
    if content_format == PG_BINARY:
        return _PG_TUPLE_START + seq.to_bytes(8, "big", signed=True)
    return b"%d\t" % seq


def batch_digests(conn: Connection, content_format: str, batches: Sequence[tuple[int, int]]) -> list[bytes | None]:
    """The SHA-256 of each batch's stream, for consecutive batches given as (first number, count).

    The whole run is read in one pass. On PostgreSQL each tuple of the binary COPY arrives as its own
    message (libpq hands over one row per call), so batches are cut by counting tuples: the only
    Python work per event is handing that message to the hash. A cut that lands anywhere else than on
    the entry of a batch's first number, and a stream that runs past the last batch, leave the
    batches concerned without a digest (None): the caller reads them alone. Counting cannot hide an
    event: a digest only matches when the counted tuples are, byte for byte and number for number,
    the ones that were sealed; a tuple too many or too few shifts every later cut of the run.

    On SQLite each batch is one query whose lines SQLite itself joins (``group_concat``), so no
    Python object is made per event either; a join in another order only costs a second reading.
    """
    if not batches:
        return []
    if content_format == PG_BINARY and conn.dialect.name == "postgresql":
        return _pg_digests(conn, batches)
    if content_format == SQLITE_LP and conn.dialect.name == "sqlite":
        digests: list[bytes | None] = []
        for lo, count in batches:
            (joined,) = conn.exec_driver_sql(_SQLITE_JOINED, (lo, lo + count)).one()
            digests.append(sha256((joined or "").encode()).digest())
        return digests
    return [sha256(content_bytes(conn, content_format, lo, lo + count)).digest() for lo, count in batches]


_SQLITE_JOINED = (
    f"SELECT group_concat(line, '') FROM (SELECT printf('{_SQLITE_FORMAT}', seal_seq, {_SQLITE_ARGS}) AS line "  # noqa: S608
    "FROM access_events WHERE seal_seq >= ? AND seal_seq < ? ORDER BY seal_seq, id)"
)


def _pg_digests(conn: Connection, batches: Sequence[tuple[int, int]]) -> list[bytes | None]:
    lo, hi = batches[0][0], batches[-1][0] + batches[-1][1]
    # The documented low-level connection (psycopg's ``Connection.pgconn``): its COPY reader costs
    # about half of what psycopg's ``Copy`` iterator does per row, which is most of verify's own work.
    pgconn = conn.connection.dbapi_connection.pgconn  # type: ignore[union-attr]
    pgconn.send_query(
        f"COPY (SELECT {_PG_COLUMNS} FROM access_events "  # noqa: S608  (constant columns)
        f"WHERE seal_seq >= {int(lo)} AND seal_seq < {int(hi)} ORDER BY seal_seq) TO STDOUT (FORMAT binary)".encode()
    )
    digests: list[bytes | None] = [None] * len(batches)
    copying = False
    try:
        started = pgconn.get_result()
        copying = started is not None and started.status == pq.ExecStatus.COPY_OUT
        if not copying:
            message = (started.error_message or b"").decode(errors="replace") if started is not None else ""
            raise RuntimeError(f"the database refused to stream the access log: {message}")
        _count_batches(pgconn.get_copy_data, batches, digests)
        copying = False
    finally:
        while copying and pgconn.get_copy_data(0)[0] > 0:
            pass  # an interrupted stream is read to its end so that the connection can be used again
        while (result := pgconn.get_result()) is not None:
            if result.status == pq.ExecStatus.FATAL_ERROR:
                message = (result.error_message or b"").decode(errors="replace")
                raise RuntimeError(f"reading the access log failed: {message}")
    return digests


def _count_batches(
    get: Callable[[int], tuple[int, Any]], batches: Sequence[tuple[int, int]], out: list[bytes | None]
) -> None:
    """Hash the COPY stream's tuples into ``out``, one digest per batch, cut by counting."""
    nbytes, row = get(0)
    head = bytes(row[:19]) if nbytes > 0 else b""
    if len(head) < 19 or not head.startswith(_PG_SIGNATURE):
        raise RuntimeError("the database's binary COPY stream has an unexpected form")
    row = row[19 + int.from_bytes(head[15:19], "big") :]
    if not row:  # the header came in a message of its own
        nbytes, row = get(0)
    index, remaining, aligned = -1, 0, True
    digest = sha256()
    while nbytes > 0:
        if not remaining:
            # A batch is complete (its digest is kept only now, once counted in full) or none begun.
            if index >= 0 and aligned:
                out[index] = digest.digest()
            index += 1
            if index == len(batches):
                # Only the trailer may follow: more tuples are events under these numbers that were
                # never sealed, and the last batch is read alone to name them.
                if bytes(row) != _PG_TRAILER or get(0)[0] > 0:
                    out[-1] = None
                    while get(0)[0] > 0:
                        pass
                return
            first, remaining = batches[index]
            aligned = aligned and bytes(row[: len(_PG_TUPLE_START) + 8]) == batch_start(PG_BINARY, first)
            digest = sha256()
        digest.update(row)
        remaining -= 1
        nbytes, row = get(0)
    if nbytes == -2:
        raise RuntimeError("the database's stream of the access log broke off")
