"""The insurer's back office: bulk member exports under a second staff member's approval.

``/insurer/exports`` is the requesters' page (the request form, their exports to withdraw or to
download); ``/insurer/exports/approvals`` the approvers' (approve or refuse someone else's
request). Both list the insurer's exports, those waiting first: why, which members, who asked, who
decided, never a member. An approver sees no button on their own request, and the service refuses
it anyway (``OwnExport``, 403 page).

The download is a form post, not a link: it changes the export (it leaves once) and must never be
fetched by a prefetching browser or a crawler; the file is sent only after every member in it is
recorded (``rempart.members.exports.do_download_export``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from rempart.detection.deps import GuardedStaffCaller
from rempart.errors import ValidationFailed
from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, requires
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.identity.principal import StaffPrincipal
from rempart.members.export_models import ExportStatus
from rempart.members.exports import (
    PURPOSE_MAX,
    ExportDecided,
    ExportLapsed,
    ExportNotDownloadable,
    ExportNotFound,
    NotYourExport,
    OwnExport,
    do_decide_export,
    do_download_export,
    do_request_export,
    do_withdraw_export,
    export_products,
    lapses_at,
    member_exports,
    staff_logins,
    status_at,
)
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, Viewer, render, see_other

router = PageRouter()
REQUEST = requires(Permission.INSURER_EXPORT_REQUEST)
APPROVE = requires(Permission.INSURER_EXPORT_APPROVE)
REQUESTS_PAGE = "/insurer/exports"
APPROVALS_PAGE = "/insurer/exports/approvals"

STATUS_WORDS: dict[ExportStatus, tuple[str, str]] = {
    ExportStatus.WAITING: (_("Waiting for a second staff member"), "warn"),
    ExportStatus.APPROVED: (_("Approved: the requester may download it"), "ok"),
    ExportStatus.REFUSED: (_("Refused"), "bad"),
    ExportStatus.DOWNLOADED: (_("Downloaded"), ""),
    ExportStatus.LAPSED: (_("Lapsed or withdrawn"), ""),
}
NOTES: dict[str, tuple[str, str]] = {
    "asked": (_("Your request waits for a second staff member's approval. Nothing was exported."), "ok"),
    "approved": (_("The export is approved: its requester may download it once, within a day."), "ok"),
    "refused": (_("The export was refused: nothing was exported."), "ok"),
    "withdrawn": (_("Your request was withdrawn: nothing was exported."), "ok"),
    "already": (_("This export was decided, withdrawn or downloaded meanwhile: see its status below."), "bad"),
    "own": (_("You asked for this export: a second staff member must decide it. Nothing was changed."), "bad"),
    "not-yours": (_("Only the staff member who asked for an export may withdraw or download it."), "bad"),
    "lapsed": (
        _("This export was not downloaded within a day of its approval, so it lapsed. Ask for it again."),
        "bad",
    ),
    "not-downloadable": (_("This export cannot be downloaded: see its status below."), "bad"),
}
# The service's reasons (``ValidationFailed``), as the form shows them next to the field.
FIELD_PROBLEMS = {
    "purpose": _("Say why in one line of 10 to 500 characters, without anyone's personal data."),
    "product_code": _("Choose one of the insurer's products, or every member."),
}


def _export_id(value: str) -> uuid.UUID:
    """A path's export id; anything but a UUID names no export (the same "not found")."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ExportNotFound("no member export with this id") from None


def _list_page(
    request: Request,
    viewer: Viewer,
    staff: StaffPrincipal,
    session: SessionDep,
    *,
    now: datetime,
    approving: bool,
    note: str = "",
    status: int = 200,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    exports = member_exports(session, staff=staff)
    logins = staff_logins(
        session,
        staff=staff,
        account_ids={e.requested_by for e in exports} | {e.decided_by for e in exports if e.decided_by},
    )
    rows = [(e, status_at(e, now), lapses_at(e)) for e in exports]
    words, kind = NOTES.get(note, ("", ""))
    return render(
        request,
        "backoffice/exports_list.html",
        viewer=viewer,
        status=status,
        rows=rows,
        logins=logins,
        me=staff.account_id,
        approving=approving,
        can_request=staff.can(Permission.INSURER_EXPORT_REQUEST),
        can_approve=staff.can(Permission.INSURER_EXPORT_APPROVE),
        can_download=staff.can(Permission.INSURER_MEMBER_READ),
        products=export_products(session, staff=staff) if not approving else [],
        status_words=STATUS_WORDS,
        note=words,
        note_kind=kind,
        errors=errors or {},
        typed=typed or {"purpose": "", "product_code": ""},
        purpose_max=PURPOSE_MAX,
    )


@router.page(REQUESTS_PAGE, dependencies=[REQUEST])
def exports_page(
    request: Request,
    *,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    note: str = "",
) -> HTMLResponse:
    """The request form and the insurer's exports: withdraw or download one's own."""
    return _list_page(request, viewer, staff, session, now=identity.clock(), approving=False, note=note)


@router.page(APPROVALS_PAGE, dependencies=[APPROVE])
def approvals_page(
    request: Request,
    *,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    note: str = "",
) -> HTMLResponse:
    """The insurer's exports, to approve or refuse those someone else asked for."""
    return _list_page(request, viewer, staff, session, now=identity.clock(), approving=True, note=note)


@router.post(REQUESTS_PAGE, dependencies=[FORM_CSRF, REQUEST], response_class=HTMLResponse)
def ask_export(
    request: Request,
    *,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    purpose: Annotated[str, Form()] = "",
    product_code: Annotated[str, Form()] = "",
) -> Response:
    """Ask for an export; bad input shows the form again (422), its fields marked, nothing written."""
    now = identity.clock()
    try:
        do_request_export(session, staff=staff, purpose=purpose, product_code=product_code or None, now=now)
    except ValidationFailed as problem:
        fields = [str(e.get("field", "")) for e in problem.extra.get("errors", [])]
        errors = {f: FIELD_PROBLEMS[f] for f in fields if f in FIELD_PROBLEMS}
        typed = {"purpose": purpose[: PURPOSE_MAX + 20], "product_code": product_code[:32]}
        return _list_page(
            request, viewer, staff, session, now=now, approving=False, status=422, errors=errors, typed=typed
        )
    return see_other(f"{REQUESTS_PAGE}?note=asked")


def _decide(
    request: Request,
    viewer: Viewer,
    staff: StaffPrincipal,
    session: SessionDep,
    *,
    now: datetime,
    export_id: str,
    approve: bool,
) -> Response:
    try:
        do_decide_export(session, staff=staff, export_id=_export_id(export_id), approve=approve, now=now)
    except OwnExport:
        return _list_page(request, viewer, staff, session, now=now, approving=True, note="own", status=403)
    except ExportDecided:
        return see_other(f"{APPROVALS_PAGE}?note=already")
    return see_other(f"{APPROVALS_PAGE}?note={'approved' if approve else 'refused'}")


@router.post("/insurer/exports/{export_id}/approve", dependencies=[FORM_CSRF, APPROVE], response_class=HTMLResponse)
def approve_export(
    request: Request,
    *,
    export_id: str,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> Response:
    return _decide(request, viewer, staff, session, now=identity.clock(), export_id=export_id, approve=True)


@router.post("/insurer/exports/{export_id}/refuse", dependencies=[FORM_CSRF, APPROVE], response_class=HTMLResponse)
def refuse_export(
    request: Request,
    *,
    export_id: str,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> Response:
    return _decide(request, viewer, staff, session, now=identity.clock(), export_id=export_id, approve=False)


@router.post("/insurer/exports/{export_id}/withdraw", dependencies=[FORM_CSRF, REQUEST], response_class=HTMLResponse)
def withdraw_export(
    request: Request,
    *,
    export_id: str,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> Response:
    now = identity.clock()
    try:
        do_withdraw_export(session, staff=staff, export_id=_export_id(export_id), now=now)
    except NotYourExport:
        return _list_page(request, viewer, staff, session, now=now, approving=False, note="not-yours", status=403)
    except ExportDecided:
        return see_other(f"{REQUESTS_PAGE}?note=already")
    return see_other(f"{REQUESTS_PAGE}?note=withdrawn")


@router.post(
    "/insurer/exports/{export_id}/download",
    dependencies=[FORM_CSRF, REQUEST, requires(Permission.INSURER_MEMBER_READ)],
    response_class=HTMLResponse,
)
def download_export(
    request: Request,
    *,
    export_id: str,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
) -> Response:
    """The file, to its requester, once; every member in it recorded before the first byte leaves."""
    now = identity.clock()
    try:
        file = do_download_export(session, keys=runtime.keys, staff=staff, export_id=_export_id(export_id), now=now)
    except NotYourExport:
        return _list_page(request, viewer, staff, session, now=now, approving=False, note="not-yours", status=403)
    except ExportLapsed:
        return see_other(f"{REQUESTS_PAGE}?note=lapsed")
    except ExportNotDownloadable:
        return see_other(f"{REQUESTS_PAGE}?note=not-downloadable")
    return StreamingResponse(
        file.chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{file.name}"', "Cache-Control": "no-store"},
        background=BackgroundTask(file.body.close),  # also when the browser left before the end
    )
