"""Remittance advices for practice software: ``/api/v1/remittances``; insurer staff run payments
through ``staff_api`` (mounted here too)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from rempart.detection.deps import GuardedPracticeCaller
from rempart.identity.context import IdentityDep
from rempart.identity.deps import requires
from rempart.identity.permissions import Permission
from rempart.pagination import Cursor
from rempart.payments.schemas import RemittanceListOut, RemittanceOut
from rempart.payments.service import practice_remittances_page, view_remittance
from rempart.payments.staff_api import router as staff_router
from rempart.web.deps import SessionDep
from rempart.web.pagination import CursorParam, next_link, paged_json
from rempart.web.responses import json_response

practice_router = APIRouter(tags=["remittances"])


@practice_router.get(
    "/api/v1/remittances", dependencies=[requires(Permission.CARE_REMITTANCE_READ)], response_model=RemittanceListOut
)
def list_remittances(
    *,
    request: Request,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = CursorParam,
) -> Response:
    """What each insurer paid the practice, newest first (totals only: no patient is named), a page
    at a time (``next``)."""
    page = practice_remittances_page(session=session, caller=caller, limit=limit, cursor=Cursor.decode(cursor))
    link = next_link(request, page.next)
    shown = [RemittanceOut.of(r, amc_number=amc) for r, amc in page.items]
    return paged_json(RemittanceListOut(remittances=shown, next=link), link)


@practice_router.get(
    "/api/v1/remittances/{remittance_id}",
    dependencies=[requires(Permission.CARE_REMITTANCE_READ)],
    response_model=RemittanceOut,
)
def get_remittance(
    remittance_id: uuid.UUID, caller: GuardedPracticeCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    """One remittance with the claims it pays."""
    remittance, amc_number = view_remittance(
        session=session, caller=caller, remittance_id=remittance_id, now=identity.clock()
    )
    return json_response(RemittanceOut.of(remittance, with_lines=True, amc_number=amc_number))


# The domain's router, as the app mounts it: the practice's routes and the insurer staff's.
router = APIRouter()
router.include_router(practice_router)
router.include_router(staff_router)
