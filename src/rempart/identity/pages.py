"""The start page, sign-in, enrolment, step-up and sign-out pages.

Sign-in and enrolment pages are shells: the script (``/static/passkeys.js``, served from this
origin, no inline code, as the CSP demands) runs the JSON ceremonies of ``auth_api``. Enrolment
links carry their token in the URL fragment, which the browser never sends to any server.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, PUBLIC, AnyCaller, client_address, requires
from rempart.identity.errors import NotSignedIn
from rempart.identity.permissions import Permission
from rempart.identity.portal import ROLE_WORDS, ViewerDep, viewer_of
from rempart.identity.sessions import clear_session_cookie, do_logout, principal_from_request, session_of_request
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, local_path, render, see_other

router = PageRouter()


@router.page("/", dependencies=[PUBLIC])
def start_page(request: Request, session: SessionDep, identity: IdentityDep, runtime: RuntimeDep) -> HTMLResponse:
    """Signed in: the person's tasks. Otherwise: what Rempart is, and in the demo, who to be."""
    principal = principal_from_request(request, session=session, identity=identity)
    if principal is not None:
        try:
            viewer = viewer_of(request, principal, session=session, now=identity.clock())
        except NotSignedIn:
            viewer = None
        if viewer is not None:
            return render(request, "identity/home.html", viewer=viewer)
    demo = _demo_document(runtime.settings.var_dir) if runtime.settings.demo_start_page else None
    return render(
        request,
        "identity/start.html",
        demo=demo,
        origin=identity.origin,
        role_words=ROLE_WORDS,
        kind_words=KIND_WORDS,
        portal_roles=PORTAL_ROLES,
    )


# The demo's sample patients, by the situation a professional meets.
KIND_WORDS = {
    "holder": _("Policy holder"),
    "spouse": _("Spouse"),
    "child": _("Child"),
    "child-on-parent-nir": _("Child on a parent's NIR"),
    "twin": _("Twin (birth rank 2)"),
}
# The demo accounts whose pages are built; the others use the API for now.
PORTAL_ROLES = frozenset({"practice_admin", "professional"})


def _demo_document(var_dir: Any) -> dict[str, Any] | None:
    path = var_dir / "demo.json"
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc


@router.page("/login", dependencies=[PUBLIC])
def login_page(request: Request, identity: IdentityDep, next: str | None = None) -> HTMLResponse:
    return render(request, "identity/login.html", origin=identity.origin, next=local_path(next))


@router.page("/enrol", dependencies=[PUBLIC])
def enrol_page(request: Request, identity: IdentityDep) -> HTMLResponse:
    return render(request, "identity/enrol.html", origin=identity.origin)


@router.page("/step-up", dependencies=[requires(Permission.ACCOUNT_SELF_MANAGE)])
def step_up_page(request: Request, viewer: ViewerDep, next: str | None = None) -> HTMLResponse:
    """Confirm with the passkey, then go back where detection or a sensitive page stopped."""
    return render(request, "identity/step_up.html", viewer=viewer, next=local_path(next))


@router.post("/logout", dependencies=[FORM_CSRF, requires(Permission.ACCOUNT_SELF_MANAGE)])
def logout(caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep) -> Response:
    row = session_of_request(request, session=session, identity=identity, refuse_revoked=True)
    do_logout(
        session=session, row=row, account_id=caller.account_id, now=identity.clock(), address=client_address(request)
    )
    response = see_other("/login")
    clear_session_cookie(response, identity)
    return response
