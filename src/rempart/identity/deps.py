"""FastAPI dependencies: who is calling, and may they call this route.

Routes declare what they need; nothing is allowed by default::

    @router.post("/api/v1/rights-checks", dependencies=[requires(Permission.CARE_RIGHTS_CHECK_CREATE)])
    def create_rights_check(caller: PracticeCaller, session: SessionDep, ...): ...

``PracticeCaller``, ``StaffCaller`` and ``AnyCaller`` refuse to resolve on a route that declares no
permission, so forgetting ``requires`` locks the route instead of opening it. Routes that must be
reached without credentials (the token endpoint, login ceremonies) say so with ``PUBLIC``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from rempart.errors import NotFound
from rempart.identity.context import IdentityDep
from rempart.identity.errors import ActingProfessionalRefused, NotSignedIn, PermissionDenied
from rempart.identity.permissions import (
    INSURER_ROLES,
    Permission,
    Role,
    parse_scopes,
    permissions_of,
    permissions_of_scopes,
)
from rempart.identity.principal import Channel, PracticePrincipal, Principal, StaffPrincipal
from rempart.identity.sessions import CsrfRefused, principal_from_request, require_recent_passkey
from rempart.identity.tokens import authenticate_token, one_proof, path_as_sent
from rempart.professionals.service import is_valid_rpps
from rempart.tenancy import bind_tenant
from rempart.web.deps import SessionDep
from rempart.web.fhir_wire import is_fhir_path

ACTING_RPPS_HEADER = "X-Acting-RPPS"
# Where an insurer's API client may act: its insurer's routes. Elsewhere it holds no permission.
INSURER_API_PREFIX = "/api/v1/insurers/"


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def authenticated(request: Request, session: SessionDep, identity: IdentityDep) -> Principal:
    """The caller, from a DPoP-bound token (practice software) or a passkey session (humans)."""
    now = identity.clock()
    if "authorization" in request.headers:
        rpps = request.headers.get(ACTING_RPPS_HEADER, "")
        holder = authenticate_token(
            session=session,
            replay=identity.replay,
            authorization=request.headers.get("authorization"),
            dpop_proof=one_proof(request.headers.getlist("dpop")),
            method=request.method,
            url=identity.url_of(path_as_sent(request.scope)),
            now=now,
            acting_rpps=rpps if is_valid_rpps(rpps) else None,
        )
        if holder.insurer_id is not None:
            # An insurer's nightly job: no person, no acting professional, its scopes' permissions
            # and only on its insurer's routes (``staff_caller`` answers 404 for another insurer).
            on_insurer_routes = request.url.path.startswith(INSURER_API_PREFIX)
            return Principal(
                channel=Channel.API,
                roles=frozenset(),
                permissions=permissions_of_scopes(parse_scopes(holder.scopes)) if on_insurer_routes else frozenset(),
                address=client_address(request),
                credential_ref="tok:" + holder.token_hash.hex()[:16],
                insurer_id=holder.insurer_id,
                client_id=holder.client_id,
            )
        if not is_valid_rpps(rpps):
            raise ActingProfessionalRefused(f"name the acting professional's RPPS in the {ACTING_RPPS_HEADER} header")
        professional = holder.professional
        if professional is None:
            # An RPPS unknown to Rempart and one of another practice answer the same.
            raise ActingProfessionalRefused("this professional does not act for this practice")
        roles = frozenset({Role.PRACTICE_SOFTWARE})
        return Principal(
            # The FHIR facade is the same practice software on the same token: its own channel, so
            # that the access log, detection and the kill switches name it.
            channel=Channel.FHIR if is_fhir_path(request.url.path) else Channel.API,
            roles=roles,
            permissions=permissions_of(roles),
            address=client_address(request),
            credential_ref="tok:" + holder.token_hash.hex()[:16],
            practice_id=holder.practice_id,
            client_id=holder.client_id,
            professional_id=professional.id,
            rpps=professional.rpps,
            profession=professional.profession,
        )
    human = principal_from_request(request, session=session, identity=identity)
    if human is not None:
        return human
    raise NotSignedIn("sign in with a passkey, or call with a DPoP-bound access token")


AuthenticatedDep = Annotated[Principal, Depends(authenticated)]


# -- declaring permissions ----------------------------------------------------------------------


class PermissionCheck:
    """A route's required permissions; the caller must hold every one of them."""

    def __init__(self, permissions: tuple[Permission, ...]) -> None:
        if not permissions:
            raise ValueError("declare at least one permission")
        self.permissions = permissions

    async def __call__(self, principal: AuthenticatedDep) -> Principal:
        missing = [p for p in self.permissions if not principal.can(p)]
        if missing:
            raise PermissionDenied("your role does not allow this action")
        return principal


def requires(*permissions: Permission) -> Any:
    """``dependencies=[requires(Permission.X)]`` on a route: who may call it."""
    return Depends(PermissionCheck(permissions))


async def read_form_csrf(request: Request) -> None:
    """For HTML form posts: lift the ``csrf_token`` field so the session check can compare it.
    Declare it first: ``dependencies=[FORM_CSRF, requires(...)]``."""
    if request.headers.get("content-type", "").startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token")
        request.state.csrf_submitted = value if isinstance(value, str) else None


FORM_CSRF: Any = Depends(read_form_csrf)


async def recent_passkey(principal: AuthenticatedDep, identity: IdentityDep) -> None:
    """Sensitive actions: a passkey check within the last five minutes (step-up)."""
    require_recent_passkey(principal, identity.clock())


RECENT_PASSKEY: Any = Depends(recent_passkey)


async def public_route(request: Request, identity: IdentityDep) -> None:
    """Marks a route reachable without credentials (token endpoint, login ceremonies). A browser
    posting to one from another site is refused (login CSRF), whatever the route does next."""
    origin = request.headers.get("origin")
    if (
        request.method not in {"GET", "HEAD", "OPTIONS"}
        and origin is not None
        and origin.rstrip("/") != identity.origin
    ):
        raise CsrfRefused("this request came from another site")


PUBLIC: Any = Depends(public_route)

_CACHE_ATTRIBUTE = "_rempart_declared_permissions"


def _walk(dependant: Dependant) -> list[Any]:
    calls = []
    for dep in dependant.dependencies:
        calls.append(dep.call)
        calls.extend(_walk(dep))
    return calls


def declared_permissions(route: APIRoute) -> frozenset[Permission]:
    found: frozenset[Permission] | None = getattr(route, _CACHE_ATTRIBUTE, None)
    if found is None:
        found = frozenset(
            p for call in _walk(route.dependant) if isinstance(call, PermissionCheck) for p in call.permissions
        )
        setattr(route, _CACHE_ATTRIBUTE, found)
    return found


def is_public(route: APIRoute) -> bool:
    return public_route in _walk(route.dependant)


def _route_permissions(request: Request) -> frozenset[Permission]:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return frozenset()
    return declared_permissions(route)


def require_declared(request: Request, principal: Principal) -> None:
    declared = _route_permissions(request)
    if not declared:
        # Deny by default: a route that forgot to declare its permission opens to nobody.
        raise PermissionDenied("this route declares no permission")
    if not all(principal.can(p) for p in declared):
        raise PermissionDenied("your role does not allow this action")


# -- typed callers ----------------------------------------------------------------------------


async def any_caller(request: Request, principal: AuthenticatedDep) -> Principal:
    require_declared(request, principal)
    return principal


async def practice_caller(request: Request, principal: AuthenticatedDep) -> PracticePrincipal:
    require_declared(request, principal)
    if principal.practice_id is None or principal.professional_id is None or principal.rpps is None:
        raise PermissionDenied("only a professional acting for a practice may call this")
    assert principal.profession is not None  # set with the professional
    return PracticePrincipal(
        practice_id=principal.practice_id,
        professional_id=principal.professional_id,
        rpps=principal.rpps,
        profession=principal.profession,
        permissions=principal.permissions,
        channel=principal.channel,
        client_id=principal.client_id,
        account_id=principal.account_id,
        address=principal.address,
        credential_ref=principal.credential_ref,
        authenticated_at=principal.authenticated_at,
    )


def staff_caller(request: Request, principal: AuthenticatedDep, session: SessionDep) -> StaffPrincipal:
    """An insurer's staff member, or one of the insurer's API clients. On ``/insurers/{insurer_id}/...``
    routes another insurer's id answers "not found", and the session is bound to the caller's
    insurer (RLS)."""
    require_declared(request, principal)
    # An insurer's client: its token named its insurer and no practice (``authenticated``).
    insurer_client = principal.client_id is not None and principal.practice_id is None
    acting = principal.client_id if insurer_client else principal.account_id
    if principal.insurer_id is None or acting is None or not (insurer_client or principal.roles & INSURER_ROLES):
        raise PermissionDenied("only an insurer's staff may call this")
    path_insurer = request.path_params.get("insurer_id")
    if path_insurer is not None:
        try:
            wanted = uuid.UUID(str(path_insurer))
        except ValueError:
            raise NotFound("not found") from None
        if wanted != principal.insurer_id:
            raise NotFound("not found")
    bind_tenant(session, principal.insurer_id)
    return StaffPrincipal(
        insurer_id=principal.insurer_id,
        account_id=acting,
        roles=principal.roles & INSURER_ROLES,
        permissions=principal.permissions,
        address=principal.address,
        credential_ref=principal.credential_ref,
        client_id=principal.client_id if insurer_client else None,
    )


AnyCaller = Annotated[Principal, Depends(any_caller)]
PracticeCaller = Annotated[PracticePrincipal, Depends(practice_caller)]
StaffCaller = Annotated[StaffPrincipal, Depends(staff_caller)]
