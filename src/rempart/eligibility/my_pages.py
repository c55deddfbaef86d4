"""The beneficiary's portal: their rights per care domain and the ceilings left (``/me/rights``).

Thin: the person's contract comes from their account (nothing is typed), ``my_rights`` reads it and
records the look in their access log, and commits, before the page is made.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from rempart.eligibility.my_rights import my_rights
from rempart.identity.context import IdentityDep
from rempart.identity.deps import AnyCaller, client_address, requires
from rempart.identity.errors import PermissionDenied
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.web.deps import SessionDep
from rempart.web.pages import PageRouter, render

router = PageRouter()


@router.page("/me/rights", dependencies=[requires(Permission.ME_RIGHTS_READ)])
def rights(
    *, request: Request, viewer: ViewerDep, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> HTMLResponse:
    """My rights per care domain today: covered or not, the formula in words, third-party payment,
    prior approval, and what is left of each yearly ceiling."""
    if caller.insurer_id is None or caller.beneficiary_id is None:
        raise PermissionDenied("only an insured person has rights to show")
    mine = my_rights(
        session,
        insurer_id=caller.insurer_id,
        beneficiary_id=caller.beneficiary_id,
        account_id=caller.account_id,
        device=caller.credential_ref,
        address=client_address(request),
        now=identity.clock(),
    )
    return render(request, "beneficiary/rights.html", viewer=viewer, rights=mine)
