"""Prior approvals waiting for a person at the insurer: ``/api/v1/insurers/{insurer_id}/prior-approvals``.
Answers "not found" for another insurer's id (``GuardedStaffCaller``). Mounted by
``rempart.approvals.api.router``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from rempart.approvals.schemas import ApprovalDecisionIn, ApprovalListOut, PriorApprovalOut
from rempart.approvals.service import decide_approval, pending_approvals_page
from rempart.detection.deps import GuardedStaffCaller
from rempart.identity.context import IdentityDep
from rempart.identity.deps import requires
from rempart.identity.permissions import Permission
from rempart.pagination import Cursor
from rempart.web.deps import SessionDep
from rempart.web.pagination import CursorParam, next_link, paged_json
from rempart.web.responses import json_response

router = APIRouter(prefix="/api/v1/insurers/{insurer_id}", tags=["insurer"])
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/prior-approvals", dependencies=[requires(Permission.INSURER_CLAIM_READ)], response_model=ApprovalListOut)
def get_pending_approvals(
    *,
    request: Request,
    insurer_id: uuid.UUID,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    limit: Limit = 100,
    cursor: str | None = CursorParam,
) -> Response:
    """The approvals waiting for a person, oldest first, a page at a time (``next``)."""
    page = pending_approvals_page(session, staff=staff, now=identity.clock(), limit=limit, cursor=Cursor.decode(cursor))
    link = next_link(request, page.next)
    return paged_json(ApprovalListOut(prior_approvals=[PriorApprovalOut.of(a) for a in page.items], next=link), link)


@router.post(
    "/prior-approvals/{approval_id}/decision",
    dependencies=[requires(Permission.INSURER_CLAIM_REVIEW)],
    response_model=PriorApprovalOut,
)
def post_approval_decision(
    *,
    insurer_id: uuid.UUID,
    approval_id: uuid.UUID,
    body: ApprovalDecisionIn,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> Response:
    approval = decide_approval(
        session=session, staff=staff, approval_id=approval_id, grant=body.decision == "grant", now=identity.clock()
    )
    return json_response(PriorApprovalOut.of(approval))
