"""Claims for practice software: ``/api/v1/claims``; insurer staff review them through
``staff_api`` (mounted here too)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from rempart.claims.models import ClaimStatus
from rempart.claims.schemas import ClaimIn, ClaimListOut, ClaimOut
from rempart.claims.service import (
    ClaimOutcome,
    cancel_claim,
    correct_claim,
    practice_claims_page,
    review_comment,
    submit_claim,
    view_claim,
)
from rempart.claims.staff_api import router as staff_router
from rempart.detection.deps import DetectionDep, GuardedPracticeCaller
from rempart.idempotency import require_key
from rempart.identity.context import IdentityDep
from rempart.identity.deps import requires
from rempart.identity.permissions import Permission
from rempart.pagination import Cursor
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.pagination import CursorParam, next_link, paged_json
from rempart.web.responses import REPLAYED, IdempotencyKey, json_response

practice_router = APIRouter(tags=["claims"])


def _created(outcome: ClaimOutcome) -> Response:
    response = json_response(ClaimOut.of(outcome.claim), 200 if outcome.replayed else 201)
    if outcome.replayed:
        response.headers[REPLAYED] = "true"
    return response


@practice_router.post(
    "/api/v1/claims",
    dependencies=[requires(Permission.CARE_CLAIM_CREATE)],
    response_model=ClaimOut,
    status_code=201,
)
def create_claim(
    *,
    body: ClaimIn,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    identity: IdentityDep,
    detection: DetectionDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Bill the insurer; the answer is the adjudication (accepted, rejected with a reason, pending)."""
    key = require_key(idempotency_key)
    outcome = submit_claim(
        session=session, caller=caller, request=body.request(), idempotency_key=key, now=identity.clock()
    )
    # Detection learns of the claim once it is committed (submit_claim commits).
    detection.claimed(practice_id=caller.practice_id, beneficiary_id=outcome.claim.beneficiary_id)
    return _created(outcome)


@practice_router.get("/api/v1/claims", dependencies=[requires(Permission.CARE_CLAIM_READ)], response_model=ClaimListOut)
def list_claims(
    *,
    request: Request,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    identity: IdentityDep,
    status: ClaimStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = CursorParam,
) -> Response:
    """The practice's claims with every insurer, newest first, a page at a time (``next``)."""
    page = practice_claims_page(
        session=session,
        caller=caller,
        now=identity.clock(),
        status=status,
        limit=limit,
        cursor=Cursor.decode(cursor),
    )
    link = next_link(request, page.next)
    body = ClaimListOut(claims=[ClaimOut.of(c, with_lines=False) for c in page.items], next=link)
    return paged_json(body, link)


@practice_router.get(
    "/api/v1/claims/{claim_id}", dependencies=[requires(Permission.CARE_CLAIM_READ)], response_model=ClaimOut
)
def get_claim(
    *,
    claim_id: uuid.UUID,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
) -> Response:
    """One of the practice's claims; rejected after review, with the claims agent's reason and comment."""
    claim = view_claim(session=session, caller=caller, claim_id=claim_id, now=identity.clock())
    comment = review_comment(session, keys=runtime.keys, claim=claim)
    return json_response(ClaimOut.of(claim, review_comment=comment))


@practice_router.post(
    "/api/v1/claims/{claim_id}/corrections",
    dependencies=[requires(Permission.CARE_CLAIM_CREATE)],
    response_model=ClaimOut,
    status_code=201,
)
def create_correction(
    *,
    claim_id: uuid.UUID,
    body: ClaimIn,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    identity: IdentityDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A corrected resubmission: a new claim that supersedes this unpaid one."""
    key = require_key(idempotency_key)
    outcome = correct_claim(
        session=session,
        caller=caller,
        claim_id=claim_id,
        request=body.request(),
        idempotency_key=key,
        now=identity.clock(),
    )
    return _created(outcome)


@practice_router.post(
    "/api/v1/claims/{claim_id}/cancel", dependencies=[requires(Permission.CARE_CLAIM_CREATE)], response_model=ClaimOut
)
def cancel(claim_id: uuid.UUID, caller: GuardedPracticeCaller, session: SessionDep, identity: IdentityDep) -> Response:
    """Cancel an unpaid claim; cancelling twice is harmless."""
    claim = cancel_claim(session=session, caller=caller, claim_id=claim_id, now=identity.clock())
    return json_response(ClaimOut.of(claim))


# The domain's router, as the app mounts it: the practice's routes and the insurer staff's.
router = APIRouter()
router.include_router(practice_router)
router.include_router(staff_router)
