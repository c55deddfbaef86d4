"""The insurer's back office: its members' access log, checkpoints and consistency proof.

The same services as the insurer API's access-log routes (``audit.api``), for the staff member's
own insurer. Reading the log is itself recorded (``do_read_insurer_access_log``). Entries name
people by internal id only, never a NIR or a name. Filters (practice, channel, purpose, date range)
go to the service's query (the end of the range is a keyset cursor), so every page is full.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse

from rempart.audit.access_log import decode_cursor, do_read_insurer_access_log, encode_cursor
from rempart.audit.disclosures import Purpose
from rempart.audit.models import ActorKind, Channel
from rempart.audit.proofs import prove_consistency
from rempart.audit.sealing import CheckpointHead
from rempart.audit.service import Actor
from rempart.audit.witness import signed_heads
from rempart.detection.deps import GuardedStaffCaller
from rempart.errors import NotFound, ValidationFailed
from rempart.identity.context import IdentityDep
from rempart.identity.deps import requires
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.web.deps import SessionDep
from rempart.web.i18n import PARIS, _, language_of
from rempart.web.pages import PageRouter, render

router = PageRouter()

READ = [requires(Permission.INSURER_ACCESS_LOG_READ)]
PAGE_SIZE = 100
CHECKPOINTS_PAGE = 50
MAX_CHECKPOINT = 2**63 - 1
_LAST_ID = 2**63 - 1  # the keyset cursor "before the end of this day" takes every event of it

CHANNEL_WORDS = {
    Channel.PRO_API.value: _("Practice software"),
    Channel.PRO_PORTAL.value: _("Professional portal"),
    Channel.FHIR.value: _("FHIR"),
    Channel.BACKOFFICE.value: _("Back office"),
    Channel.INSURER_API.value: _("Insurer API"),
    Channel.BENEFICIARY_PORTAL.value: _("Beneficiary portal"),
    Channel.SECURITY_CONSOLE.value: _("Security console"),
    Channel.CLI.value: _("Command line"),
    Channel.BATCH.value: _("Scheduled job"),
}
PURPOSE_WORDS = {
    Purpose.CARE_ELIGIBILITY.value: _("Rights check"),
    Purpose.CARE_QUOTE.value: _("Quote"),
    Purpose.CARE_PRIOR_APPROVAL.value: _("Prior approval"),
    Purpose.CARE_BILLING.value: _("Billing"),
    Purpose.CLAIM_MANAGEMENT.value: _("Claim review"),
    Purpose.PAYMENT.value: _("Payment"),
    Purpose.MEMBER_ADMINISTRATION.value: _("Member administration"),
    Purpose.PLATFORM_SUPPORT.value: _("Emergency platform access"),
    Purpose.SELF_SERVICE.value: _("The member themself"),
    Purpose.BREACH_RESPONSE.value: _("Incident response"),
    Purpose.TRANSPARENCY.value: _("Access log review"),
}
FILTER_ERRORS = {
    "practice": _("A practice is named by its identifier, as shown in an entry."),
    "channel": _("Choose a channel from the list."),
    "purpose": _("Choose a purpose from the list."),
    "since": _("Enter the first day as a date."),
    "until": _("Enter the last day as a date, not before the first day."),
    "beneficiary": _("A person is named by their internal identifier, as shown in an entry."),
    "cursor": _("This page link is not valid any more: start again from the newest entries."),
}


@dataclass
class Filters:
    practice: str = ""
    channel: str = ""
    purpose: str = ""
    since: str = ""
    until: str = ""
    beneficiary: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    def query(self, **extra: str) -> str:
        kept = {k: v for k, v in {**self.__dict__, **extra}.items() if k != "errors" and v}
        return urlencode(kept)


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=PARIS).astimezone(UTC)


@router.page("/insurer/access-log", dependencies=READ)
def access_log(
    *,
    request: Request,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    practice: str = "",
    channel: str = "",
    purpose: str = "",
    since: str = "",
    until: str = "",
    beneficiary: str = "",
    cursor: str = "",
) -> HTMLResponse:
    """Accesses to the insurer's members, newest first, filtered; the reading is recorded (and, on
    one person, shown to that person: their insurer looked at their accesses)."""
    filters = Filters(practice.strip(), channel, purpose, since.strip(), until.strip(), beneficiary.strip())
    beneficiary_id: uuid.UUID | None = None
    if filters.beneficiary:
        try:
            beneficiary_id = uuid.UUID(filters.beneficiary)
        except ValueError:
            filters.errors["beneficiary"] = FILTER_ERRORS["beneficiary"]
    practice_id: uuid.UUID | None = None
    if filters.practice:
        try:
            practice_id = uuid.UUID(filters.practice)
        except ValueError:
            filters.errors["practice"] = FILTER_ERRORS["practice"]
    if filters.channel and filters.channel not in CHANNEL_WORDS:
        filters.errors["channel"] = FILTER_ERRORS["channel"]
    if filters.purpose and filters.purpose not in PURPOSE_WORDS:
        filters.errors["purpose"] = FILTER_ERRORS["purpose"]
    first = _day(filters.since) if filters.since else None
    last = _day(filters.until) if filters.until else None
    if filters.since and first is None:
        filters.errors["since"] = FILTER_ERRORS["since"]
    if filters.until and (last is None or (first is not None and last < first)):
        filters.errors["until"] = FILTER_ERRORS["until"]
    # The end of the range is where paging starts: strictly before the next day's first moment.
    start = cursor or (encode_cursor((_start_of(last + timedelta(days=1)), _LAST_ID)) if last else "")
    if cursor:
        try:
            decode_cursor(cursor)
        except ValidationFailed:
            filters.errors["cursor"] = FILTER_ERRORS["cursor"]
    if filters.errors:
        return _log_page(request, viewer, filters, entries=[], next_cursor=None, status=422)
    language = language_of(request)
    page = do_read_insurer_access_log(
        session,
        insurer_id=staff.insurer_id,
        reader=Actor(ActorKind.INSURER_STAFF, id=staff.account_id),
        channel=Channel.BACKOFFICE,
        address=staff.address,
        device=staff.credential_ref,
        since=_start_of(first) if first else None,
        practice_id=practice_id,
        beneficiary_id=beneficiary_id,
        of_channel=Channel(filters.channel) if filters.channel else None,
        of_purpose=Purpose(filters.purpose) if filters.purpose else None,
        lang="fr" if language == "fr" else "en",
        cursor=start or None,
        limit=PAGE_SIZE,
        now=identity.clock(),
    )
    return _log_page(request, viewer, filters, entries=list(page.entries), next_cursor=page.next_cursor)


def _log_page(
    request: Request, viewer: Any, filters: Filters, *, entries: list[Any], next_cursor: str | None, status: int = 200
) -> HTMLResponse:
    return render(
        request,
        "backoffice/access_log_list.html",
        viewer=viewer,
        filters=filters,
        entries=entries,
        older=f"/insurer/access-log?{filters.query(cursor=next_cursor)}" if next_cursor else None,
        channel_words=CHANNEL_WORDS,
        purpose_words=PURPOSE_WORDS,
        status=status,
    )


# -- checkpoints and the consistency proof ---------------------------------------------------------


@dataclass(frozen=True)
class CheckpointRow:
    number: int
    sealed_at: str
    count: int
    log_root: str
    head: str


@router.page("/insurer/access-log/checkpoints", dependencies=READ)
def checkpoints(
    *,
    request: Request,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    since: int = 1,
    old: str = "",
    new: str = "",
) -> HTMLResponse:
    """The signed checkpoints (a witness keeps their heads), and the proof that a later one extends
    an earlier one (RFC 9162 consistency)."""
    if not 1 <= since <= MAX_CHECKPOINT:
        raise NotFound("no such checkpoint")
    rows = []
    for number, head, _signature in signed_heads(session, since=since, limit=CHECKPOINTS_PAGE + 1):
        decoded = CheckpointHead.decode(head)
        rows.append(CheckpointRow(number, decoded.sealed_at, decoded.count, decoded.log_root, head))
    more = len(rows) > CHECKPOINTS_PAGE
    rows = rows[:CHECKPOINTS_PAGE]
    proof: dict[str, Any] | None = None
    proof_error = ""
    if old or new:
        first = int(old) if old.isdigit() and len(old) < 19 else 0
        last = int(new) if new.isdigit() and len(new) < 19 else None
        if first < 1 or (new and last is None):
            proof_error = _("Give two checkpoint numbers, the earlier one first.")
        else:
            try:
                proof = prove_consistency(session.connection(), old=first, new=last)
            except (ValidationFailed, NotFound):
                proof_error = _("No proof between these checkpoints: give two existing numbers, the earlier one first.")
    return render(
        request,
        "backoffice/access_log_checkpoints.html",
        viewer=viewer,
        rows=rows,
        next_since=rows[-1].number + 1 if more and rows else None,
        old=old,
        new=new,
        proof=proof,
        proof_error=proof_error,
        status=422 if proof_error else 200,
    )
