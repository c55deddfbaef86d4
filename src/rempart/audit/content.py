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
* ``sqlite-json`` (SQLite, what the sealer signs there): each event as SQLite's own
  ``json_array(seal_seq, <event columns>)``, the arrays joined without a separator (each closes
  itself) and handed over as one blob per batch. JSON is injective by construction: strings are
  quoted with their quotes, backslashes and control characters escaped (NUL included, which
  ``printf`` and ``length`` stop at), NULL is ``null`` and numbers are not quoted, so no value can
  shift into its neighbour, pass for NULL or hide a tail after a NUL. It needs no ``length()`` per
  value, and the blob spares Python decoding the text to encode it again: verify's SQLite stream
  costs about 2 us an event instead of about 3.3 for ``sqlite-lp`` (bench/audit.py). A value SQLite
  cannot write as JSON (a BLOB, which the application never stores) makes the sealer sign that batch
  as ``sqlite-lp`` instead, and makes ``verify`` check the batch through its leaves.
* ``sqlite-lp`` (SQLite, heads sealed before ``sqlite-json``; still verified): one line per event
  built by a single ``printf``, the sealed number then each column as ``<length>:<value>`` (a NULL as
  a bare ``:``, an empty text as ``0:``). Like every ``printf`` rendering it stops at a NUL inside a
  value, so an edit that only appends a NUL and more to a value shows under ``--deep`` alone.
* ``copy-text``: the canonical text lines themselves (heads of version 1).

The format is named in the signed head. A checkpoint whose format this database cannot render (a log
moved from SQLite to PostgreSQL) is checked through its leaves instead, as ``--deep`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from hashlib import sha256
from typing import Any

from psycopg import pq
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from rempart.audit.canonical import NAMES, batch_bytes

COPY_TEXT = "copy-text"
PG_BINARY = "pg-copy-binary"
SQLITE_LP = "sqlite-lp"
SQLITE_JSON = "sqlite-json"
_RENDERABLE = {
    "postgresql": frozenset({COPY_TEXT, PG_BINARY}),
    "sqlite": frozenset({COPY_TEXT, SQLITE_LP, SQLITE_JSON}),
}

_PG_COLUMNS = ", ".join(("seal_seq", *NAMES))
_PG_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_PG_TRAILER = b"\xff\xff"
# Each tuple opens with its field count (int16) and the sealed number's length (int32) and value.
_PG_TUPLE_START = (1 + len(NAMES)).to_bytes(2, "big") + (8).to_bytes(4, "big")
_SQLITE_FORMAT = "%d" + "\t%d:%s" * len(NAMES) + "\n"
_SQLITE_ARGS = ", ".join(f"length({name}), {name}" for name in NAMES)
_SQLITE_COLUMNS = ", ".join(NAMES)


class Unrenderable(Exception):
    """The database cannot render these events in this format (SQLite's JSON: a BLOB value)."""


def native_format(conn: Connection) -> str:
    """The format the sealer signs on this database."""
    return PG_BINARY if conn.dialect.name == "postgresql" else SQLITE_JSON


def can_render(conn: Connection, content_format: str) -> bool:
    return content_format in _RENDERABLE.get(conn.dialect.name, frozenset({COPY_TEXT}))


def _json_stream(conn: Connection, sql: str, params: tuple[int, ...]) -> bytes:
    try:
        (joined,) = conn.exec_driver_sql(sql, params).one()
    except DBAPIError as exc:
        # SQLite refuses to write a BLOB as JSON ("JSON cannot hold BLOB values"): the application
        # never stores one, so the rows were written from outside it, or the database fails.
        raise Unrenderable(type(exc.orig).__name__) from None
    return bytes(joined) if joined is not None else b""


# Each event's array, joined in SQLite and cast to a blob (no text decoded and encoded again in Python).
_SQLITE_JSON = (
    f"SELECT CAST(group_concat(event, '') AS BLOB) FROM (SELECT json_array(seal_seq, {_SQLITE_COLUMNS}) AS event "  # noqa: S608  (constant columns)
    "FROM access_events WHERE seal_seq >= ? AND seal_seq < ? ORDER BY seal_seq, id)"
)
# ``sqlite-lp``, joined the same way.
_SQLITE_JOINED = (
    f"SELECT CAST(group_concat(line, '') AS BLOB) FROM (SELECT printf('{_SQLITE_FORMAT}', seal_seq, {_SQLITE_ARGS}) "  # noqa: S608
    "AS line FROM access_events WHERE seal_seq >= ? AND seal_seq < ? ORDER BY seal_seq, id)"
)
_SQLITE_JSON_PENDING = (
    f"SELECT CAST(group_concat(event, '') AS BLOB) FROM (SELECT json_array(id + ?, {_SQLITE_COLUMNS}) AS event "  # noqa: S608  (constant columns)
    "FROM access_events WHERE id BETWEEN ? AND ? AND seal_seq IS NULL ORDER BY id)"
)


def content_bytes(conn: Connection, content_format: str, lo: int, hi: int) -> bytes:
    """The stream of the events numbered ``lo`` to ``hi - 1`` in ``content_format`` (whatever the
    table holds under those numbers: duplicates and strays included). Raises ``Unrenderable`` when
    a value cannot be written in that format."""
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
    if content_format == SQLITE_JSON and conn.dialect.name == "sqlite":
        return _json_stream(conn, _SQLITE_JSON, (lo, hi))
    if content_format == SQLITE_LP and conn.dialect.name == "sqlite":
        (joined,) = conn.exec_driver_sql(_SQLITE_JOINED, (lo, hi)).one()
        return bytes(joined) if joined is not None else b""
    raise ValueError(f"this database cannot render the content format {content_format!r}")


def pending_content_bytes(
    conn: Connection, first_id: int, last_id: int, first_seq: int, content_format: str = SQLITE_JSON
) -> bytes:
    """SQLite: the stream the unsealed events with ids ``first_id`` to ``last_id`` (a run of
    consecutive ids) will have once numbered from ``first_seq`` in id order (see
    ``canonical.pending_batch_bytes``). Raises ``Unrenderable`` as ``content_bytes`` does."""
    if content_format == SQLITE_JSON:
        return _json_stream(conn, _SQLITE_JSON_PENDING, (first_seq - first_id, first_id, last_id))
    if content_format != SQLITE_LP:
        raise ValueError(f"the sealer renders no pending batch in {content_format!r}")
    lines = conn.exec_driver_sql(
        f"SELECT printf('{_SQLITE_FORMAT}', id + ?, {_SQLITE_ARGS}) FROM access_events "  # noqa: S608
        "WHERE id BETWEEN ? AND ? AND seal_seq IS NULL ORDER BY id",
        (first_seq - first_id, first_id, last_id),
    ).fetchall()
    return "".join([line for (line,) in lines]).encode()


def blob_events(conn: Connection, lo: int, hi: int) -> list[tuple[int, str]]:
    """SQLite: (sealed number, event id) of the events numbered ``lo`` to ``hi - 1`` holding a BLOB
    in some column (what ``sqlite-json`` cannot render; the application writes none)."""
    if conn.dialect.name != "sqlite":
        return []
    blob = " OR ".join(f"typeof({name}) = 'blob'" for name in NAMES)
    rows = conn.exec_driver_sql(
        f"SELECT seal_seq, CAST(event_id AS TEXT) FROM access_events WHERE seal_seq >= ? AND seal_seq < ? AND ({blob}) "  # noqa: S608
        "ORDER BY seal_seq, id",
        (lo, hi),
    ).all()
    return [(int(seq), _dashed(str(event_id))) for seq, event_id in rows]


def _dashed(event_id: str) -> str:
    return (
        f"{event_id[:8]}-{event_id[8:12]}-{event_id[12:16]}-{event_id[16:20]}-{event_id[20:]}"
        if len(event_id) == 32
        else event_id
    )


def content_to_sign(conn: Connection, lo: int, hi: int) -> tuple[str, bytes]:
    """The format and stream the sealer signs for the events numbered ``lo`` to ``hi - 1``: the
    database's native format, or on SQLite ``sqlite-lp`` for a batch JSON cannot hold."""
    fmt = native_format(conn)
    try:
        return fmt, content_bytes(conn, fmt, lo, hi)
    except Unrenderable:
        return SQLITE_LP, content_bytes(conn, SQLITE_LP, lo, hi)


def pending_content_to_sign(conn: Connection, first_id: int, last_id: int, first_seq: int) -> tuple[str, bytes]:
    """``content_to_sign`` for a run of unsealed events on SQLite (see ``pending_content_bytes``)."""
    try:
        return SQLITE_JSON, pending_content_bytes(conn, first_id, last_id, first_seq)
    except Unrenderable:
        return SQLITE_LP, pending_content_bytes(conn, first_id, last_id, first_seq, SQLITE_LP)


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
    Python object is made per event either; a join in another order only costs a second reading. A
    batch SQLite cannot render (``Unrenderable``) has no digest either. SQLite renders a batch while
    a thread hashes the one before: both let go of the interpreter lock (SQLite while it steps,
    ``hashlib`` over large buffers), so hashing, a tenth of the work, no longer adds to it.
    """
    if not batches:
        return []
    if content_format == PG_BINARY and conn.dialect.name == "postgresql":
        return _pg_digests(conn, batches)
    if content_format not in {SQLITE_JSON, SQLITE_LP} or conn.dialect.name != "sqlite":
        return [_digest_or_none(conn, content_format, lo, lo + count) for lo, count in batches]
    digests: list[Future[bytes] | None] = []
    with ThreadPoolExecutor(1, thread_name_prefix="audit-verify-hash") as hasher:
        for lo, count in batches:
            try:
                stream = content_bytes(conn, content_format, lo, lo + count)
            except Unrenderable:
                digests.append(None)
                continue
            # At most one batch waits for the hasher: memory stays at two batches' streams.
            if len(digests) > 1 and digests[-2] is not None:
                digests[-2].result()
            digests.append(hasher.submit(_sha256, stream))
    return [None if digest is None else digest.result() for digest in digests]


def _sha256(data: bytes) -> bytes:
    return sha256(data).digest()


def _digest_or_none(conn: Connection, content_format: str, lo: int, hi: int) -> bytes | None:
    try:
        return sha256(content_bytes(conn, content_format, lo, hi)).digest()
    except Unrenderable:
        return None


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
