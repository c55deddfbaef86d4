"""The security console: break-glass requests and approvals (``/console/break-glass``).

One operator asks to see one beneficiary's identity (reason, ticket, at most four hours); a second
operator approves or refuses; either may end it early. The same rules as the API: asking and
approving need a fresh passkey check, and nobody decides their own request (the service refuses it,
and so does the database). The identity is shown on one page only: the answer to the asking
operator's POST "Open the record" while their approved grant lasts, which the service records as a
``break_glass_view`` access event (the person and their insurer see it) before the page is made. It
is never a GET, so no identity sits in an address, a history or a cache.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from rempart.audit.breakglass import (
    MAX_MINUTES,
    BreakGlassRefused,
    do_decide_break_glass,
    do_open_break_glass,
    do_request_break_glass,
    do_revoke_break_glass,
)
from rempart.audit.console import GrantView, grant_views, insurer_choices
from rempart.errors import NotFound
from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, RECENT_PASSKEY, AnyCaller, client_address, requires
from rempart.identity.errors import NotSignedIn
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.identity.principal import Principal
from rempart.web.deps import SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PROBLEM_WORDS, PageRouter, Viewer, render, see_other

router = PageRouter()

ASK = requires(Permission.SECURITY_BREAK_GLASS_REQUEST)
APPROVE = requires(Permission.SECURITY_BREAK_GLASS_APPROVE)

STATUS_WORDS = {
    "requested": _("Waiting for a second operator"),
    "in_force": _("Approved, in force"),
    "expired": _("Approved, expired"),
    "refused": _("Refused"),
    "revoked": _("Ended early"),
}
DONE = {
    "requested": _("Your request is recorded. A second operator must approve it before you may open the record."),
    "approved": _("The request is approved; its time limit runs from now."),
    "refused": _("The request is refused."),
    "revoked": _("The access was ended."),
}

# Why an "Open the record" was refused, by the grant's state as the list shows it.
REFUSALS = {
    "not_mine": _("Only the operator who asked for this access may open the record."),
    "requested": _("This request is still waiting for a second operator's approval."),
    "refused": _("This request was refused by a second operator."),
    "revoked": _("This access was ended early."),
    "expired": _("This access has expired. Ask again if the case still needs it."),
    "unusable": _("This access is not approved, has expired or was ended."),
    "missing": _("There is no such break-glass access."),
}
# The same words as the back office's member page (members.pages), which a console page may not import.
MARITAL_WORDS = {
    "single": _("Single"),
    "married": _("Married"),
    "civil_union": _("Civil union"),
    "divorced": _("Divorced"),
    "widowed": _("Widowed"),
}
# The identity page is never kept: SecurityHeaders already sends no-store on every response, and this
# page says so itself, so that no later change to the shell's default could let a browser keep it.
NOT_KEPT = {"cache-control": "no-store", "pragma": "no-cache"}


def _operator(caller: Principal) -> uuid.UUID:
    if caller.account_id is None:
        raise NotSignedIn("sign in with a passkey")
    return caller.account_id


def _page(
    request: Request,
    viewer: Viewer,
    caller: Principal,
    session: SessionDep,
    identity: IdentityDep,
    *,
    done: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "console/break_glass.html",
        viewer=viewer,
        status=status,
        grants=grant_views(session, operator_id=_operator(caller), now=identity.clock()),
        insurers=insurer_choices(session),
        statuses=STATUS_WORDS,
        done=DONE.get(done or ""),
        errors=errors or {},
        values=values or {"minutes": "30"},
        max_minutes=MAX_MINUTES,
        can_ask=caller.can(Permission.SECURITY_BREAK_GLASS_REQUEST),
    )


@router.page("/console/break-glass", dependencies=[APPROVE])
def break_glass_page(
    *,
    request: Request,
    viewer: ViewerDep,
    caller: AnyCaller,
    session: SessionDep,
    identity: IdentityDep,
    done: str | None = None,
    beneficiary: uuid.UUID | None = None,
    insurer: uuid.UUID | None = None,
) -> HTMLResponse:
    """The grants; from an alert about one beneficiary, the request form comes filled with its ids."""
    values = {"minutes": "30", "beneficiary_id": str(beneficiary or ""), "insurer_id": str(insurer or "")}
    return _page(request, viewer, caller, session, identity, done=done, values=values)


@router.post("/console/break-glass", dependencies=[FORM_CSRF, ASK, RECENT_PASSKEY], response_class=HTMLResponse)
def ask(
    *,
    request: Request,
    viewer: ViewerDep,
    caller: AnyCaller,
    session: SessionDep,
    identity: IdentityDep,
    insurer_id: Annotated[str, Form(max_length=100)] = "",
    beneficiary_id: Annotated[str, Form(max_length=100)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    ticket: Annotated[str, Form(max_length=200)] = "",
    minutes: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    values = {
        "insurer_id": insurer_id,
        "beneficiary_id": beneficiary_id.strip()[:36],
        "reason": reason[:500],
        "ticket": ticket.strip()[:64],
        "minutes": minutes.strip()[:3],
    }
    errors: dict[str, str] = {}
    insurer = _uuid(insurer_id)
    beneficiary = _uuid(beneficiary_id)
    if insurer is None:
        errors["insurer_id"] = _("Choose the beneficiary's insurer.")
    if beneficiary is None:
        errors["beneficiary_id"] = _("Give the beneficiary's id, as an alert or an incident shows it.")
    if not 10 <= len(reason.strip()) <= 500:
        errors["reason"] = _("Give a reason of 10 to 500 characters: the insurer and the person will read it.")
    if not 1 <= len(ticket.strip()) <= 64:
        errors["ticket"] = _("Name the incident or support ticket (1 to 64 characters).")
    duration = int(minutes) if minutes.strip().isdigit() else 0
    if not 1 <= duration <= MAX_MINUTES:
        errors["minutes"] = _("A break-glass access lasts 1 to 240 minutes.")
    if not errors and insurer is not None and beneficiary is not None:
        try:
            do_request_break_glass(
                session,
                operator_id=_operator(caller),
                insurer_id=insurer,
                beneficiary_id=beneficiary,
                reason=reason,
                ticket=ticket,
                minutes=duration,
                now=identity.clock(),
            )
        except NotFound:
            errors["beneficiary_id"] = _("This insurer has no beneficiary with this id.")
    if errors:
        return _page(request, viewer, caller, session, identity, errors=errors, values=values, status=422)
    return see_other("/console/break-glass?done=requested")


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        return None


@router.post("/console/break-glass/{grant_id}/approve", dependencies=[FORM_CSRF, APPROVE, RECENT_PASSKEY])
def approve(
    grant_id: uuid.UUID, viewer: ViewerDep, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    do_decide_break_glass(session, grant_id=grant_id, operator_id=_operator(caller), approve=True, now=identity.clock())
    return see_other("/console/break-glass?done=approved")


@router.post("/console/break-glass/{grant_id}/refuse", dependencies=[FORM_CSRF, APPROVE])
def refuse(
    grant_id: uuid.UUID, viewer: ViewerDep, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    do_decide_break_glass(
        session, grant_id=grant_id, operator_id=_operator(caller), approve=False, now=identity.clock()
    )
    return see_other("/console/break-glass?done=refused")


@router.post("/console/break-glass/{grant_id}/revoke", dependencies=[FORM_CSRF, ASK])
def revoke(
    grant_id: uuid.UUID, viewer: ViewerDep, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    do_revoke_break_glass(session, grant_id=grant_id, operator_id=_operator(caller), now=identity.clock())
    return see_other("/console/break-glass?done=revoked")


def _view_of(session: Session, grant_id: uuid.UUID, operator_id: uuid.UUID, now: datetime) -> GrantView | None:
    # The grant as the list shows it (logins, insurer's name, state at this moment). The list holds the
    # newest grants; one older than those has long expired and is told without its details.
    return next((g for g in grant_views(session, operator_id=operator_id, now=now) if g.id == grant_id), None)


def _refusal(grant: GrantView | None) -> str:
    if grant is None:
        return "unusable"
    if not grant.mine:
        return "not_mine"
    return grant.status if grant.status in REFUSALS else "unusable"


@router.page("/console/break-glass/{grant_id}/open", dependencies=[ASK])
def open_by_address(grant_id: uuid.UUID) -> Response:
    """Opening is a POST: this address shows nothing and records nothing. It exists for the way back
    from a fresh passkey check (``/step-up?next=...``), which lands on the grant's row and its button."""
    return see_other(f"/console/break-glass#grant-{grant_id}")


@router.post(
    "/console/break-glass/{grant_id}/open",
    dependencies=[FORM_CSRF, ASK, RECENT_PASSKEY],
    response_class=HTMLResponse,
)
def open_record(
    *,
    grant_id: uuid.UUID,
    request: Request,
    viewer: ViewerDep,
    caller: AnyCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> Response:
    """The beneficiary's identity, for the operator who asked, while the approved grant lasts; the
    service records the opening before this page is made. A grant that cannot be used gets a page
    saying why (403), an unknown one a 404, with no identity."""
    operator_id = _operator(caller)
    try:
        found = do_open_break_glass(
            session,
            keys=request.app.state.runtime.keys,
            grant_id=grant_id,
            operator_id=operator_id,
            now=identity.clock(),
            address=client_address(request),
            device=caller.credential_ref,
        )
    except BreakGlassRefused:
        why = _refusal(_view_of(session, grant_id, operator_id, identity.clock()))
        return _refused(request, viewer, why, 403)
    except NotFound:
        return _refused(request, viewer, "missing", 404)
    return render(
        request,
        "console/break_glass_view.html",
        viewer=viewer,
        headers=NOT_KEPT,
        found=found,
        grant=_view_of(session, grant_id, operator_id, identity.clock()),
        marital_words=MARITAL_WORDS,
        refusal=None,
    )


def _refused(request: Request, viewer: Viewer, why: str, status: int) -> HTMLResponse:
    return render(
        request,
        "console/break_glass_view.html",
        viewer=viewer,
        status=status,
        headers=NOT_KEPT,
        found=None,
        grant=None,
        marital_words=MARITAL_WORDS,
        refusal=REFUSALS[why],
        words=PROBLEM_WORDS["break-glass-refused"],
        status_code=status,
    )
