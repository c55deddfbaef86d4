"""The canonical encoding of access events: what is hashed, sealed and proved.

An event is one line of PostgreSQL's ``COPY ... TO STDOUT`` text format over the columns of
``COLUMNS``, in that order: fields separated by a tab, NULL written ``\\N``, backslash and the
control characters backspace, form feed, newline, carriage return, tab and vertical tab written as
backslash escapes, everything else as is (UTF-8). UUIDs are written in their usual dashed form and
times in UTC as ``YYYY-MM-DD HH:MM:SS.ffffff`` without trailing zeros. The format is unambiguous (a
tab or newline inside a value is always escaped) and documented by PostgreSQL itself, so a witness
can parse what it is shown.

A batch, for its content digest, is the same lines with the event's sealed number as a first
field, in sequence order, each ending with a newline: exactly what ``COPY (SELECT seal_seq, ...
ORDER BY seal_seq) TO STDOUT`` streams (heads of version 1 hash these lines; version 2 heads hash
the compact stream of ``rempart.audit.content`` instead, and the lines give the leaves). On SQLite
the same lines are rendered by SQLite, or in Python when a value needs escapes. ``render_event``
is the reference encoding from Python values; tests hold both databases to it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

UUID, TIME, TEXT = "uuid", "time", "text"
COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", UUID),
    ("occurred_at", TIME),
    ("operation", TEXT),
    ("purpose", TEXT),
    ("actor_kind", TEXT),
    ("actor_id", UUID),
    ("practice_id", UUID),
    ("professional_id", UUID),
    ("profession", TEXT),
    ("channel", TEXT),
    ("device", TEXT),
    ("address", TEXT),
    ("insurer_id", UUID),
    ("beneficiary_id", UUID),
    ("fields", TEXT),
    ("outcome", TEXT),
    ("reference", TEXT),
    ("break_glass_id", UUID),
)
NAMES = tuple(name for name, _kind in COLUMNS)
NULL = "\\N"
_ESCAPE = str.maketrans({"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"})
_UNESCAPE = {"\\": "\\", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _time(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    whole = moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{whole}.{moment.microsecond:06d}".rstrip("0") if moment.microsecond else whole


def _render(kind: str, value: Any) -> str:
    if value is None:
        return NULL
    if kind == UUID:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    if kind == TIME:
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("event times are timezone-aware datetimes")
        return _time(value)
    plain = value.value if isinstance(value, StrEnum) else str(value)
    return plain.translate(_ESCAPE)


def render_event(values: Mapping[str, Any]) -> str:
    """The reference encoding of one event from its column values (no sealed number)."""
    return "\t".join(_render(kind, values.get(name)) for name, kind in COLUMNS)


def parse_event(line: str) -> dict[str, str | None]:
    """Read an encoded event back into its fields, as text (for proofs shown to a witness)."""
    parts = line.split("\t")
    if len(parts) != len(COLUMNS):
        raise ValueError("not an access event encoding")
    return {name: None if part == NULL else _unescape(part) for name, part in zip(NAMES, parts, strict=True)}


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            out.append(_UNESCAPE.get(value[i + 1], value[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# -- batches, as the database holds them --------------------------------------------------------

SELECT_PG = ", ".join(f"{name} AT TIME ZONE 'UTC'" if kind == TIME else name for name, kind in COLUMNS)
SELECT_SQLITE = ", ".join(NAMES)
_NEEDS_ESCAPE = re.compile(rb"[\\\b\f\r\v]")
# SQLite writes NULL as a lone SOH character (it cannot write the backslash of ``\N`` without making
# every line look like it needs escapes); whole fields of it become ``\N`` once the line is checked.
_NULL_FIELD = re.compile(rb"(?<=\t)\x01(?=[\t\n])")


def _sqlite_sql(name: str, kind: str) -> str:
    if kind == UUID:
        dashed = "||'-'||".join(f"substr({name},{a},{n})" for a, n in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12)))
        # A UUID of another length is not what the application writes: shown as stored.
        return f"CASE WHEN {name} IS NULL THEN char(1) WHEN length({name}) = 32 THEN {dashed} ELSE {name} END"
    if kind == TIME:
        return (
            f"CASE WHEN {name} IS NULL THEN char(1) WHEN instr({name}, '.') "
            f"THEN rtrim(rtrim({name}, '0'), '.') ELSE {name} END"
        )
    return f"COALESCE(CAST({name} AS TEXT), char(1))"


# One line per row, seal_seq first; its tab count and characters are checked before use.
_LINE_SQLITE = (
    "CAST(seal_seq AS TEXT) || char(9) || "
    + " || char(9) || ".join(_sqlite_sql(name, kind) for name, kind in COLUMNS)
    + " || char(10)"
)


def _sqlite_uuid(value: Any) -> str:
    if value is None:
        return NULL
    h = str(value)
    if len(h) == 32:
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return h.translate(_ESCAPE)  # not what the application writes: rendered as is, so it shows


def _sqlite_time(value: Any) -> str:
    if value is None:
        return NULL
    stored = str(value)  # SQLAlchemy's format: 'YYYY-MM-DD HH:MM:SS.ffffff'
    return stored.rstrip("0").rstrip(".") if "." in stored else stored


def _sqlite_text(value: Any) -> str:
    return NULL if value is None else str(value).translate(_ESCAPE)


_SQLITE_RENDERERS = tuple(
    _sqlite_uuid if kind == UUID else _sqlite_time if kind == TIME else _sqlite_text for _n, kind in COLUMNS
)


def _sqlite_line(row: Sequence[Any]) -> str:
    return f"{row[0]}\t" + "\t".join(render(v) for render, v in zip(_SQLITE_RENDERERS, row[1:], strict=True)) + "\n"


def batch_bytes(conn: Connection, lo: int, hi: int) -> bytes:
    """The batch lines of the events numbered ``lo`` to ``hi - 1``, in sequence order (duplicates
    and strays included: whatever the table holds under those numbers)."""
    if conn.dialect.name == "postgresql":
        # ISO dates whatever the server's default; times are converted to UTC in the query.
        conn.execute(text("SET LOCAL DateStyle = 'ISO, YMD'"))
        query = (
            f"COPY (SELECT seal_seq, {SELECT_PG} FROM access_events "  # noqa: S608  (constant columns)
            f"WHERE seal_seq >= {int(lo)} AND seal_seq < {int(hi)} ORDER BY seal_seq) TO STDOUT"
        )
        data = bytearray()  # one growing buffer: far cheaper than a chunk kept per row
        with conn.connection.dbapi_connection.cursor() as cursor, cursor.copy(query) as copy:  # type: ignore[union-attr]
            for chunk in copy:
                data += chunk
        return bytes(data)
    return _sqlite_lines(conn, "seal_seq", "seal_seq >= ? AND seal_seq < ? ORDER BY seal_seq, id", (lo, hi))


def pending_batch_bytes(conn: Connection, first_id: int, last_id: int, first_seq: int) -> bytes:
    """SQLite: the batch lines the unsealed events with ids ``first_id`` to ``last_id`` (a run of
    consecutive ids) will have once numbered from ``first_seq`` in id order, as ``batch_bytes``
    will render them then. Lets the sealer do its rendering before it takes the write lock."""
    return _sqlite_lines(
        conn,
        f"id + {int(first_seq) - int(first_id)}",
        "id BETWEEN ? AND ? AND seal_seq IS NULL ORDER BY id",
        (first_id, last_id),
    )


def _sqlite_lines(conn: Connection, seq: str, where: str, params: tuple[int, int]) -> bytes:
    # SQLite renders the lines without escapes; when a value holds a character that needs one (or
    # a type the application never writes), the batch is rendered again in Python, escapes included.
    # Lines come as bytes (a BLOB): a value that is not valid UTF-8, which only a write from outside
    # the application can store, is hashed as it is instead of stopping the reader.
    line = _LINE_SQLITE.replace("CAST(seal_seq AS TEXT)", f"CAST({seq} AS TEXT)", 1)
    lines = conn.exec_driver_sql(f"SELECT CAST({line} AS BLOB) FROM access_events WHERE {where}", params).fetchall()  # noqa: S608  (constant SQL)
    joined = b"".join(line for (line,) in lines)
    clean = joined.count(b"\t") == len(COLUMNS) * len(lines) and joined.count(b"\n") == len(lines)
    if clean and not _NEEDS_ESCAPE.search(joined):
        rendered = _NULL_FIELD.sub(rb"\\N", joined)
        if b"\x01" not in rendered:  # a value holding SOH itself: render it the slow way
            return rendered
    as_bytes = ", ".join(f"CAST({name} AS BLOB)" for name in NAMES)
    rows = conn.exec_driver_sql(f"SELECT {seq}, {as_bytes} FROM access_events WHERE {where}", params)  # noqa: S608
    return "".join(_sqlite_line([row[0], *map(_text, row[1:])]) for row in rows).encode(errors="surrogateescape")


def _text(value: bytes | None) -> str | None:
    return None if value is None else bytes(value).decode(errors="surrogateescape")


def split_batch(data: bytes) -> list[tuple[int, bytes]]:
    """(sealed number, event line) of each line of a batch."""
    out = []
    for line in data.split(b"\n")[:-1] if data else []:
        seq, _tab, event = line.partition(b"\t")
        out.append((int(seq), event))
    return out
