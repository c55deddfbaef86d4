"""Prior approvals for practice software: ``/api/v1/prior-approvals``; insurer staff decide those
waiting for a person through ``staff_api`` (mounted here too)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from rempart.approvals.schemas import PriorApprovalIn, PriorApprovalOut
from rempart.approvals.service import cancel_approval, request_approval, view_approval
from rempart.approvals.staff_api import router as staff_router
from rempart.detection.deps import GuardedPracticeCaller
from rempart.idempotency import require_key
from rempart.identity.context import IdentityDep
from rempart.identity.deps import requires
from rempart.identity.permissions import Permission
from rempart.web.deps import SessionDep
from rempart.web.responses import REPLAYED, IdempotencyKey, json_response

practice_router = APIRouter(tags=["prior approvals"])


@practice_router.post(
    "/api/v1/prior-approvals",
    dependencies=[requires(Permission.CARE_PRIOR_APPROVAL_CREATE)],
    response_model=PriorApprovalOut,
    status_code=201,
)
def create_prior_approval(
    *,
    body: PriorApprovalIn,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    identity: IdentityDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Ask the insurer to commit to amounts before optical, hearing, dental or hospital care."""
    key = require_key(idempotency_key)
    outcome = request_approval(
        session=session, caller=caller, request=body.request(), idempotency_key=key, now=identity.clock()
    )
    response = json_response(PriorApprovalOut.of(outcome.approval), 200 if outcome.replayed else 201)
    if outcome.replayed:
        response.headers[REPLAYED] = "true"
    return response


@practice_router.get(
    "/api/v1/prior-approvals/{approval_id}",
    dependencies=[requires(Permission.CARE_PRIOR_APPROVAL_READ)],
    response_model=PriorApprovalOut,
)
def get_prior_approval(
    approval_id: uuid.UUID, caller: GuardedPracticeCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    approval = view_approval(session=session, caller=caller, approval_id=approval_id, now=identity.clock())
    return json_response(PriorApprovalOut.of(approval))


@practice_router.post(
    "/api/v1/prior-approvals/{approval_id}/cancel",
    dependencies=[requires(Permission.CARE_PRIOR_APPROVAL_CANCEL)],
    response_model=PriorApprovalOut,
)
def cancel_prior_approval(
    approval_id: uuid.UUID, caller: GuardedPracticeCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    """Cancel an approval no claim has used yet; cancelling twice is harmless."""
    approval = cancel_approval(session=session, caller=caller, approval_id=approval_id, now=identity.clock())
    return json_response(PriorApprovalOut.of(approval))


# The domain's router, as the app mounts it: the practice's routes and the insurer staff's.
router = APIRouter()
router.include_router(practice_router)
router.include_router(staff_router)
