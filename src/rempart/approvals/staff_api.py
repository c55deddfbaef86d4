"""Prior approvals waiting for a person at the insurer: ``/api/v1/insurers/{insurer_id}/prior-approvals``.
Answers "not found" for another insurer's id (``GuardedStaffCaller``). Mounted by
``rempart.approvals.api.router``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from rempart.approvals.schemas import ApprovalDecisionIn, ApprovalListOut, PriorApprovalOut
from rempart.approvals.service import decide_approval, pending_approvals
from rempart.detection.deps import GuardedStaffCaller
from rempart.identity.context import IdentityDep
from rempart.identity.deps import requires
from rempart.identity.permissions import Permission
from rempart.web.deps import SessionDep
from rempart.web.responses import json_response

router = APIRouter(prefix="/api/v1/insurers/{insurer_id}", tags=["insurer"])
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/prior-approvals", dependencies=[requires(Permission.INSURER_CLAIM_READ)], response_model=ApprovalListOut)
def get_pending_approvals(
    insurer_id: uuid.UUID, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep, limit: Limit = 100
) -> Response:
    approvals = pending_approvals(session, staff=staff, now=identity.clock(), limit=limit)
    return json_response(ApprovalListOut(prior_approvals=[PriorApprovalOut.of(a) for a in approvals]))


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
