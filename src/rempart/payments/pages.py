"""The portal's remittance pages: what each insurer paid the practice, and the claims each payment
covers (totals and claims only: no patient is named)."""

from __future__ import annotations

import uuid

from fastapi import Request
from fastapi.responses import HTMLResponse

from rempart.detection.deps import GuardedPracticeCaller
from rempart.identity.context import IdentityDep
from rempart.identity.deps import requires
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.payments.service import practice_remittances, view_remittance
from rempart.web.deps import SessionDep
from rempart.web.pages import PageRouter, render

router = PageRouter()


@router.page("/remittances", dependencies=[requires(Permission.CARE_REMITTANCE_READ)])
def remittances_list(
    request: Request, viewer: ViewerDep, caller: GuardedPracticeCaller, session: SessionDep
) -> HTMLResponse:
    remittances = practice_remittances(session=session, caller=caller)
    return render(request, "payments/list.html", viewer=viewer, remittances=remittances)


@router.page("/remittances/{remittance_id}", dependencies=[requires(Permission.CARE_REMITTANCE_READ)])
def remittance_detail(
    request: Request,
    *,
    remittance_id: uuid.UUID,
    viewer: ViewerDep,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> HTMLResponse:
    remittance, amc_number = view_remittance(
        session=session, caller=caller, remittance_id=remittance_id, now=identity.clock()
    )
    return render(request, "payments/detail.html", viewer=viewer, remittance=remittance, amc_number=amc_number)
