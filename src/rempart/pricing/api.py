"""Quotes (ROC "CLC") for a checked patient: ``/api/v1/quotes``."""

from __future__ import annotations

from fastapi import APIRouter, Response

from rempart.detection.deps import GuardedPracticeCaller
from rempart.identity.context import IdentityDep
from rempart.identity.deps import requires
from rempart.identity.permissions import Permission
from rempart.pricing.schemas import QuoteIn, QuoteOut
from rempart.pricing.service import quote_for_check
from rempart.web.deps import SessionDep
from rempart.web.responses import json_response

router = APIRouter(tags=["quotes"])


@router.post("/api/v1/quotes", dependencies=[requires(Permission.CARE_QUOTE_CREATE)], response_model=QuoteOut)
def create_quote(body: QuoteIn, caller: GuardedPracticeCaller, session: SessionDep, identity: IdentityDep) -> Response:
    """The insurer's share, the patient's remainder and the ceilings consumed, per line of care."""
    lines = [line.care_line() for line in body.lines]
    result = quote_for_check(session=session, caller=caller, check_id=body.check_id, lines=lines, now=identity.clock())
    return json_response(QuoteOut.of(result, lines))
