"""The practice admin's pages: the practice and its colleagues, inviting a colleague, and the
practice software's clients and their public keys.

The same services as the practice admin's API (``practice_admin_api``), with the same rules:
granting access (an invitation, a new client or key) needs a fresh passkey check (step-up), and the
form pages say so before anything is typed; revoking never does. A form with bad input comes back
with its fields marked (422) and nothing written. Private keys are never shown, and one pasted by
mistake is not echoed back.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from rempart.errors import Conflict, NotFound, ValidationFailed
from rempart.identity.clients import (
    MAX_ACTIVE_KEYS,
    access_client,
    active_keys,
    clients_of,
    do_add_client_key,
    do_create_client,
    do_revoke_client,
    do_revoke_client_key,
    keys_of,
    practice_roster,
)
from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, RECENT_PASSKEY, AnyCaller, client_address, requires
from rempart.identity.errors import PermissionDenied
from rempart.identity.invitations import do_invite_professional
from rempart.identity.models import AccountStatus, ClientKeyStatus, ClientStatus
from rempart.identity.permissions import Permission, Role
from rempart.identity.portal import ViewerDep
from rempart.identity.principal import Principal
from rempart.identity.schemas import InvitationOut
from rempart.identity.sessions import StepUpRequired, require_recent_passkey
from rempart.professionals.models import Profession, ProfessionalStatus
from rempart.professionals.service import is_valid_rpps
from rempart.web.deps import SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, render, see_other

router = PageRouter()

MANAGE = requires(Permission.PRACTICE_CLIENT_MANAGE)
INVITE = requires(Permission.PRACTICE_PROFESSIONAL_INVITE)

# A login is an e-mail address (the service then normalises it to its own rules).
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_MAX_JWK = 16_000  # characters: an RSA 4096 public JWK is under 1 000
# The members only a private or secret JWK has (``identity.jose`` refuses the same): such a paste is
# refused before the service sees it, and not echoed back into the form.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

# What the lists say after a form went through (``?done=...``): known words only, never an echo.
DONE = {
    "client-created": _("The software was registered with its public key."),
    "key-added": _("The public key was added. Move the software to it, then revoke the old key."),
    "key-revoked": _("The key was revoked: assertions signed with it are refused from now on."),
    "client-revoked": _("The software was revoked: it gets no token any more, and its tokens no longer work."),
}


# The words of the records' states (message ids, translated where shown).
WORDS: dict[str, dict[str, str]] = {
    "role": {
        Role.PRACTICE_ADMIN.value: _("Practice administrator"),
        Role.PROFESSIONAL.value: _("Professional"),
    },
    "account_status": {
        AccountStatus.INVITED.value: _("Invited"),
        AccountStatus.ACTIVE.value: _("Active"),
        AccountStatus.SUSPENDED.value: _("Suspended"),
    },
    "professional_status": {
        ProfessionalStatus.ACTIVE.value: _("Active"),
        ProfessionalStatus.SUSPENDED.value: _("Suspended"),
    },
    "client_status": {
        ClientStatus.ACTIVE.value: _("Active"),
        ClientStatus.SUSPENDED.value: _("Suspended"),
        ClientStatus.REVOKED.value: _("Revoked"),
    },
    "key_status": {ClientKeyStatus.ACTIVE.value: _("Key in use"), ClientKeyStatus.REVOKED.value: _("Key revoked")},
    "profession": {
        Profession.PHARMACIST.value: _("Pharmacist"),
        Profession.OPTICIAN.value: _("Optician"),
        Profession.AUDIOPROSTHETIST.value: _("Audioprosthetist"),
        Profession.DENTIST.value: _("Dentist"),
        Profession.PHYSICIAN.value: _("Physician"),
        Profession.MIDWIFE.value: _("Midwife"),
        Profession.NURSE.value: _("Nurse"),
        Profession.PHYSIOTHERAPIST.value: _("Physiotherapist"),
        Profession.LAB.value: _("Medical laboratory"),
        Profession.RADIOLOGY.value: _("Radiology"),
        Profession.HOSPITAL.value: _("Hospital"),
        Profession.TRANSPORT.value: _("Patient transport"),
    },
}


def _page(request: Request, template: str, *, viewer: Any, status: int = 200, **context: Any) -> HTMLResponse:
    return render(request, template, viewer=viewer, status=status, words=WORDS, **context)


def _form(
    request: Request, template: str, *, viewer: Any, errors: FormErrors, status: int = 200, **context: Any
) -> HTMLResponse:
    """A form page: the values typed, the fields' errors, and whether sending it needs a step-up."""
    return _page(request, template, viewer=viewer, errors=errors.fields, status=status, **context)


def _stale(caller: Principal, identity: Any) -> bool:
    """Whether the form's answer will ask for a fresh passkey check: the form page says so first
    (a GET refused with 401 would send a signed-in person to the login page)."""
    try:
        require_recent_passkey(caller, identity.clock())
    except StepUpRequired:
        return True
    return False


def _practice_of(caller: Principal) -> uuid.UUID:
    if caller.practice_id is None or Role.PRACTICE_ADMIN not in caller.roles:
        raise PermissionDenied("only a practice admin may do this")
    return caller.practice_id


@dataclass
class FormErrors:
    """Field name → message id, shown next to the field (``aria-invalid``, ``aria-describedby``)."""

    fields: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.fields.setdefault(name, message)

    def __bool__(self) -> bool:
        return bool(self.fields)


# -- the practice ----------------------------------------------------------------------------------


@router.page("/practice", dependencies=[MANAGE])
def practice_overview(
    request: Request, viewer: ViewerDep, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> HTMLResponse:
    professionals, colleagues = practice_roster(session, _practice_of(caller))
    return _page(
        request,
        "practice/overview.html",
        viewer=viewer,
        professionals=professionals,
        accounts=[c for c in colleagues if not c.pending],
        invitations=[c for c in colleagues if c.pending],
        now=identity.clock(),
    )


# -- inviting a colleague --------------------------------------------------------------------------


@router.page("/practice/invite", dependencies=[INVITE])
def invite_form(request: Request, viewer: ViewerDep, caller: AnyCaller, identity: IdentityDep) -> HTMLResponse:
    _practice_of(caller)
    values = {"login": "", "rpps": "", "practice_admin": False}
    return _form(
        request,
        "practice/invite.html",
        viewer=viewer,
        values=values,
        errors=FormErrors(),
        step_up=_stale(caller, identity),
    )


@router.post("/practice/invite", dependencies=[FORM_CSRF, INVITE, RECENT_PASSKEY], response_class=HTMLResponse)
def invite_colleague(
    *,
    request: Request,
    viewer: ViewerDep,
    caller: AnyCaller,
    session: SessionDep,
    identity: IdentityDep,
    login: Annotated[str, Form(max_length=1000)] = "",
    rpps: Annotated[str, Form(max_length=1000)] = "",
    practice_admin: Annotated[str, Form(max_length=10)] = "",
) -> HTMLResponse:
    """The enrolment link is shown once, on this answer: Rempart keeps only its hash, so the page
    cannot be shown again (a reload posts again, and finds the login taken)."""
    practice_id = _practice_of(caller)
    login, rpps = login.strip(), rpps.strip().replace(" ", "")
    values = {"login": login[:254], "rpps": rpps[:11], "practice_admin": practice_admin == "yes"}
    errors = FormErrors()
    if not _EMAIL.match(login) or len(login) > 254:
        errors.add("login", _("Enter the colleague's e-mail address, like name@example.fr."))
    if not is_valid_rpps(rpps):
        errors.add("rpps", _("An RPPS number is 11 digits, the last one a check digit: check it on the card."))
    if not errors:
        try:
            invitation = do_invite_professional(
                session=session,
                practice_id=practice_id,
                rpps=rpps,
                login=login,
                practice_admin=practice_admin == "yes",
                now=identity.clock(),
                invited_by=caller.account_id,
            )
        except Conflict:
            errors.add("login", _("An account already uses this login."))
        except (NotFound, ValidationFailed) as refused:
            # An unknown RPPS and one of another practice answer the same.
            if "login" in refused.detail:
                errors.add("login", _("Enter the colleague's e-mail address, like name@example.fr."))
            else:
                errors.add("rpps", _("No professional with this RPPS number acts for this practice."))
        else:
            out = InvitationOut.of(invitation, identity.origin)
            return _page(
                request,
                "practice/invited.html",
                viewer=viewer,
                status=201,
                login=invitation.account.login,
                rpps=rpps,
                enrol_url=out.enrol_url,
                expires_in_days=out.expires_in_days,
            )
    return _form(
        request, "practice/invite.html", viewer=viewer, values=values, errors=errors, status=422, step_up=False
    )


# -- practice software: clients and their keys -----------------------------------------------------


@router.page("/practice/clients", dependencies=[MANAGE])
def client_list(
    request: Request, viewer: ViewerDep, caller: AnyCaller, session: SessionDep, done: str | None = None
) -> HTMLResponse:
    clients = clients_of(session, _practice_of(caller))
    return _page(
        request,
        "practice/clients.html",
        viewer=viewer,
        clients=clients,
        keys=keys_of(session, [c.id for c in clients]),
        done=DONE.get(done or ""),
        max_keys=MAX_ACTIVE_KEYS,
    )


def _read_jwk(text: str, errors: FormErrors) -> tuple[dict[str, Any] | None, str]:
    """The pasted JWK, and what to put back in the field (nothing if it held a private key)."""
    if not text.strip():
        errors.add("public_jwk", _("Paste the software's public key, as a JWK (a JSON object)."))
        return None, ""
    if len(text) > _MAX_JWK:
        errors.add("public_jwk", _("This is too long for a public key. Paste the public JWK only."))
        return None, ""
    try:
        value = json.loads(text)
    except ValueError:
        errors.add("public_jwk", _("This is not a JWK: paste the public key as a JSON object, from { to }."))
        return None, text
    if not isinstance(value, dict):
        errors.add("public_jwk", _("This is not a JWK: paste the public key as a JSON object, from { to }."))
        return None, text
    if _PRIVATE_MEMBERS & value.keys():
        errors.add(
            "public_jwk",
            _(
                "This is a private key: it was not kept. A private key never leaves the software: "
                "paste its public part only, and consider this one exposed (make a new pair)."
            ),
        )
        return None, ""
    return value, text


_BAD_KEY = _(
    "Rempart cannot use this key: it must be a public EC P-256 or P-384, Ed25519, or RSA key of 2048 bits or more."
)


@router.page("/practice/clients/new", dependencies=[MANAGE])
def new_client_form(request: Request, viewer: ViewerDep, caller: AnyCaller, identity: IdentityDep) -> HTMLResponse:
    _practice_of(caller)
    values = {"name": "", "public_jwk": ""}
    return _form(
        request,
        "practice/client_new.html",
        viewer=viewer,
        values=values,
        errors=FormErrors(),
        step_up=_stale(caller, identity),
    )


@router.post("/practice/clients/new", dependencies=[FORM_CSRF, MANAGE, RECENT_PASSKEY], response_class=HTMLResponse)
def create_client(
    *,
    request: Request,
    viewer: ViewerDep,
    caller: AnyCaller,
    session: SessionDep,
    identity: IdentityDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    public_jwk: Annotated[str, Form(max_length=_MAX_JWK * 2)] = "",
) -> Response:
    practice_id = _practice_of(caller)
    errors = FormErrors()
    name = " ".join(name.split())
    if not name or len(name) > 100:
        errors.add("name", _("Give the software a name of 1 to 100 characters, like the product's name."))
    jwk, jwk_back = _read_jwk(public_jwk, errors)
    if jwk is not None and not errors:
        try:
            client = do_create_client(
                session=session,
                practice_id=practice_id,
                name=name,
                public_jwk=jwk,
                now=identity.clock(),
                expires_at=None,
                acting_account_id=caller.account_id,
                address=client_address(request),
            )
        except Conflict:
            errors.add("public_jwk", _("This key is already registered. Each software has keys of its own."))
        except ValidationFailed:
            errors.add("public_jwk", _BAD_KEY)
        else:
            return see_other(f"/practice/clients?done=client-created#client-{client.id}")
    return _form(
        request,
        "practice/client_new.html",
        viewer=viewer,
        values={"name": name[:100], "public_jwk": jwk_back},
        errors=errors,
        status=422,
        step_up=False,
    )


@router.page("/practice/clients/{client_id}/keys/new", dependencies=[MANAGE])
def new_key_form(
    *,
    request: Request,
    client_id: uuid.UUID,
    viewer: ViewerDep,
    caller: AnyCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> HTMLResponse:
    client = access_client(session, practice_id=_practice_of(caller), client_id=client_id)
    return _form(
        request,
        "practice/key_new.html",
        viewer=viewer,
        client=client,
        value="",
        errors=FormErrors(),
        step_up=_stale(caller, identity),
    )


@router.post(
    "/practice/clients/{client_id}/keys/new",
    dependencies=[FORM_CSRF, MANAGE, RECENT_PASSKEY],
    response_class=HTMLResponse,
)
def add_key(
    *,
    request: Request,
    client_id: uuid.UUID,
    viewer: ViewerDep,
    caller: AnyCaller,
    session: SessionDep,
    identity: IdentityDep,
    public_jwk: Annotated[str, Form(max_length=_MAX_JWK * 2)] = "",
) -> Response:
    practice_id = _practice_of(caller)
    client = access_client(session, practice_id=practice_id, client_id=client_id)
    errors = FormErrors()
    jwk, jwk_back = _read_jwk(public_jwk, errors)
    if client.status is ClientStatus.REVOKED:
        errors.add("public_jwk", _("This software is revoked: register it again as a new software."))
    elif jwk is not None and len(active_keys(session, client.id)) >= MAX_ACTIVE_KEYS:
        errors.add("public_jwk", _("This software already has three active keys: revoke one first."))
    if jwk is not None and not errors:
        try:
            do_add_client_key(
                session=session,
                practice_id=practice_id,
                client_id=client.id,
                public_jwk=jwk,
                now=identity.clock(),
                acting_account_id=caller.account_id,
                address=client_address(request),
            )
        except Conflict:
            errors.add("public_jwk", _("This key is already registered. Each software has keys of its own."))
        except ValidationFailed:
            errors.add("public_jwk", _BAD_KEY)
        else:
            return see_other(f"/practice/clients?done=key-added#client-{client.id}")
    return _form(
        request,
        "practice/key_new.html",
        viewer=viewer,
        client=client,
        value=jwk_back,
        errors=errors,
        status=422,
        step_up=False,
    )


# -- revoking: a page that says what happens, and its form -----------------------------------------


def _key_of(session: Any, client_id: uuid.UUID, kid: str) -> Any:
    for key in keys_of(session, [client_id])[client_id]:
        if key.kid == kid:
            return key
    raise NotFound("no such key")


@router.page("/practice/clients/{client_id}/keys/{kid}/revoke", dependencies=[MANAGE])
def revoke_key_form(
    *, request: Request, client_id: uuid.UUID, kid: str, viewer: ViewerDep, caller: AnyCaller, session: SessionDep
) -> HTMLResponse:
    client = access_client(session, practice_id=_practice_of(caller), client_id=client_id)
    key = _key_of(session, client.id, kid)
    return _page(request, "practice/key_revoke.html", viewer=viewer, client=client, key=key)


@router.post("/practice/clients/{client_id}/keys/{kid}/revoke", dependencies=[FORM_CSRF, MANAGE])
def revoke_key(
    *, request: Request, client_id: uuid.UUID, kid: str, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    practice_id = _practice_of(caller)
    do_revoke_client_key(
        session=session,
        practice_id=practice_id,
        client_id=client_id,
        kid=kid,
        now=identity.clock(),
        acting_account_id=caller.account_id,
        address=client_address(request),
    )
    return see_other(f"/practice/clients?done=key-revoked#client-{client_id}")


@router.page("/practice/clients/{client_id}/revoke", dependencies=[MANAGE])
def revoke_client_form(
    request: Request, client_id: uuid.UUID, viewer: ViewerDep, caller: AnyCaller, session: SessionDep
) -> HTMLResponse:
    client = access_client(session, practice_id=_practice_of(caller), client_id=client_id)
    return _page(
        request,
        "practice/client_revoke.html",
        viewer=viewer,
        client=client,
        revoked=client.status is ClientStatus.REVOKED,
    )


@router.post("/practice/clients/{client_id}/revoke", dependencies=[FORM_CSRF, MANAGE])
def revoke_client(
    request: Request, client_id: uuid.UUID, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    do_revoke_client(
        session=session,
        practice_id=_practice_of(caller),
        client_id=client_id,
        now=identity.clock(),
        acting_account_id=caller.account_id,
        address=client_address(request),
    )
    return see_other(f"/practice/clients?done=client-revoked#client-{client_id}")
