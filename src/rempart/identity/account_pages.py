"""The portal's account pages (HTML): the account, its security events, sessions, passkeys and
recovery codes, on the page shell of ``rempart.web.pages``.

Thin routes: each reads through the identity services, or calls one ``do_*`` function that writes
its security event and commits. Forms are POST with the page's ``csrf_token`` (``FORM_CSRF`` first)
and end with a redirect (POST-redirect-GET), except the new recovery codes, shown once. Changes to
passkeys and recovery codes need a recent passkey check: without one the person is sent to the
step-up page, which brings them back.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from rempart.errors import Conflict, NotFound, ValidationFailed
from rempart.identity.accounts import (
    do_end_all_sessions,
    do_end_other_sessions,
    do_replace_recovery_codes,
    roles_of,
    signed_in_account,
)
from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, AnyCaller, client_address, requires
from rempart.identity.events import events_of_account
from rempart.identity.models import AccountSession, SecurityEvent, SecurityEventKind
from rempart.identity.passkeys import PASSKEY_NAME_MAX, do_remove_passkey, do_rename_passkey, passkeys_of
from rempart.identity.permissions import Permission
from rempart.identity.portal import ROLE_WORDS, ViewerDep
from rempart.identity.principal import Principal
from rempart.identity.sessions import (
    StepUpRequired,
    clear_session_cookie,
    do_end_session,
    require_recent_passkey,
    session_of_request,
    sessions_of,
)
from rempart.web.deps import SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, render, see_other

router = PageRouter()
SELF = requires(Permission.ACCOUNT_SELF_MANAGE)
FORM = [FORM_CSRF, SELF]

# What each security event is called on the account's page; an unknown kind shows as itself.
EVENT_WORDS: dict[str, str] = {
    SecurityEventKind.ACCOUNT_INVITED: _("Account invited"),
    SecurityEventKind.ENROLMENT_COMPLETED: _("First passkey created (enrolment)"),
    SecurityEventKind.LOGIN: _("Signed in"),
    SecurityEventKind.LOGIN_FAILED: _("Failed sign-in"),
    SecurityEventKind.NEW_DEVICE: _("Sign-in from a new device"),
    SecurityEventKind.STEP_UP: _("Passkey confirmed (step-up)"),
    SecurityEventKind.PASSKEY_ADDED: _("Passkey added"),
    SecurityEventKind.PASSKEY_REMOVED: _("Passkey removed"),
    SecurityEventKind.PASSKEY_RENAMED: _("Passkey renamed"),
    SecurityEventKind.PASSKEY_CLONE_SUSPECTED: _("Passkey disabled: it may have been copied"),
    SecurityEventKind.RECOVERY_CODES_CREATED: _("New recovery codes"),
    SecurityEventKind.RECOVERY_CODE_USED: _("Recovery code used"),
    SecurityEventKind.SESSION_REVOKED: _("Session ended"),
    SecurityEventKind.ALL_SESSIONS_REVOKED: _("Sessions ended everywhere"),
    SecurityEventKind.LOGOUT: _("Signed out"),
    SecurityEventKind.ROLE_CHANGED: _("Roles changed"),
    SecurityEventKind.ACCOUNT_SUSPENDED: _("Account suspended"),
    SecurityEventKind.CHECKS_SLOWED: _("Rights checks slowed down"),
    SecurityEventKind.STEP_UP_REQUIRED: _("Passkey confirmation asked"),
    SecurityEventKind.CONTAINMENT_LIFTED: _("Restriction lifted"),
    # A practice admin's own changes to the practice's billing software.
    SecurityEventKind.TOKEN_REFUSED: _("Billing software refused a token"),
    SecurityEventKind.CLIENT_CREATED: _("Billing software registered"),
    SecurityEventKind.CLIENT_KEY_ADDED: _("Public key added"),
    SecurityEventKind.CLIENT_KEY_REVOKED: _("Public key revoked"),
    SecurityEventKind.CLIENT_REVOKED: _("Billing software revoked"),
    SecurityEventKind.CLIENT_SUSPENDED: _("Billing software suspended"),
    # An insurer staff member's changes to a guarantee product (step-up, then recorded).
    SecurityEventKind.PRODUCT_CHANGED: _("Product formulas changed"),
    SecurityEventKind.PRODUCT_RETIRED: _("Product retired"),
}
OTHER_SESSIONS_ENDED = _("Other sessions ended")


@dataclass(frozen=True)
class EventLine:
    at: datetime
    label: str  # an English message id
    address: str | None


@dataclass(frozen=True)
class SessionLine:
    ref: uuid.UUID
    device: str  # an English message id, or a browser and a system by name
    address: str | None
    created_at: datetime
    last_seen_at: datetime
    current: bool


def _event_line(event: SecurityEvent) -> EventLine:
    try:
        detail = json.loads(event.detail)
    except ValueError:
        detail = {}
    kind = event.kind.value
    label = EVENT_WORDS.get(kind, kind)
    if kind == SecurityEventKind.ALL_SESSIONS_REVOKED and detail.get("kept") == "current":
        label = OTHER_SESSIONS_ENDED
    return EventLine(at=event.at, label=label, address=event.address)


_BROWSERS = (("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def device_of(user_agent: str | None) -> str:
    """A browser and a system a person recognises, from the session's user agent."""
    agent = user_agent or ""
    browser = next((name for marker, name in _BROWSERS if marker in agent), None)
    system = next((name for marker, name in _SYSTEMS if marker in agent), None)
    if browser is None and system is None:
        return _("Unknown device")
    return " · ".join(part for part in (browser, system) if part)


def _current_session(request: Request, session: Session, identity: IdentityDep) -> AccountSession:
    return session_of_request(request, session=session, identity=identity, refuse_revoked=True)


def _account_id(caller: Principal) -> uuid.UUID:
    if caller.account_id is None:  # a portal viewer always has an account
        raise NotFound("no such account")
    return caller.account_id


def _step_up_url(back_to: str) -> str:
    return "/step-up?" + urlencode({"next": back_to})


def _is_recent(caller: Principal, identity: IdentityDep) -> bool:
    try:
        require_recent_passkey(caller, identity.clock())
    except StepUpRequired:
        return False
    return True


# -- overview and security events -----------------------------------------------------------------


@router.page("/account", dependencies=[SELF])
def account_page(
    request: Request, viewer: ViewerDep, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> HTMLResponse:
    account = signed_in_account(session, caller.account_id)
    roles = sorted(r.value for r in roles_of(session, account.id))
    return render(
        request,
        "identity/account.html",
        viewer=viewer,
        account=account,
        roles=[ROLE_WORDS.get(r, r) for r in roles],
        passkey_count=len(passkeys_of(session, account.id)),
        session_count=len(sessions_of(session, account.id, now=identity.clock())),
        authenticated_at=caller.authenticated_at,
    )


@router.page("/account/security-events", dependencies=[SELF])
def security_events_page(request: Request, viewer: ViewerDep, caller: AnyCaller, session: SessionDep) -> HTMLResponse:
    events = [_event_line(e) for e in events_of_account(session, _account_id(caller))]
    return render(request, "identity/security_events.html", viewer=viewer, events=events)


# -- sessions -------------------------------------------------------------------------------------


@router.page("/account/sessions", dependencies=[SELF])
def sessions_page(
    request: Request, viewer: ViewerDep, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> HTMLResponse:
    current = _current_session(request, session, identity)
    lines = [
        SessionLine(
            ref=row.ref,
            device=device_of(row.user_agent),
            address=row.address,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            current=row.id_hash == current.id_hash,
        )
        for row in sessions_of(session, _account_id(caller), now=identity.clock())
    ]
    return render(
        request,
        "identity/sessions.html",
        viewer=viewer,
        sessions=lines,
        done=request.query_params.get("done"),
    )


@router.post("/account/sessions/{session_ref}/revoke", dependencies=FORM)
def revoke_session_form(
    session_ref: uuid.UUID, caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep
) -> Response:
    current = _current_session(request, session, identity)
    do_end_session(
        session=session,
        account_id=_account_id(caller),
        ref=session_ref,
        now=identity.clock(),
        address=client_address(request),
    )
    if session_ref == current.ref:  # this browser's own session: it is signed out
        response = see_other("/login")
        clear_session_cookie(response, identity)
        return response
    return see_other("/account/sessions?done=revoked")


@router.post("/account/sessions/revoke-others", dependencies=FORM)
def revoke_other_sessions_form(
    caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep
) -> Response:
    current = _current_session(request, session, identity)
    do_end_other_sessions(
        session=session,
        account_id=_account_id(caller),
        keep=current.id_hash,
        now=identity.clock(),
        address=client_address(request),
    )
    return see_other("/account/sessions?done=others")


@router.post("/account/sessions/revoke-all", dependencies=FORM)
def revoke_all_sessions_form(
    caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep
) -> Response:
    """Sign out everywhere, this browser included."""
    do_end_all_sessions(
        session=session, account_id=_account_id(caller), now=identity.clock(), address=client_address(request)
    )
    response = see_other("/login")
    clear_session_cookie(response, identity)
    return response


# -- passkeys -------------------------------------------------------------------------------------


def _passkeys_page(
    request: Request,
    viewer: ViewerDep,
    caller: Principal,
    session: Session,
    identity: IdentityDep,
    *,
    problem: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "identity/passkeys.html",
        viewer=viewer,
        status=status,
        passkeys=passkeys_of(session, _account_id(caller)),
        recent=_is_recent(caller, identity),
        step_up_url=_step_up_url("/account/passkeys"),
        name_max=PASSKEY_NAME_MAX,
        done=request.query_params.get("done"),
        problem=problem,
    )


@router.page("/account/passkeys", dependencies=[SELF])
def passkeys_page(
    request: Request, viewer: ViewerDep, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> HTMLResponse:
    return _passkeys_page(request, viewer, caller, session, identity)


@router.post("/account/passkeys/{passkey_ref}/rename", dependencies=FORM)
def rename_passkey_form(
    *,
    passkey_ref: uuid.UUID,
    name: Annotated[str, Form(max_length=400)],
    viewer: ViewerDep,
    caller: AnyCaller,
    request: Request,
    session: SessionDep,
    identity: IdentityDep,
) -> Response:
    if not _is_recent(caller, identity):
        return see_other(_step_up_url("/account/passkeys"))
    try:
        do_rename_passkey(
            session=session,
            account_id=_account_id(caller),
            ref=passkey_ref,
            name=name,
            now=identity.clock(),
            address=client_address(request),
        )
    except ValidationFailed:
        return _passkeys_page(
            request,
            viewer,
            caller,
            session,
            identity,
            problem=_("A passkey's name has 1 to 100 characters."),
            status=422,
        )
    return see_other("/account/passkeys?done=renamed")


@router.post("/account/passkeys/{passkey_ref}/remove", dependencies=FORM)
def remove_passkey_form(
    *,
    passkey_ref: uuid.UUID,
    viewer: ViewerDep,
    caller: AnyCaller,
    request: Request,
    session: SessionDep,
    identity: IdentityDep,
) -> Response:
    if not _is_recent(caller, identity):
        return see_other(_step_up_url("/account/passkeys"))
    try:
        do_remove_passkey(
            session=session,
            account_id=_account_id(caller),
            ref=passkey_ref,
            now=identity.clock(),
            address=client_address(request),
        )
    except Conflict:
        return _passkeys_page(
            request,
            viewer,
            caller,
            session,
            identity,
            problem=_("This is your last passkey: add another one before you remove it."),
            status=409,
        )
    return see_other("/account/passkeys?done=removed")


# -- recovery codes -------------------------------------------------------------------------------


@router.page("/account/recovery-codes", dependencies=[SELF])
def recovery_codes_page(request: Request, viewer: ViewerDep, caller: AnyCaller, identity: IdentityDep) -> HTMLResponse:
    return render(
        request,
        "identity/recovery_codes.html",
        viewer=viewer,
        codes=None,
        recent=_is_recent(caller, identity),
        step_up_url=_step_up_url("/account/recovery-codes"),
    )


@router.post("/account/recovery-codes", dependencies=FORM)
def new_recovery_codes_form(
    request: Request, viewer: ViewerDep, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    """Replace every recovery code; the new ones are on this answer only (never stored in clear)."""
    if not _is_recent(caller, identity):
        return see_other(_step_up_url("/account/recovery-codes"))
    codes = do_replace_recovery_codes(session=session, account_id=_account_id(caller), now=identity.clock())
    return render(request, "identity/recovery_codes.html", viewer=viewer, codes=codes, recent=True, step_up_url="")
