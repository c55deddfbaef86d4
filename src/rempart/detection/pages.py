"""The practice admin's security page: the practice's security events, and where it stands now on
detection's ladder (slowed, passkey check, suspended, switched off), in words.

Operators see signals and figures in their alerts; a practice reads ``explain``'s sentences instead
(what kind of use was unusual, what to do), never a signal's name, a threshold or a window.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from rempart.detection.explain import for_practice
from rempart.detection.models import ContainmentLevel, KillChannel, KillSwitchScope, SubjectKind
from rempart.detection.service import practice_containment
from rempart.identity.clients import clients_of, practice_roster
from rempart.identity.context import IdentityDep
from rempart.identity.deps import AnyCaller, requires
from rempart.identity.errors import PermissionDenied
from rempart.identity.events import events_for_operators
from rempart.identity.models import SecurityEventKind
from rempart.identity.permissions import Permission, Role
from rempart.identity.portal import ViewerDep
from rempart.identity.principal import Principal
from rempart.identity.schemas import SecurityEventOut
from rempart.web.deps import SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, render

router = PageRouter()

# The signal families ``explain`` has a sentence for ("" is its fallback). A reason written in a
# security event is shown only when it is one of these sentences: an operator's own words are theirs.
SIGNAL_FAMILIES: tuple[str, ...] = (
    *("distinct", "new", "insurers", "off", "misses", "locked", "unclaimed", "fresh", "spread", "repeated"),
    *("refused", ""),
)
PRACTICE_SENTENCES = frozenset(for_practice(f"{family}_") for family in SIGNAL_FAMILIES)

LEVEL_WORDS = {
    ContainmentLevel.SLOW.value: (
        _("Slowed down"),
        _("Rights checks made with this access are answered more slowly. Nothing to do: it ends by itself."),
    ),
    ContainmentLevel.STEP_UP.value: (
        _("Passkey check required"),
        _(
            "In the portal, a person acting with this access must confirm with their passkey before checking "
            "rights again. The billing software's rights checks are refused meanwhile."
        ),
    ),
    ContainmentLevel.SUSPENDED.value: (
        _("Suspended"),
        _(
            "This access is suspended until Rempart's security team lifts it: its sessions were ended and its "
            "tokens no longer work. Contact the security team."
        ),
    ),
}

SWITCH_WORDS = {
    (KillSwitchScope.CHANNEL.value, KillChannel.PROFESSIONAL_PORTAL.value): _(
        "The professional portal is switched off."
    ),
    (KillSwitchScope.CHANNEL.value, KillChannel.PRACTICE_API.value): _(
        "Billing software access (the API) is switched off."
    ),
    (KillSwitchScope.CHANNEL.value, KillChannel.FHIR.value): _("Billing software access through FHIR is switched off."),
    (KillSwitchScope.PROFESSION.value, ""): _("Rights checks are switched off for your profession."),
    (KillSwitchScope.PRACTICE.value, ""): _("Rights checks are switched off for your practice."),
}

EVENT_WORDS = {
    SecurityEventKind.ACCOUNT_INVITED.value: _("Colleague invited"),
    SecurityEventKind.ENROLMENT_COMPLETED.value: _("Passkey created from an invitation"),
    SecurityEventKind.LOGIN.value: _("Signed in"),
    SecurityEventKind.LOGIN_FAILED.value: _("Sign-in failed"),
    SecurityEventKind.NEW_DEVICE.value: _("Signed in from a new device"),
    SecurityEventKind.STEP_UP.value: _("Confirmed with the passkey"),
    SecurityEventKind.PASSKEY_ADDED.value: _("Passkey added"),
    SecurityEventKind.PASSKEY_REMOVED.value: _("Passkey removed"),
    SecurityEventKind.PASSKEY_RENAMED.value: _("Passkey renamed"),
    SecurityEventKind.PASSKEY_CLONE_SUSPECTED.value: _("Passkey disabled: it may have been copied"),
    SecurityEventKind.RECOVERY_CODES_CREATED.value: _("Recovery codes made"),
    SecurityEventKind.RECOVERY_CODE_USED.value: _("Recovery code used"),
    SecurityEventKind.SESSION_REVOKED.value: _("Session ended"),
    SecurityEventKind.ALL_SESSIONS_REVOKED.value: _("All sessions ended"),
    SecurityEventKind.LOGOUT.value: _("Signed out"),
    SecurityEventKind.ROLE_CHANGED.value: _("Roles changed"),
    SecurityEventKind.ACCOUNT_SUSPENDED.value: _("Account suspended"),
    SecurityEventKind.TOKEN_REFUSED.value: _("Billing software refused a token"),
    SecurityEventKind.CLIENT_CREATED.value: _("Billing software registered"),
    SecurityEventKind.CLIENT_KEY_ADDED.value: _("Public key added"),
    SecurityEventKind.CLIENT_KEY_REVOKED.value: _("Public key revoked"),
    SecurityEventKind.CLIENT_REVOKED.value: _("Billing software revoked"),
    SecurityEventKind.CHECKS_SLOWED.value: _("Rights checks slowed down"),
    SecurityEventKind.STEP_UP_REQUIRED.value: _("Passkey check required"),
    SecurityEventKind.CLIENT_SUSPENDED.value: _("Billing software suspended"),
    SecurityEventKind.CONTAINMENT_LIFTED.value: _("Back to normal (lifted by the security team)"),
    # An insurer's events: never a practice's, named here so that every kind has its words.
    SecurityEventKind.PRODUCT_CHANGED.value: _("Product formulas changed"),
    SecurityEventKind.PRODUCT_RETIRED.value: _("Product retired"),
}


@dataclass(frozen=True)
class Subject:
    """Who a containment or an event is about, as the page names them."""

    kind: str  # practice, account, professional, client, other
    name: str | None = None


@dataclass(frozen=True)
class ContainmentView:
    subject: Subject
    level: str
    since: datetime | None  # None: suspended by status, with no record of when
    until: datetime | None
    why: str | None  # one of explain's sentences (message id)


@dataclass(frozen=True)
class EventView:
    at: datetime
    what: str  # message id
    kind: str
    subject: Subject
    address: str | None
    kid: str | None
    why: str | None


def _practice_of(caller: Principal) -> uuid.UUID:
    if caller.practice_id is None or Role.PRACTICE_ADMIN not in caller.roles:
        raise PermissionDenied("only a practice admin may do this")
    return caller.practice_id


@router.page("/practice/security", dependencies=[requires(Permission.PRACTICE_CLIENT_MANAGE)])
def practice_security(
    request: Request, viewer: ViewerDep, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> HTMLResponse:
    practice_id = _practice_of(caller)
    now = identity.clock()
    professionals, colleagues = practice_roster(session, practice_id)
    software = clients_of(session, practice_id)
    clients = {c.id: c.name for c in software}
    logins = {c.account_id: c.login for c in colleagues}
    rpps = {p.professional_id: p.rpps for p in professionals}
    professions = {p.profession.value for p in professionals} | (
        {str(caller.profession)} if caller.profession else set()
    )
    state = practice_containment(session, practice_id=practice_id, professions=professions, now=now)

    def subject(kind: SubjectKind | str, ident: uuid.UUID | None) -> Subject:
        if kind == SubjectKind.PRACTICE and ident == practice_id:
            return Subject("practice")
        if kind == SubjectKind.ACCOUNT and ident is not None:
            return Subject("account", logins.get(ident))
        if kind == SubjectKind.PROFESSIONAL and ident is not None:
            return Subject("professional", rpps.get(ident))
        if kind == SubjectKind.CLIENT and ident is not None:
            return Subject("client", clients.get(ident))
        return Subject("other")

    containments = [
        ContainmentView(
            subject=subject(row.subject_kind, row.subject_id),
            level=row.level.value,
            since=row.since,
            until=row.until,
            why=for_practice(row.signal or ""),
        )
        for row in state.containments
    ]
    # Suspended by an operator, or by detection before its record: the account's, professional's or
    # client's own status says so.
    contained = {(row.subject_kind.value, row.subject_id) for row in state.containments}
    suspended = [
        *((SubjectKind.ACCOUNT, c.account_id) for c in colleagues if c.status.value == "suspended"),
        *((SubjectKind.PROFESSIONAL, p.professional_id) for p in professionals if p.status.value == "suspended"),
        *((SubjectKind.CLIENT, c.id) for c in software if c.status.value == "suspended"),
    ]
    containments += [
        ContainmentView(subject=subject(kind, ident), level="suspended", since=None, until=None, why=None)
        for kind, ident in suspended
        if (kind.value, ident) not in contained
    ]
    switches = [
        {"words": SWITCH_WORDS.get((s.scope.value, s.target), SWITCH_WORDS.get((s.scope.value, ""))), "since": s.set_at}
        for s in state.kill_switches
    ]
    events = [
        _event_view(SecurityEventOut.of(e), subject) for e in events_for_operators(session, practice_id=practice_id)
    ]
    return render(
        request,
        "detection/practice_security.html",
        viewer=viewer,
        containments=containments,
        switches=switches,
        events=events,
        levels=LEVEL_WORDS,
        now=now,
    )


def _event_view(event: SecurityEventOut, subject: Any) -> EventView:
    if event.client_id is not None:
        who = subject(SubjectKind.CLIENT, event.client_id)
    elif event.account_id is not None:
        who = subject(SubjectKind.ACCOUNT, event.account_id)
    else:
        who = Subject("practice")
    reason = event.detail.get("reason")
    return EventView(
        at=event.at,
        what=EVENT_WORDS.get(event.kind, _("Security event")),
        kind=event.kind,
        subject=who,
        address=event.address,
        kid=event.detail.get("kid"),
        why=reason if reason in PRACTICE_SENTENCES else None,
    )
