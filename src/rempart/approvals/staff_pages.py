"""The insurer's back office: prior approvals waiting for a person's decision, granted or refused
from the list (the decision is ``approvals.service.decide_approval``, as through the API)."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from rempart.approvals.service import ApprovalNotPending, decide_approval, pending_approvals
from rempart.detection.deps import GuardedStaffCaller
from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, requires
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.pricing.forms import DOMAIN_WORDS
from rempart.professionals.models import Practice
from rempart.web.deps import SessionDep
from rempart.web.pages import PageRouter, render, see_other

router = PageRouter()

QUEUE_LIMIT = 200
_NUMBER = re.compile(r"^[A-Z0-9-]{1,20}$")


@router.page("/insurer/approvals", dependencies=[requires(Permission.INSURER_CLAIM_READ)])
def approvals_queue(
    request: Request,
    *,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    decided: str = "",
    number: str = "",
) -> HTMLResponse:
    approvals = pending_approvals(session, staff=staff, now=identity.clock(), limit=QUEUE_LIMIT)
    names = {}
    for practice_id in {a.practice_id for a in approvals}:
        # A practice is a platform record (no tenant), read by its key: the name a reviewer recognises.
        practice = session.get(Practice, practice_id)
        names[practice_id] = practice.name if practice is not None else str(practice_id)[:8]
    return render(
        request,
        "backoffice/approvals_queue.html",
        viewer=viewer,
        approvals=approvals,
        practice_names=names,
        domain_words=DOMAIN_WORDS,
        can_decide=Permission.INSURER_CLAIM_REVIEW in staff.permissions,
        decided=decided if decided in {"granted", "refused", "already"} else "",
        number=number if _NUMBER.match(number) else "",
    )


@router.post(
    "/insurer/approvals/{approval_id}/decision",
    dependencies=[FORM_CSRF, requires(Permission.INSURER_CLAIM_REVIEW)],
)
def approvals_decide(
    *,
    approval_id: uuid.UUID,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    decision: Annotated[str, Form()] = "",
) -> Response:
    if decision not in {"grant", "refuse"}:
        return see_other("/insurer/approvals")
    try:
        approval = decide_approval(
            session=session, staff=staff, approval_id=approval_id, grant=decision == "grant", now=identity.clock()
        )
    except ApprovalNotPending:
        return see_other("/insurer/approvals?decided=already")
    outcome = "granted" if decision == "grant" else "refused"
    return see_other(f"/insurer/approvals?decided={outcome}&number={approval.approval_number}")
