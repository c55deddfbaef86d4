"""Tenant-scoped reads of insurer-owned rows: the first tenant wall (DESIGN.md, invariant 6).

Every read of an insurer's row goes through a helper that takes the caller's insurer and answers
"not found" both when the row is missing and when it belongs to another insurer, so nobody can
probe what exists. Domains write their own ``access_<thing>`` on top of these.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from rempart.db import Base
from rempart.errors import NotFound

T = TypeVar("T", bound=Base)


def access_owned(session: Session, model: type[T], *, insurer_id: uuid.UUID, key: Any, what: str = "object") -> T:
    """The row of ``model`` with primary key ``(insurer_id, *key)``; NotFound if missing or foreign."""
    rest = key if isinstance(key, tuple) else (key,)
    row = session.get(model, (insurer_id, *rest))
    if row is None or getattr(row, "insurer_id", None) != insurer_id:
        raise NotFound(f"no such {what}")
    return row


def owned_by(model: type[T], insurer_id: uuid.UUID) -> Select[T]:
    """``select(model)`` limited to one insurer's rows; add filters and ordering to it."""
    column: Any = getattr(model, "insurer_id")  # noqa: B009  (every insurer-owned model has it)
    return select(model).where(column == insurer_id)
