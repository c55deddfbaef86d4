"""Field types every domain's request schemas share: text a person wrote, and date-times stored in
UTC. What PostgreSQL cannot store (a NUL in text, a year past 9999) is refused at the edge, as a 422
naming the field, on SQLite too."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime


def _one_line(text: str) -> str:
    if not text.isprintable():
        raise ValueError("must be printable on one line (no line breaks, tabs or NUL)")
    return text


def _written(text: str) -> str:
    # Line breaks and tabs are a person's layout; other control characters are no one's words.
    if not all(c.isprintable() or c.isspace() for c in text):
        raise ValueError("must not contain control characters (NUL, escape...)")
    return text


def _in_utc(moment: datetime) -> datetime:
    # Stored in UTC: "9999-12-31T23:00:00-05:00" is a valid date-time whose UTC is past year 9999.
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be a date-time before the year 10000 in UTC") from None


# Names and references: shown on one line (lists, security events, access events).
OneLine = AfterValidator(_one_line)
# Reasons and notes: may run over several lines.
Written = AfterValidator(_written)
# A date-time with its time zone, in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]
