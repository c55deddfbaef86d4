"""Routes of the access log: the beneficiary's and the insurer's views, witness heads, break-glass.

The sealer runs beside them in each app process, started and stopped by the app's lifespan
(``rempart.runtime.Runtime.new_sealer``).
"""

from __future__ import annotations

import base64
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import TypeAdapter

from rempart.audit.access_log import beneficiary_access_log, do_read_insurer_access_log, do_set_staff_names_shown
from rempart.audit.breakglass import (
    do_decide_break_glass,
    do_open_break_glass,
    do_request_break_glass,
    do_revoke_break_glass,
    grants_page,
)
from rempart.audit.keys import LocalSigningKeys
from rempart.audit.models import ActorKind, BreakGlassStatus, Channel
from rempart.audit.proofs import prove_consistency
from rempart.audit.schemas import (
    AccessLogOut,
    BeneficiaryIdentityOut,
    BreakGlassGrantOut,
    BreakGlassRequestIn,
    CheckpointHeadOut,
    ConsistencyProofOut,
    InsurerAccessLogOut,
    StaffNamesIn,
    WitnessOut,
    access_log_out,
    insurer_access_log_out,
)
from rempart.audit.sealing import LOG_NAME
from rempart.audit.service import Actor
from rempart.audit.witness import signed_heads
from rempart.detection.deps import GuardedStaffCaller
from rempart.errors import NotFound, Unauthenticated
from rempart.fields import UtcDatetime
from rempart.identity.context import IdentityDep
from rempart.identity.deps import RECENT_PASSKEY, AnyCaller, client_address, requires
from rempart.identity.permissions import Permission
from rempart.identity.principal import Principal
from rempart.logs import get_logger
from rempart.pagination import Cursor
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.pagination import CursorParam, next_link, paged_json, with_next

log = get_logger("rempart.audit.api")


router = APIRouter(prefix="/api/v1", tags=["access log"])
Lang = Literal["en", "fr"]
# Checkpoint numbers are BIGINT: past this, SQLite cannot bind the number and PostgreSQL refuses it.
MAX_CHECKPOINT = 2**63 - 1


def audit_keys(runtime: RuntimeDep) -> LocalSigningKeys:
    # Not async: the first use may read (or create) the key ring file.
    return runtime.signing_keys


AuditKeysDep = Annotated[LocalSigningKeys, Depends(audit_keys)]


def _operator(caller: Principal) -> uuid.UUID:
    if caller.account_id is None:
        raise Unauthenticated("sign in with a passkey")
    return caller.account_id


# -- the beneficiary ---------------------------------------------------------------------------


@router.get(
    "/me/access-log",
    dependencies=[requires(Permission.ME_ACCESS_LOG_READ)],
    response_model=AccessLogOut,
    summary="Who accessed my data, when, why and what",
)
def my_access_log(
    *,
    request: Request,
    caller: AnyCaller,
    session: SessionDep,
    lang: Lang = "en",
    cursor: str | None = CursorParam,
    limit: int = Query(default=50, ge=1, le=200),
) -> Response:
    """Newest first, a page at a time (``next``)."""
    if caller.beneficiary_id is None or caller.insurer_id is None:
        raise NotFound("no access log for this account")
    page = beneficiary_access_log(
        session,
        insurer_id=caller.insurer_id,
        beneficiary_id=caller.beneficiary_id,
        lang=lang,
        cursor=cursor,
        limit=limit,
    )
    link = next_link(request, page.next_cursor)
    return paged_json(access_log_out(page, link), link)


# -- the insurer (controller) --------------------------------------------------------------------


@router.get(
    "/insurers/{insurer_id}/access-log",
    dependencies=[requires(Permission.INSURER_ACCESS_LOG_READ)],
    response_model=InsurerAccessLogOut,
    summary="Accesses to this insurer's members (the reading is recorded)",
)
def insurer_log(
    *,
    request: Request,
    insurer_id: uuid.UUID,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    since: UtcDatetime | None = None,
    beneficiary_id: uuid.UUID | None = None,
    practice_id: uuid.UUID | None = None,
    lang: Lang = "en",
    cursor: str | None = CursorParam,
    limit: int = Query(default=100, ge=1, le=500),
) -> Response:
    """Newest first, a page at a time (``next``)."""
    page = do_read_insurer_access_log(
        session,
        insurer_id=staff.insurer_id,
        reader=Actor(ActorKind.INSURER_STAFF, id=staff.account_id),
        channel=Channel.BACKOFFICE,
        address=staff.address,
        device=staff.credential_ref,
        since=since,
        beneficiary_id=beneficiary_id,
        practice_id=practice_id,
        lang=lang,
        cursor=cursor,
        limit=limit,
        now=identity.clock(),
    )
    link = next_link(request, page.next_cursor)
    return paged_json(insurer_access_log_out(page, link), link)


@router.put(
    "/insurers/{insurer_id}/access-log/policy",
    dependencies=[requires(Permission.INSURER_ACCESS_LOG_MANAGE), RECENT_PASSKEY],
    summary="Whether members see staff names in their access log",
)
def insurer_log_policy(
    insurer_id: uuid.UUID, body: StaffNamesIn, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep
) -> dict[str, bool]:
    do_set_staff_names_shown(session, insurer_id=staff.insurer_id, shown=body.show_staff_names, now=identity.clock())
    return {"show_staff_names": body.show_staff_names}


@router.get(
    "/insurers/{insurer_id}/access-log/checkpoints",
    dependencies=[requires(Permission.INSURER_ACCESS_LOG_READ)],
    response_model=WitnessOut,
    summary="Signed checkpoint heads, for the insurer to keep as a witness",
)
def witness_heads(
    *,
    insurer_id: uuid.UUID,
    staff: GuardedStaffCaller,
    session: SessionDep,
    keys: AuditKeysDep,
    since: int = Query(default=1, ge=1, le=MAX_CHECKPOINT),
    limit: int = Query(default=1000, ge=1, le=10_000),
) -> WitnessOut:
    rows = signed_heads(session, since=since, limit=limit)
    return WitnessOut(
        log=LOG_NAME,
        jwks=keys.public_keys().jwks(),
        heads=[CheckpointHeadOut(number=n, head=h, signature=base64.b64encode(sig).decode()) for n, h, sig in rows],
    )


@router.get(
    "/insurers/{insurer_id}/access-log/consistency",
    dependencies=[requires(Permission.INSURER_ACCESS_LOG_READ)],
    response_model=ConsistencyProofOut,
    summary="Proof that a later checkpoint extends one the insurer kept (RFC 9162 consistency)",
)
def consistency_proof(
    *,
    insurer_id: uuid.UUID,
    staff: GuardedStaffCaller,
    session: SessionDep,
    old: Annotated[int, Query(alias="from", ge=1, le=MAX_CHECKPOINT)],
    new: Annotated[int | None, Query(alias="to", ge=1, le=MAX_CHECKPOINT)] = None,
) -> ConsistencyProofOut:
    return ConsistencyProofOut(**prove_consistency(session.connection(), old=old, new=new))


# -- break-glass (platform operators) -----------------------------------------------------------

_REQUEST = requires(Permission.SECURITY_BREAK_GLASS_REQUEST)
_APPROVE = requires(Permission.SECURITY_BREAK_GLASS_APPROVE)
_GRANT_LIST = TypeAdapter(list[BreakGlassGrantOut])


@router.post(
    "/break-glass", dependencies=[_REQUEST, RECENT_PASSKEY], response_model=BreakGlassGrantOut, status_code=201
)
def ask_break_glass(
    body: BreakGlassRequestIn, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> BreakGlassGrantOut:
    grant = do_request_break_glass(
        session,
        operator_id=_operator(caller),
        insurer_id=body.insurer_id,
        beneficiary_id=body.beneficiary_id,
        reason=body.reason,
        ticket=body.ticket,
        minutes=body.minutes,
        now=identity.clock(),
    )
    return BreakGlassGrantOut.of(grant)


@router.get("/break-glass", dependencies=[_REQUEST], response_model=list[BreakGlassGrantOut])
def list_break_glass(
    *,
    request: Request,
    caller: AnyCaller,
    session: SessionDep,
    status: BreakGlassStatus | None = None,
    limit: int = Query(default=100, ge=1, le=500),
    cursor: str | None = CursorParam,
) -> Response:
    """The grants, newest first, a page at a time: the answer stays a list, so the next page is in the
    ``Link`` header only."""
    page = grants_page(session, status=status, limit=limit, cursor=Cursor.decode(cursor))
    shown = _GRANT_LIST.dump_json([BreakGlassGrantOut.of(g) for g in page.items])
    return with_next(Response(shown, media_type="application/json"), next_link(request, page.next))


def _decide(grant_id: uuid.UUID, approve: bool, caller: Principal, session: Any, identity: Any) -> BreakGlassGrantOut:
    grant = do_decide_break_glass(
        session, grant_id=grant_id, operator_id=_operator(caller), approve=approve, now=identity.clock()
    )
    return BreakGlassGrantOut.of(grant)


@router.post(
    "/break-glass/{grant_id}/approve", dependencies=[_APPROVE, RECENT_PASSKEY], response_model=BreakGlassGrantOut
)
def approve_break_glass(
    grant_id: uuid.UUID, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> BreakGlassGrantOut:
    return _decide(grant_id, True, caller, session, identity)


@router.post("/break-glass/{grant_id}/refuse", dependencies=[_APPROVE], response_model=BreakGlassGrantOut)
def refuse_break_glass(
    grant_id: uuid.UUID, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> BreakGlassGrantOut:
    return _decide(grant_id, False, caller, session, identity)


@router.post("/break-glass/{grant_id}/revoke", dependencies=[_REQUEST], response_model=BreakGlassGrantOut)
def end_break_glass(
    grant_id: uuid.UUID, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> BreakGlassGrantOut:
    grant = do_revoke_break_glass(session, grant_id=grant_id, operator_id=_operator(caller), now=identity.clock())
    return BreakGlassGrantOut.of(grant)


@router.get(
    "/break-glass/{grant_id}/beneficiary",
    dependencies=[_REQUEST, RECENT_PASSKEY],
    response_model=BeneficiaryIdentityOut,
    summary="The beneficiary's identity, while the approved grant lasts (recorded)",
)
def read_under_break_glass(
    grant_id: uuid.UUID, request: Request, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> BeneficiaryIdentityOut:
    found = do_open_break_glass(
        session,
        keys=request.app.state.runtime.keys,
        grant_id=grant_id,
        operator_id=_operator(caller),
        now=identity.clock(),
        address=client_address(request),
        device=caller.credential_ref,
    )
    return BeneficiaryIdentityOut.of(found)
