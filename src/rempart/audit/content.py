"""The content digest of a sealed batch: the compact stream that ``verify`` hashes by default.

A checkpoint commits to its events twice. The leaf hashes (``rempart.audit.canonical``, one
portable text line per event) serve proofs to witnesses and name the event that changed; they cost
one small hash per event, which is what ``verify --deep`` pays. The content digest is one SHA-256
over the whole batch in whichever injective encoding the database hands over fastest, so that the
default ``verify`` does no Python work per event:

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


def batch_start(content_format: str, seq: int) -> bytes:
    """The bytes that open the entry of the event numbered ``seq`` (to cut a stream at a batch)."""
    if content_format == PG_BINARY:
        return _PG_TUPLE_START + seq.to_bytes(8, "big", signed=True)
    return b"%d\t" % seq


def find_batch(content_format: str, data: bytes, seq: int, start: int) -> int:
    """Where the entry of ``seq`` begins in ``data`` at or after ``start``, or -1.

    A value that happens to hold the same bytes can only make a cut fall in the wrong place; the
    batch then fails its digest and is read again on its own, so a wrong cut never hides anything.
    """
    marker = batch_start(content_format, seq)
    if content_format == PG_BINARY:
        return data.find(marker, start)
    if start == 0 and data.startswith(marker):
        return 0
    found = data.find(b"\n" + marker, max(0, start - 1))
    return found + 1 if found >= 0 else -1
