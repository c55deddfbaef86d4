"""Field types every domain's request schemas share: text a person wrote, and date-times stored in
UTC. What PostgreSQL cannot store (a NUL in text, a year past 9999) is refused at the edge, as a 422
naming the field, on SQLite too. And amounts in euros as a person types them in a form, and back."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, AwareDatetime

# Care is dated, and formulas take effect, on the calendar of metropolitan France.
PARIS = ZoneInfo("Europe/Paris")


def paris_day(moment: datetime) -> date:
    """The calendar day in metropolitan France at ``moment``."""
    return moment.astimezone(PARIS).date()


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


# Euros as typed: up to 9 digits, then a comma or a point and up to 2 digits of cents. Spaces
# (also the no-break ones French writes between thousands) and a trailing "€" or "EUR" are allowed.
_EUROS = re.compile(r"^\d{1,9}([.,]\d{1,2})?$")
_SPACES = re.compile(r"[\s\u00a0\u202f]")


class NotEuros(ValueError):
    """What was typed is not an amount in euros."""


def euros_to_cents(text: str) -> int:
    """``"12,50"``, ``"12.50"``, ``"1 234,5"`` or ``"12 €"`` → cents; ``NotEuros`` otherwise (a
    negative amount, a third decimal, an exponent, words)."""
    cleaned = _SPACES.sub("", text).removesuffix("€").removesuffix("EUR")
    if not _EUROS.match(cleaned):
        raise NotEuros("not an amount in euros")
    return int(Decimal(cleaned.replace(",", ".")) * 100)


def cents_to_euros(cents: int | None, language: str) -> str:
    """Cents as the person would type them back: ``"250,00"`` in French, ``"250.00"`` in English."""
    if cents is None:
        return ""
    text = f"{cents // 100}.{cents % 100:02d}"
    return text.replace(".", ",") if language == "fr" else text
