"""Identity API: the OAuth token endpoint for practice software."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Header, Request

from rempart.identity import (
    account_pages,
    auth_api,
    insurer_admin_api,
    insurer_clients_api,
    me_api,
    pages,
    platform_api,
    practice_admin_api,
    practice_pages,
)
from rempart.identity.context import TOKEN_PATH, IdentityDep
from rempart.identity.deps import PUBLIC, PracticeCaller, client_address, requires
from rempart.identity.permissions import Permission
from rempart.identity.schemas import PracticeCallerOut, TokenResponse
from rempart.identity.tokens import do_issue_token, one_proof
from rempart.web.deps import SessionDep

router = APIRouter(tags=["identity"])


@router.post(TOKEN_PATH, dependencies=[PUBLIC], response_model=TokenResponse)
def token(
    *,
    request: Request,
    session: SessionDep,
    identity: IdentityDep,
    grant_type: Annotated[str, Form()] = "",
    client_assertion_type: Annotated[str, Form()] = "",
    client_assertion: Annotated[str, Form(max_length=8192)] = "",
    dpop: Annotated[str | None, Header(alias="DPoP", max_length=8192)] = None,
) -> TokenResponse:
    """Exchange a signed client assertion (RFC 7523) and a DPoP proof (RFC 9449) for a token."""
    _client, issued = do_issue_token(
        session=session,
        replay=identity.replay,
        form={
            "grant_type": grant_type,
            "client_assertion_type": client_assertion_type,
            "client_assertion": client_assertion,
        },
        dpop_proof=one_proof(request.headers.getlist("dpop")),  # ``dpop`` bounds and documents it
        token_url=identity.token_url,
        now=identity.clock(),
        address=client_address(request),
    )
    return TokenResponse(access_token=issued.access_token, expires_in=issued.expires_in)


@router.get(
    "/api/v1/auth/whoami", dependencies=[requires(Permission.CARE_CALLER_READ)], response_model=PracticeCallerOut
)
def whoami(caller: PracticeCaller) -> PracticeCallerOut:
    """The practice, client and acting professional this call is made for."""
    return PracticeCallerOut(
        practice_id=str(caller.practice_id),
        client_id=str(caller.client_id) if caller.client_id else None,
        professional_id=str(caller.professional_id),
        rpps=caller.rpps,
        profession=caller.profession.value,
        channel=caller.channel.value,
        permissions=sorted(p.value for p in caller.permissions),
    )


# One router for the whole domain, so that app.py mounts identity with one line.
for _sub in (
    auth_api.router,
    me_api.router,
    insurer_admin_api.router,
    insurer_clients_api.router,
    practice_admin_api.router,
    platform_api.router,
    pages.router,
    account_pages.router,
    practice_pages.router,
):
    router.include_router(_sub)
