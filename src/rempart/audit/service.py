"""Recording accesses to personal data (DESIGN.md, invariant 7).

``record_access`` is the one way in. It adds the event **in the caller's transaction** with a single
INSERT executed at once (not deferred to a flush): if the log refuses the write, the call raises
``AccessLogUnavailable`` (503) before the caller has built its answer, and the caller's transaction
is rolled back with it. If the insert succeeds but the caller's commit fails, the event disappears
with everything else and no answer leaves either. Callers therefore:

    with runtime.sessions.begin() as session:
        answer = compute(...)
        record_access(session, operation=Operation.RIGHTS_CHECK, ...)
    return answer   # only once the commit, event included, has succeeded

The hot path pays one indexed insert: no lock shared between requests, no read of the previous
event. Ordering, hashing and signing happen later, in the sealer (``rempart.audit.sealing``).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from rempart.audit.disclosures import DataField, Operation, disclosure_of, encode_fields
from rempart.audit.models import ActorKind, Channel, Outcome
from rempart.db import utcnow
from rempart.errors import ServiceUnavailable
from rempart.logs import get_logger

log = get_logger("rempart.audit")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DEVICE_MAX = 128
_REFERENCE_MAX = 64
# The hot path writes through the driver with a fixed statement (prepared by psycopg after a few
# uses), bypassing SQLAlchemy's per-call compilation and type processing, which cost as much as the
# insert itself. Values are put in the forms SQLAlchemy stores (tests read them back through the
# ORM and hold the canonical encoding to them).
_COLUMNS = (
    "event_id",
    "occurred_at",
    "operation",
    "purpose",
    "actor_kind",
    "actor_id",
    "practice_id",
    "professional_id",
    "profession",
    "channel",
    "device",
    "address",
    "insurer_id",
    "beneficiary_id",
    "fields",
    "outcome",
    "reference",
    "break_glass_id",
)
_UUIDS = frozenset(
    {"event_id", "actor_id", "practice_id", "professional_id", "insurer_id", "beneficiary_id", "break_glass_id"}
)
_SQL = "INSERT INTO access_events ({}) VALUES ({})".format(  # noqa: S608  (constant column names)
    ", ".join(_COLUMNS), ", ".join(["{mark}"] * len(_COLUMNS))
)
_SQL_POSTGRESQL = _SQL.replace("{mark}", "%s")
_SQL_SQLITE = _SQL.replace("{mark}", "?")


def _driver_params(row: dict[str, Any], *, sqlite: bool) -> tuple[Any, ...]:
    values: list[Any] = []
    for column in _COLUMNS:
        value = row[column]
        if value is None:
            values.append(None)
        elif column in _UUIDS:
            values.append(value.hex if sqlite else value)
        elif column == "occurred_at":
            utc = value.astimezone(UTC)
            # SQLAlchemy's stored form, 'YYYY-MM-DD HH:MM:SS.ffffff' (isoformat is cheaper than strftime).
            values.append(utc.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else utc)
        else:
            values.append(str(value))
    return tuple(values)


def new_event_id(moment: datetime | None = None) -> uuid.UUID:
    """A time-ordered event id (UUIDv7, RFC 9562 section 5.7): 48 bits of Unix milliseconds, then
    random bits. The index that proofs use to find an event by id then grows at its right edge
    instead of taking a random page per insert. (The standard library has ``uuid7`` from Python 3.14
    only; the layout is a few bit operations, not worth a dependency.)"""
    millis = int((moment or utcnow()).timestamp() * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC variant
    return uuid.UUID(int=value)


class AccessLogUnavailable(ServiceUnavailable):
    """The access log refused the event: the answer that needed it is not sent."""

    slug = "access-log-unavailable"
    title = "Service unavailable"

    def __init__(self) -> None:
        super().__init__("The request could not be recorded, so it was not answered. Please retry later.")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who accessed: the authenticated principal and, for professionals, the practice they act for.

    ``id`` is an account id (people) or an API client id (practice software); ``professional_id``
    is the professional a practice software or a shared practice account acted for.
    """

    kind: ActorKind
    id: uuid.UUID | None = None
    practice_id: uuid.UUID | None = None
    professional_id: uuid.UUID | None = None
    profession: str | None = None


SYSTEM_ACTOR = Actor(ActorKind.SYSTEM)


def _clean(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    value = _CONTROL.sub("?", value).strip()[:limit]
    return value or None


def _clean_address(value: str | None) -> str | None:
    return _normal_address(value) if value else None


@functools.lru_cache(maxsize=4096)
def _normal_address(value: str) -> str | None:
    # Cached: a practice's calls come from a handful of addresses, and parsing one costs more than
    # the rest of the event's preparation together.
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return _clean(value, 45)


def _checked_time(
    *,
    break_glass_view: bool,
    break_glass_id: uuid.UUID | None,
    insurer_id: uuid.UUID | None,
    beneficiary_id: uuid.UUID | None,
    occurred_at: datetime | None,
) -> datetime:
    """The checks every event passes whatever it discloses, and its time (now by default)."""
    if break_glass_view and break_glass_id is None:
        raise ValueError("a break-glass view names its grant")
    if beneficiary_id is not None and insurer_id is None:
        raise ValueError("a beneficiary is named with their insurer")
    when = occurred_at or utcnow()
    if when.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware")
    return when


def access_event_row(
    *,
    operation: Operation | str,
    actor: Actor,
    channel: Channel,
    outcome: Outcome,
    insurer_id: uuid.UUID | None = None,
    beneficiary_id: uuid.UUID | None = None,
    device: str | None = None,
    address: str | None = None,
    reference: str | None = None,
    break_glass_id: uuid.UUID | None = None,
    fields: Iterable[DataField] | None = None,
    occurred_at: datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """The row ``record_access`` inserts, checked against the disclosure registry."""
    disclosure = disclosure_of(operation)
    op = Operation(operation)
    disclosed: frozenset[DataField] = frozenset()
    if outcome is Outcome.DISCLOSED:
        disclosed = disclosure.fields if fields is None else frozenset(fields)
        if not disclosed <= disclosure.fields:
            extra = sorted(f.value for f in disclosed - disclosure.fields)
            raise ValueError(f"{op.value} does not disclose {extra}: add them to the registry first")
        if disclosure.per_beneficiary and beneficiary_id is None:
            raise ValueError(f"{op.value} discloses a beneficiary's data: name the beneficiary")
    when = _checked_time(
        break_glass_view=op is Operation.BREAK_GLASS_VIEW,
        break_glass_id=break_glass_id,
        insurer_id=insurer_id,
        beneficiary_id=beneficiary_id,
        occurred_at=occurred_at,
    )
    return {
        "event_id": event_id or new_event_id(when),
        "occurred_at": when,
        "operation": op.value,
        "purpose": disclosure.purpose,
        "actor_kind": actor.kind,
        "actor_id": actor.id,
        "practice_id": actor.practice_id,
        "professional_id": actor.professional_id,
        "profession": _clean(actor.profession, 24),
        "channel": channel,
        "device": _clean(device, _DEVICE_MAX),
        "address": _clean_address(address),
        "insurer_id": insurer_id,
        "beneficiary_id": beneficiary_id,
        "fields": encode_fields(disclosed),
        "outcome": outcome,
        "reference": _clean(reference, _REFERENCE_MAX),
        "break_glass_id": break_glass_id,
    }


def record_access(
    session: Session,
    *,
    operation: Operation | str,
    actor: Actor,
    channel: Channel,
    outcome: Outcome,
    insurer_id: uuid.UUID | None = None,
    beneficiary_id: uuid.UUID | None = None,
    device: str | None = None,
    address: str | None = None,
    reference: str | None = None,
    break_glass_id: uuid.UUID | None = None,
    fields: Iterable[DataField] | None = None,
    occurred_at: datetime | None = None,
) -> uuid.UUID:
    """Record one access in the caller's transaction and return the event's id.

    ``beneficiary_id`` is the internal id of the person concerned (never a NIR); ``None`` for a
    miss. ``fields`` narrows the registered field list when an answer carried less (never more);
    a miss, refusal or error records no field. Raises ``AccessLogUnavailable`` (fail closed) when
    the database refuses the write; raises ``ValueError`` or ``LookupError`` for a call that the
    registry does not allow (a programming error, which must not be answered either).

    The same row as ``access_event_row``, put straight into the driver's form: what a caller repeats
    call after call (its actor, channel, device and address; the operation's purpose and fields) is
    checked, cleaned and converted once per distinct value, and only the event's id, time, whom and
    reference are made per call. This is the rights check's hot path.
    """
    what = _what(operation, outcome, fields if fields is None or isinstance(fields, frozenset) else frozenset(fields))
    if what[4] and beneficiary_id is None:
        raise ValueError(f"{what[0]} discloses a beneficiary's data: name the beneficiary")
    when = _checked_time(
        break_glass_view=what[0] == Operation.BREAK_GLASS_VIEW.value,
        break_glass_id=break_glass_id,
        insurer_id=insurer_id,
        beneficiary_id=beneficiary_id,
        occurred_at=occurred_at,
    )
    event_id = new_event_id(when)
    connection = session.connection()
    dialect = connection.dialect
    sqlite = dialect.name == "sqlite"
    if sqlite:
        params: tuple[Any, ...] = (
            event_id.hex,
            when.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds"),
            what[0],
            what[1],
            *_who(actor, channel, device, address, sqlite=True),
            insurer_id.hex if insurer_id is not None else None,
            beneficiary_id.hex if beneficiary_id is not None else None,
            what[2],
            what[3],
            _clean(reference, _REFERENCE_MAX),
            break_glass_id.hex if break_glass_id is not None else None,
        )
    else:
        params = (
            event_id,
            when.astimezone(UTC),
            what[0],
            what[1],
            *_who(actor, channel, device, address, sqlite=False),
            insurer_id,
            beneficiary_id,
            what[2],
            what[3],
            _clean(reference, _REFERENCE_MAX),
            break_glass_id,
        )
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(_SQL_SQLITE if sqlite else _SQL_POSTGRESQL, params)
        finally:
            cursor.close()
    except (DBAPIError, dialect.loaded_dbapi.Error) as exc:
        # The type only: a driver message can quote the row.
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        log.error("access_log_write_refused", operation=what[0], error_type=type(cause).__name__)
        raise AccessLogUnavailable() from None
    return event_id


@functools.lru_cache(maxsize=1024)
def _what(
    operation: Operation | str, outcome: Outcome, fields: frozenset[DataField] | None
) -> tuple[str, str, str, str, bool]:
    """(operation, purpose, encoded fields, outcome, whether a beneficiary must be named) as stored,
    checked against the registry once per distinct call shape (an error is raised every time)."""
    disclosure = disclosure_of(operation)
    op = Operation(operation)
    disclosed: frozenset[DataField] = frozenset()
    if outcome is Outcome.DISCLOSED:
        disclosed = disclosure.fields if fields is None else fields
        if not disclosed <= disclosure.fields:
            extra = sorted(f.value for f in disclosed - disclosure.fields)
            raise ValueError(f"{op.value} does not disclose {extra}: add them to the registry first")
    per_beneficiary = outcome is Outcome.DISCLOSED and disclosure.per_beneficiary
    return op.value, str(disclosure.purpose), encode_fields(disclosed), str(outcome), per_beneficiary


@functools.lru_cache(maxsize=4096)
def _who(actor: Actor, channel: Channel, device: str | None, address: str | None, *, sqlite: bool) -> tuple[Any, ...]:
    """The columns ``actor_kind`` to ``address`` in the driver's form: a practice software sends
    every call with the same actor, credential and (nearly always) address."""

    def uid(value: uuid.UUID | None) -> Any:
        return value.hex if sqlite and value is not None else value

    return (
        str(actor.kind),
        uid(actor.id),
        uid(actor.practice_id),
        uid(actor.professional_id),
        _clean(actor.profession, 24),
        str(channel),
        _clean(device, _DEVICE_MAX),
        _clean_address(address),
    )


def record_accesses(session: Session, rows: list[dict[str, Any]]) -> None:
    """Record many accesses at once (rows from ``access_event_row``), in the caller's transaction,
    with the same fixed INSERT as ``record_access`` executed for all of them. Fail closed the same
    way: ``AccessLogUnavailable`` when the log refuses the write, and the caller's writes roll back."""
    if not rows:
        return
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    dbapi_error = connection.dialect.loaded_dbapi.Error
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.executemany(
                _SQL_SQLITE if sqlite else _SQL_POSTGRESQL, [_driver_params(row, sqlite=sqlite) for row in rows]
            )
        finally:
            cursor.close()
    except (DBAPIError, dbapi_error) as exc:
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        log.error("access_log_write_refused", operation=rows[0]["operation"], error_type=type(cause).__name__)
        raise AccessLogUnavailable() from None
