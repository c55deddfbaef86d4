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

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

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
# What needs an escape besides tab and newline (counted instead: one of each per field and line).
_ESCAPED = b"\\\b\f\r\v"
# NULL while a batch is rendered: a lone SOH character (``\N`` would make every line look as if it
# needed escapes); whole fields of it become ``\N`` once the batch is checked.
_SOH = "\x01"
# ``_fast_line`` names the columns in this order.
_KINDS = (UUID, TIME, TEXT, TEXT, TEXT, UUID, UUID, UUID, TEXT, TEXT, TEXT, TEXT, UUID, UUID, TEXT, TEXT, TEXT, UUID)
if tuple(kind for _name, kind in COLUMNS) != _KINDS:
    raise RuntimeError("canonical._fast_line no longer matches COLUMNS")


def _dashed(value: Any) -> str:
    if value is None:
        return _SOH
    if type(value) is not str:
        raise TypeError  # not what the application writes: the careful rendering shows it as stored
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}" if len(value) == 32 else value


def _fast_line(row: Sequence[Any]) -> str:
    """One batch line, for a row holding what the application writes (text or NULL); escapes and
    other types are looked for afterwards, over the whole batch, or raise ``TypeError`` here."""
    (seq, event_id, at, op, purpose, kind, actor, practice, pro, profession, channel, device, address, insurer,
     beneficiary, fields, outcome, reference, grant) = row  # fmt: skip
    if type(at) is not str:
        raise TypeError
    if _SOH in row:  # a value that is SOH itself would read as the NULL it stands for here
        raise TypeError
    return "\t".join(
        (
            str(seq),
            _dashed(event_id),
            at.rstrip("0").rstrip(".") if "." in at else at,
            op,
            purpose,
            kind,
            _dashed(actor),
            _dashed(practice),
            _dashed(pro),
            _SOH if profession is None else profession,
            channel,
            _SOH if device is None else device,
            _SOH if address is None else address,
            _dashed(insurer),
            _dashed(beneficiary),
            fields,
            outcome,
            _SOH if reference is None else reference,
            _dashed(grant),
        )
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
    """The batch lines of the rows ``where`` selects, numbered by the expression ``seq``.

    Rendered in Python from the rows as stored, one join per line: SQLite's string functions cost
    three times as much (each UUID's dashes alone took five ``substr`` and eight concatenations).
    The lines are then checked as a whole: a value holding a tab, a newline or any character that
    needs an escape, a value that is not text (a NULL in a column that never holds one is text to
    none), or one that cannot be read as UTF-8, sends the batch to the careful rendering, value by
    value, from the bytes SQLite holds."""
    select_rows = f"SELECT {seq}, {SELECT_SQLITE} FROM access_events WHERE {where}"  # noqa: S608  (constant SQL)
    try:
        rows = conn.exec_driver_sql(select_rows, params).fetchall()
        joined = ("\n".join(map(_fast_line, rows)) + "\n").encode() if rows else b""
    except (TypeError, ValueError, DBAPIError):  # another type, or text that is not UTF-8
        joined = None
    if (
        joined is not None
        and joined.count(b"\t") == len(COLUMNS) * len(rows)
        and joined.count(b"\n") == len(rows)
        and len(joined.translate(None, _ESCAPED)) == len(joined)  # none of them (faster than a regex)
    ):
        # Whole fields of SOH are NULLs; two passes, since a run of them shares its tabs.
        rendered = joined.replace(b"\t\x01\t", b"\t\\N\t").replace(b"\t\x01\t", b"\t\\N\t")
        rendered = rendered.replace(b"\t\x01\n", b"\t\\N\n")
        if b"\x01" not in rendered:  # a value holding SOH itself: render it the careful way
            return rendered
    as_bytes = ", ".join(f"CAST({name} AS BLOB)" for name in NAMES)
    rows = conn.exec_driver_sql(f"SELECT {seq}, {as_bytes} FROM access_events WHERE {where}", params).fetchall()  # noqa: S608
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
