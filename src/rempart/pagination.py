"""Keyset pagination of the native API's lists: an opaque cursor names the last row of a page by
its natural order's key (a timestamp, then the id as the tie-break), and the next page starts after
it. Unlike an offset, a page neither skips nor repeats rows when new ones arrive meanwhile."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from rempart.errors import ValidationFailed

T = TypeVar("T")


class CursorInvalid(ValidationFailed):
    slug = "cursor-invalid"
    title = "The cursor is not valid"


@dataclass(frozen=True)
class Cursor:
    at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = f"{self.at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        """The cursor a ``next`` link carries (``None`` for the first page); anything else is a 422."""
        if not text:
            return None
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            at, _, row_id = raw.partition("|")
            parsed = datetime.fromisoformat(at)
            if parsed.tzinfo is None:
                raise ValueError("naive")
            # What the query binds: a time in UTC (year 1 at +05:00 has none).
            return cls(parsed.astimezone(UTC), uuid.UUID(row_id))
        except (ValueError, OverflowError, UnicodeDecodeError, binascii.Error):
            raise CursorInvalid("this cursor is not one a next link gave: start from the first page") from None


def after(cursor: Cursor | None, at: Any, row_id: Any, *, descending: bool) -> ColumnElement[bool] | None:
    """The rows past ``cursor`` in the order (``at``, ``row_id``), both ascending or both descending."""
    if cursor is None:
        return None
    if descending:
        return or_(at < cursor.at, and_(at == cursor.at, row_id < cursor.id))
    return or_(at > cursor.at, and_(at == cursor.at, row_id > cursor.id))


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next: Cursor | None  # the cursor of the next page, ``None`` on the last one


def page_of(rows: Sequence[T], limit: int, key: Callable[[T], Cursor]) -> Page[T]:
    """The first ``limit`` of ``rows`` (read ``limit + 1`` to know whether more follow)."""
    if len(rows) > limit:
        shown = list(rows[:limit])
        return Page(shown, key(shown[-1]))
    return Page(list(rows), None)


def keyset_page(
    session: Session,
    statement: Select[T],
    *,
    at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[uuid.UUID],
    cursor: Cursor | None,
    limit: int,
    descending: bool,
) -> Page[T]:
    """The page of ``statement``'s rows after ``cursor`` in the order (``at``, ``row_id``), both
    ascending or both descending."""
    if (past := after(cursor, at, row_id, descending=descending)) is not None:
        statement = statement.where(past)
    order = (at.desc(), row_id.desc()) if descending else (at.asc(), row_id.asc())
    rows = session.scalars(statement.order_by(*order).limit(limit + 1)).all()
    return page_of(rows, limit, lambda row: Cursor(getattr(row, at.key), getattr(row, row_id.key)))
