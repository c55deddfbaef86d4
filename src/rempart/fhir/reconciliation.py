"""Remittance advices as FHIR ``PaymentReconciliation`` resources: ``GET /fhir/PaymentReconciliation``
searches the calling practice's remittances, the same ones ``/api/v1/remittances`` lists, with the
claims each pays as ``detail`` (what ``/api/v1/remittances/{id}`` shows, and logs, for each one).

Search is strict (FHIR R4 §3.1.1.5.4 "handling=strict", whatever ``Prefer`` asks): a parameter the
server does not know, a repeated ``_count``, a date or a count it cannot read is a 400
OperationOutcome naming the parameter, never a search that silently ignores a filter and answers more
than was asked. Known: ``created`` (the remittance's payment date, prefixes ``eq`` ``ge`` ``gt`` ``le``
``lt``, as often as wanted: each narrows), ``_count`` (at most 100), ``_format`` (json) and
``_cursor`` (the server's own paging token, found in the ``next`` link).

No patient appears: a detail names the claim it pays by Rempart's claim identifier, its amount and
the day it was paid, as the native remittance does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from fhir.resources.R4B.bundle import Bundle

from rempart.detection.deps import GuardedPracticeCaller
from rempart.errors import RempartError
from rempart.fhir.identifiers import AMC_NUMBER, CLAIM, PAYMENT_RUN
from rempart.fhir.parse import FHIR_ROUTER_DEPENDENCIES
from rempart.identity.context import IdentityDep
from rempart.identity.deps import requires
from rempart.identity.permissions import Permission
from rempart.pagination import Cursor, CursorInvalid
from rempart.payments.models import Remittance
from rempart.payments.service import count_practice_remittances, practice_remittances_page, view_remittance
from rempart.web.deps import SessionDep
from rempart.web.fhir_wire import fhir_response

router = APIRouter(prefix="/fhir", tags=["FHIR"], dependencies=FHIR_ROUTER_DEPENDENCIES)

DEFAULT_COUNT = 20
MAX_COUNT = 100
PAYMENT_TYPE = "http://terminology.hl7.org/CodeSystem/payment-type"
# The search parameters the CapabilityStatement declares (a test holds the two equal), and the
# parameters every search takes besides: the format, and the paging token of the ``next`` link.
SEARCH_PARAMETERS = frozenset({"created", "_count"})
_PARAMETERS = SEARCH_PARAMETERS | {"_cursor", "_format"}
_PREFIXES = ("eq", "ge", "gt", "le", "lt")
_PARTIAL_DATE = re.compile(r"^([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?$")


class FhirSearchInvalid(RempartError):
    status = 400
    slug = "fhir-search-invalid"
    title = "The search is not valid"


def _refused(parameter: str, reason: str) -> FhirSearchInvalid:
    return FhirSearchInvalid(
        f"the search parameter {parameter} is not valid: {reason}",
        extra={"errors": [{"field": parameter, "reason": reason}]},
    )


@dataclass(frozen=True)
class Window:
    """Payment moments the search keeps: ``start <= paid_at < end`` (either end open)."""

    start: datetime | None = None
    end: datetime | None = None

    def keeps(self, moment: datetime) -> bool:
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite hands back naive UTC
        return (self.start is None or moment >= self.start) and (self.end is None or moment < self.end)

    def narrowed(self, start: datetime | None, end: datetime | None) -> Window:
        starts = [s for s in (self.start, start) if s is not None]
        ends = [e for e in (self.end, end) if e is not None]
        return Window(max(starts) if starts else None, min(ends) if ends else None)


def _interval(value: str) -> tuple[datetime, datetime]:
    """A FHIR date or dateTime as the interval it stands for (``2026-11`` is all of November).
    A date without a time is a UTC day, as remittances are dated."""
    partial = _PARTIAL_DATE.match(value)
    if partial:
        year, month, day = partial.groups()
        try:
            first = date(int(year), int(month or 1), int(day or 1))
        except ValueError:
            raise _refused("created", "not a calendar date") from None
        if day:
            after = first + timedelta(days=1)
        elif month:
            after = date(first.year + first.month // 12, first.month % 12 + 1, 1) if first.year < 9999 else date.max
        else:
            after = date(first.year + 1, 1, 1) if first.year < 9999 else date.max
        return datetime.combine(first, time(), UTC), datetime.combine(after, time(), UTC)
    if "T" not in value:
        raise _refused("created", "a date is YYYY, YYYY-MM, YYYY-MM-DD or a dateTime with its time zone")
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise _refused("created", "a dateTime carries its time zone")
        moment = moment.astimezone(UTC)
        return moment, moment + timedelta(seconds=1)
    except (ValueError, OverflowError):
        raise _refused("created", "not a dateTime") from None


def _window(values: list[str]) -> Window:
    window = Window()
    for raw in values:
        prefix, value = (raw[:2], raw[2:]) if raw[:2] in _PREFIXES else ("eq", raw)
        start, end = _interval(value.strip())
        window = window.narrowed(
            *{
                "eq": (start, end),
                "ge": (start, None),
                "gt": (end, None),
                "le": (None, end),
                "lt": (None, start),
            }[prefix]
        )
    return window


@dataclass(frozen=True)
class Search:
    window: Window
    count: int
    cursor: str | None


def read_search(request: Request) -> Search:
    """The query string as a search, strictly: anything the server would otherwise ignore is refused."""
    params = request.query_params
    unknown = sorted({name for name in params if name not in _PARAMETERS})
    if unknown:
        raise FhirSearchInvalid(
            "this server does not support the search parameter(s) " + ", ".join(unknown),
            extra={"errors": [{"field": name, "reason": "not supported"} for name in unknown]},
        )
    counts, cursors = params.getlist("_count"), params.getlist("_cursor")
    if len(counts) > 1:
        raise _refused("_count", "given more than once")
    if len(cursors) > 1:
        raise _refused("_cursor", "given more than once")
    count = DEFAULT_COUNT
    if counts:
        asked = counts[0].lstrip("0")
        if not counts[0].isascii() or not counts[0].isdigit() or not asked:
            raise _refused("_count", "a whole number from 1")
        # More than the maximum gets the maximum: a server may return fewer than asked (FHIR R4 §3.1.1.5.7).
        count = MAX_COUNT if len(asked) > 3 else min(int(asked), MAX_COUNT)
    return Search(window=_window(params.getlist("created")), count=count, cursor=cursors[0] if cursors else None)


SearchDep = Annotated[Search, Depends(read_search)]


@router.get(
    "/PaymentReconciliation",
    summary="Search the practice's remittances",
    dependencies=[requires(Permission.CARE_REMITTANCE_READ)],
)
def search_reconciliations(
    request: Request, search: SearchDep, caller: GuardedPracticeCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    """A searchset Bundle, newest first: one PaymentReconciliation per remittance paid in the window,
    a page at a time (the native list's cursor, filtered by the window in the database)."""
    try:
        cursor = Cursor.decode(search.cursor)
    except CursorInvalid:
        raise _refused("_cursor", "not a page of this search") from None
    window = {"paid_from": search.window.start, "paid_before": search.window.end}
    listed = practice_remittances_page(session, caller=caller, limit=search.count, cursor=cursor, **window)
    total = count_practice_remittances(session, caller=caller, **window)

    base = str(request.base_url).rstrip("/") + "/fhir"
    entries = []
    for listed_remittance, _amc in listed.items:
        # The native detail's service: the claims it pays, each patient's access logged, committed.
        remittance, amc_number = view_remittance(
            session=session, caller=caller, remittance_id=listed_remittance.id, now=identity.clock()
        )
        entries.append(
            {
                "fullUrl": f"urn:uuid:{remittance.id}",
                "resource": reconciliation(remittance, amc_number=amc_number),
                "search": {"mode": "match"},
            }
        )
    asked = request.query_params.multi_items()
    kept = [(k, v) for k, v in asked if k != "_cursor"]
    links = [{"relation": "self", "url": _url(base, asked)}]
    if listed.next is not None:
        links.append({"relation": "next", "url": _url(base, [*kept, ("_cursor", listed.next.encode())])})
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "timestamp": identity.clock().isoformat(),
            "total": total,
            "link": links,
            "entry": entries,
        }
    )
    return fhir_response(bundle)


def _url(base: str, params: list[tuple[str, str]]) -> str:
    query = urlencode(params)
    return f"{base}/PaymentReconciliation" + (f"?{query}" if query else "")


def money(cents: int) -> dict[str, Any]:
    return {"value": Decimal(cents).scaleb(-2), "currency": "EUR"}


def reconciliation(remittance: Remittance, *, amc_number: str) -> dict[str, Any]:
    """The remittance as a PaymentReconciliation (a dict: its Bundle validates it as one)."""
    paid_at = remittance.paid_at if remittance.paid_at.tzinfo else remittance.paid_at.replace(tzinfo=UTC)
    paid_on = paid_at.astimezone(UTC).date().isoformat()
    return {
        "resourceType": "PaymentReconciliation",
        "id": str(remittance.id),
        "identifier": [{"system": PAYMENT_RUN, "value": remittance.remittance_number}],
        "status": "active",
        "created": paid_at.astimezone(UTC).isoformat(),
        "paymentIssuer": {"type": "Organization", "identifier": {"system": AMC_NUMBER, "value": amc_number}},
        "outcome": "complete",
        "disposition": f"{remittance.claim_count} claim(s) paid",
        "paymentDate": paid_on,
        "paymentAmount": money(remittance.total_cents),
        "detail": [
            {
                "type": {"coding": [{"system": PAYMENT_TYPE, "code": "payment"}]},
                "request": {"type": "Claim", "identifier": {"system": CLAIM, "value": str(line.claim_id)}},
                "response": {"type": "ClaimResponse", "identifier": {"system": CLAIM, "value": str(line.claim_id)}},
                "date": paid_on,
                "amount": money(line.amount_cents),
            }
            for line in remittance.lines
        ],
    }
