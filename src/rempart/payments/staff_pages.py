"""The insurer's back office: payment runs (a preview, then the run; above the threshold a second
staff member's approval first) and the runs' remittances, listed and downloadable as CSV."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from rempart.detection.deps import GuardedStaffCaller
from rempart.eligibility.service import care_day
from rempart.idempotency import require_key
from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, requires
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.identity.principal import StaffPrincipal
from rempart.payments import approval
from rempart.payments.approval import (
    OwnRunRequest,
    RunRequestDecided,
    RunRequestLapsed,
    do_approve_run,
    do_ask_for_run,
    do_refuse_run,
    preview_run,
    remittances_csv,
    run_remittances,
    run_requests,
    staff_logins,
)
from rempart.payments.approval_models import RunRequestStatus
from rempart.payments.service import NothingDue, payment_runs
from rempart.web.deps import SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, Viewer, render, see_other

router = PageRouter()
MANAGE = requires(Permission.INSURER_PAYMENT_RUN_MANAGE)

REQUEST_WORDS: dict[RunRequestStatus, tuple[str, str]] = {
    RunRequestStatus.WAITING: (_("Waiting for a second approval"), "warn"),
    RunRequestStatus.APPROVED: (_("Approved and paid"), "ok"),
    RunRequestStatus.REFUSED: (_("Refused by a second staff member"), "bad"),
    RunRequestStatus.LAPSED: (_("Lapsed: the claims changed, ask again"), ""),
}
NOTES = {
    "asked": _("Your request waits for a second staff member's approval: the run is made once they approve it."),
    "refused": _("The request was refused: nothing was paid."),
    "already": _("This request was decided meanwhile: see its status below."),
    "nothing": _("Nothing is due up to this day: no accepted claim waits to be paid, so no run was made."),
    "lapsed": _(
        "The claims to pay changed since the request, so it lapsed and nothing was paid. Preview and ask again."
    ),
    "own": _("You asked for this run: a second staff member must approve it. Nothing was paid."),
}


def _cutoff(text: str, default: date) -> date | None:
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _runs_page(
    request: Request,
    viewer: Viewer,
    staff: StaffPrincipal,
    session: SessionDep,
    *,
    today: date,
    note: str = "",
    status: int = 200,
    cutoff_error: str = "",
) -> HTMLResponse:
    requests = run_requests(session, staff=staff)
    runs = payment_runs(session, staff=staff)
    logins = staff_logins(
        session,
        staff=staff,
        account_ids={r.requested_by for r in requests} | {r.decided_by for r in requests if r.decided_by},
    )
    return render(
        request,
        "backoffice/runs_list.html",
        viewer=viewer,
        status=status,
        requests=requests,
        runs=runs,
        logins=logins,
        me=staff.account_id,
        request_words=REQUEST_WORDS,
        note=NOTES.get(note, ""),
        note_kind="bad" if note in {"own", "lapsed", "refused", "nothing"} else "ok",
        today=today,
        threshold=approval.SECOND_APPROVAL_CENTS,
        cutoff_error=cutoff_error,
    )


@router.page("/insurer/payment-runs", dependencies=[MANAGE])
def runs_list(
    request: Request,
    *,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    note: str = "",
) -> HTMLResponse:
    return _runs_page(request, viewer, staff, session, today=care_day(identity.clock()), note=note)


@router.page("/insurer/payment-runs/preview", dependencies=[MANAGE])
def runs_preview(
    request: Request,
    *,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    cutoff: str = "",
) -> HTMLResponse:
    now = identity.clock()
    day = _cutoff(cutoff[:10], care_day(now))
    if day is None:
        return _runs_page(
            request,
            viewer,
            staff,
            session,
            today=care_day(now),
            status=422,
            cutoff_error=_("Choose the last day of care to pay, as a date."),
        )
    preview = preview_run(session, staff=staff, cutoff=day, now=now)
    return render(
        request,
        "backoffice/runs_preview.html",
        viewer=viewer,
        preview=preview,
        threshold=approval.SECOND_APPROVAL_CENTS,
        idempotency_key=str(uuid.uuid4()),  # this preview's run, once, however often the form is sent
    )


@router.post("/insurer/payment-runs", dependencies=[FORM_CSRF, MANAGE])
def runs_ask(
    *,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    cutoff: Annotated[str, Form()] = "",
    idempotency_key: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Run now below the threshold; above it, ask a second staff member. The preview's hidden key
    makes a second click (or a resent form) answer with the first run or request."""
    now = identity.clock()
    day = _cutoff(cutoff[:10], care_day(now))
    if day is None or not cutoff:
        return see_other("/insurer/payment-runs/preview")
    try:
        key = require_key(idempotency_key) if idempotency_key else None
        asked = do_ask_for_run(session, staff=staff, cutoff=day, now=now, idempotency_key=key)
    except NothingDue:
        return see_other("/insurer/payment-runs?note=nothing")
    if asked.run is not None:
        return see_other(f"/insurer/payment-runs/{asked.run.id}")
    return see_other("/insurer/payment-runs?note=asked")


@router.post("/insurer/payment-runs/requests/{request_id}/approve", dependencies=[FORM_CSRF, MANAGE])
def runs_approve(
    request: Request,
    *,
    request_id: uuid.UUID,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> Response:
    now = identity.clock()
    try:
        run = do_approve_run(session, staff=staff, request_id=request_id, now=now)
    except OwnRunRequest:
        return _runs_page(request, viewer, staff, session, today=care_day(now), note="own", status=403)
    except RunRequestLapsed:
        return see_other("/insurer/payment-runs?note=lapsed")
    except RunRequestDecided:
        return see_other("/insurer/payment-runs?note=already")
    return see_other(f"/insurer/payment-runs/{run.id}")


@router.post("/insurer/payment-runs/requests/{request_id}/refuse", dependencies=[FORM_CSRF, MANAGE])
def runs_refuse(
    request: Request,
    *,
    request_id: uuid.UUID,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> Response:
    now = identity.clock()
    try:
        do_refuse_run(session, staff=staff, request_id=request_id, now=now)
    except OwnRunRequest:
        return _runs_page(request, viewer, staff, session, today=care_day(now), note="own", status=403)
    except RunRequestDecided:
        return see_other("/insurer/payment-runs?note=already")
    return see_other("/insurer/payment-runs?note=refused")


@router.page("/insurer/payment-runs/{run_id}", dependencies=[MANAGE])
def runs_detail(
    request: Request, *, run_id: uuid.UUID, viewer: ViewerDep, staff: GuardedStaffCaller, session: SessionDep
) -> HTMLResponse:
    run, remittances = run_remittances(session, staff=staff, run_id=run_id)
    return render(request, "backoffice/runs_detail.html", viewer=viewer, run=run, remittances=remittances)


@router.page("/insurer/payment-runs/{run_id}/remittances.csv", dependencies=[MANAGE])
def runs_csv(run_id: uuid.UUID, staff: GuardedStaffCaller, session: SessionDep) -> Response:
    name, text = remittances_csv(session, staff=staff, run_id=run_id)
    return Response(
        text.encode("utf-8-sig"),  # a byte-order mark, so that a spreadsheet reads the accents
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
