"""The canonical encoding of an access event: what is hashed, sealed and proved.

An event is the text ``rae1`` followed by one token per field, in the fixed order of ``COLUMNS``; a
token is ``-`` for NULL or ``<length>:<value>`` (length in characters), so that no value can shift
into its neighbour whatever characters it holds. Values are written as: UUIDs in 32 lowercase hex
digits, times in UTC as ``YYYY-MM-DD HH:MM:SS.ffffff``, everything else as stored. The text is
hashed as UTF-8.

The same encoding exists twice: in Python (``canonical_event``, the reference, used by proofs and
tests) and as SQL for each database (``canonical_sql``), so that the sealer and ``verify`` let the
database render millions of rows and Python only hashes. Tests hold the two to the same output.
The row's ``id`` and ``seal_seq`` are not part of the event: the position in the sealed sequence is
what the tree and the content digest commit to.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

VERSION = "rae1"
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

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


def _render(kind: str, value: Any) -> str | None:
    if value is None:
        return None
    if kind == UUID:
        return uuid.UUID(str(value)).hex
    if kind == TIME:
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("event times are timezone-aware datetimes")
        return value.astimezone(UTC).strftime(_TIME_FORMAT)
    return value.value if isinstance(value, StrEnum) else str(value)


def token(value: str | None) -> str:
    return "-" if value is None else f"{len(value)}:{value}"


def canonical_event(values: Mapping[str, Any]) -> str:
    """The reference encoding of an event given its column values."""
    return VERSION + "".join(token(_render(kind, values.get(name))) for name, kind in COLUMNS)


def sequence_entry(seq: int, canonical: str) -> str:
    """One event's part of a batch's content digest: its place in the sequence, then the event."""
    return token(str(seq)) + canonical


_TOKEN = re.compile(r"-|(\d+):")


def parse_canonical(text: str) -> dict[str, str | None]:
    """Read an encoded event back into its fields (for proofs shown to a witness)."""
    if not text.startswith(VERSION):
        raise ValueError("not an access event encoding")
    pos = len(VERSION)
    out: dict[str, str | None] = {}
    for name, _kind in COLUMNS:
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError("malformed access event encoding")
        if match.group(0) == "-":
            out[name], pos = None, match.end()
        else:
            end = match.end() + int(match.group(1))
            if end > len(text):
                raise ValueError("malformed access event encoding")
            out[name], pos = text[match.end() : end], end
    if pos != len(text):
        raise ValueError("trailing data after an access event encoding")
    return out


# -- the same encoding in SQL ------------------------------------------------------------------


def _sql_value(dialect: str, column: str, kind: str) -> str:
    if dialect == "postgresql":
        if kind == UUID:
            return f"replace(CAST({column} AS text), '-', '')"
        if kind == TIME:
            return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
        return f"CAST({column} AS text)"
    # SQLite keeps UUIDs as 32 hex digits and times as 'YYYY-MM-DD HH:MM:SS.ffffff' (SQLAlchemy's
    # storage formats), which already are the canonical forms.
    return column


def _sql_token(dialect: str, value: str) -> str:
    length = f"CAST(length({value}) AS text)" if dialect == "postgresql" else f"length({value})"
    return f"COALESCE({length} || ':' || {value}, '-')"


def canonical_sql(dialect: str, alias: str = "") -> str:
    """A SQL expression rendering ``canonical_event`` of each row of ``access_events``."""
    prefix = f"{alias}." if alias else ""
    tokens = [_sql_token(dialect, _sql_value(dialect, prefix + name, kind)) for name, kind in COLUMNS]
    return f"'{VERSION}' || " + " || ".join(tokens)


def sequence_entry_sql(dialect: str, alias: str = "") -> str:
    """A SQL expression rendering ``sequence_entry(seal_seq, canonical_event(row))``."""
    prefix = f"{alias}." if alias else ""
    seq = f"CAST({prefix}seal_seq AS text)" if dialect == "postgresql" else f"CAST({prefix}seal_seq AS TEXT)"
    return _sql_token(dialect, seq) + " || " + canonical_sql(dialect, alias)


def event_id_sql(dialect: str, alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return _sql_value(dialect, prefix + "event_id", UUID)
