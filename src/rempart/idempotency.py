"""``Idempotency-Key`` for approval and claim creation (DESIGN.md, invariant 10).

The key is stored on the created row under a unique constraint (insurer, practice, key): whatever
the number of concurrent requests, one row wins. A request whose key is already used gets the first
result back if it asked the same thing, and a clear error if it asked something else.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rempart.errors import RempartError

T = TypeVar("T")
MAX_KEY_LENGTH = 64
_ALLOWED = frozenset(string.ascii_letters + string.digits + "-_.:")


class IdempotencyKeyRequired(RempartError):
    status = 400
    slug = "idempotency-key-required"
    title = "Idempotency-Key required"


class IdempotencyKeyReused(RempartError):
    status = 422
    slug = "idempotency-key-reused"
    title = "Idempotency-Key already used for another request"


def require_key(key: str | None) -> str:
    if not key:
        raise IdempotencyKeyRequired("send an Idempotency-Key header (a UUID is fine) to create this safely")
    if len(key) > MAX_KEY_LENGTH or not set(key) <= _ALLOWED:
        raise IdempotencyKeyRequired(
            f"an Idempotency-Key has at most {MAX_KEY_LENGTH} letters, digits or the characters - _ . :"
        )
    return key


def digest(payload: Any) -> str:
    """A stable fingerprint of a request body: the same request hashes the same."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_replay(stored_digest: str, request_digest: str) -> None:
    if stored_digest != request_digest:
        raise IdempotencyKeyReused("this Idempotency-Key was used for a different request; use a new key")


def once(session: Session, create: Callable[[], T], replay: Callable[[], T | None]) -> T:
    """Run ``create``; if a concurrent request with the same key won the race, answer with its result.

    ``create`` flushes the row carrying the key before any other write, so losing the race costs one
    rolled-back insert. Anything but a lost race goes on as the error it is.
    """
    try:
        return create()
    except IntegrityError:
        session.rollback()
        winner = replay()
        if winner is None:
            raise
        return winner
