"""Claims review for insurer staff: ``/api/v1/insurers/{insurer_id}/claims``. Answers "not found"
for another insurer's id (``GuardedStaffCaller``). Mounted by ``rempart.claims.api.router``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from rempart.claims.models import ClaimStatus
from rempart.claims.schemas import ClaimReviewIn, InsurerClaimListOut, InsurerClaimOut
from rempart.claims.service import insurer_claim, insurer_claims_page, review_claim, review_comment
from rempart.detection.deps import GuardedStaffCaller
from rempart.identity.context import IdentityDep
from rempart.identity.deps import requires
from rempart.identity.permissions import Permission
from rempart.pagination import Cursor
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.pagination import CursorParam, next_link, paged_json
from rempart.web.responses import json_response

router = APIRouter(prefix="/api/v1/insurers/{insurer_id}", tags=["insurer"])
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/claims", dependencies=[requires(Permission.INSURER_CLAIM_READ)], response_model=InsurerClaimListOut)
def get_claims(
    *,
    request: Request,
    insurer_id: uuid.UUID,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    status: ClaimStatus | None = None,
    under_attestation: bool | None = None,
    limit: Limit = 100,
    cursor: str | None = CursorParam,
) -> Response:
    """The insurer's claims, oldest first (``status=pending_review`` for the review queue,
    ``under_attestation=true`` for those billed on offline attestations while the platform was off)."""
    page = insurer_claims_page(
        session,
        staff=staff,
        now=identity.clock(),
        status=status,
        under_attestation=under_attestation,
        limit=limit,
        cursor=Cursor.decode(cursor),
    )
    link = next_link(request, page.next)
    claims = [InsurerClaimOut.of_claim(c, with_lines=False) for c in page.items]
    return paged_json(InsurerClaimListOut(claims=claims, next=link), link)


@router.get(
    "/claims/{claim_id}", dependencies=[requires(Permission.INSURER_CLAIM_READ)], response_model=InsurerClaimOut
)
def get_claim(
    *,
    insurer_id: uuid.UUID,
    claim_id: uuid.UUID,
    staff: GuardedStaffCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
) -> Response:
    claim = insurer_claim(session, staff=staff, claim_id=claim_id, now=identity.clock())
    comment = review_comment(session, keys=runtime.keys, claim=claim)
    return json_response(InsurerClaimOut.of_claim(claim, review_comment=comment))


@router.post(
    "/claims/{claim_id}/review",
    dependencies=[requires(Permission.INSURER_CLAIM_REVIEW)],
    response_model=InsurerClaimOut,
)
def post_claim_review(
    *,
    insurer_id: uuid.UUID,
    claim_id: uuid.UUID,
    body: ClaimReviewIn,
    staff: GuardedStaffCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
) -> Response:
    """Accept, or reject with a reason and an optional comment the practice reads (422 without a
    reason, with a reason on an acceptance, or with a comment that is not one paragraph of plain text)."""
    claim = review_claim(
        session=session,
        keys=runtime.keys,
        staff=staff,
        claim_id=claim_id,
        accept=body.decision == "accept",
        reason=body.reason,
        comment=body.comment,
        now=identity.clock(),
    )
    comment = review_comment(session, keys=runtime.keys, claim=claim)
    return json_response(InsurerClaimOut.of_claim(claim, review_comment=comment))
