"""The insurer API: products and members imports. Every route is ``/api/v1/insurers/{insurer_id}/...``
and answers "not found" for another insurer's id (``GuardedStaffCaller``). The insurer staff's routes of the
care domains live in them: claims review in ``claims/staff_api.py``, prior approvals waiting for a
person in ``approvals/staff_api.py``, payment runs in ``payments/staff_api.py``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, File, Query, Request, Response, UploadFile

from rempart.detection.deps import GuardedStaffCaller
from rempart.fields import paris_day
from rempart.identity.context import IdentityDep
from rempart.identity.deps import RECENT_PASSKEY, requires
from rempart.identity.permissions import Permission
from rempart.identity.principal import StaffPrincipal
from rempart.insurers.schemas import (
    ImportJobListOut,
    ImportJobOut,
    ProductIn,
    ProductListOut,
    ProductOut,
    ProductRetireIn,
    ProductUpdateIn,
)
from rempart.insurers.service import (
    Actor,
    do_cancel_scheduled_change,
    do_create_product,
    do_delete_product,
    do_reopen_product,
    do_retire_product,
    do_update_product,
    product_by_code,
    products_page,
)
from rempart.members import imports
from rempart.pagination import Cursor
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.pagination import CursorParam, next_link, paged_json
from rempart.web.responses import json_response

router = APIRouter(prefix="/api/v1/insurers/{insurer_id}", tags=["insurer"])

# Changing, withdrawing a change, retiring or reopening a product: a passkey confirmed within the
# last minutes (step-up), and a security event of the staff member's account.
CHANGE = [requires(Permission.INSURER_PRODUCT_MANAGE), RECENT_PASSKEY]
Limit = Annotated[int, Query(ge=1, le=500)]


def _actor(staff: StaffPrincipal, identity: IdentityDep) -> Actor:
    return Actor(account_id=staff.account_id, at=identity.clock(), address=staff.address)


# -- products ----------------------------------------------------------------------------------


@router.get("/products", dependencies=[requires(Permission.INSURER_PRODUCT_READ)], response_model=ProductListOut)
def get_products(
    *,
    request: Request,
    insurer_id: uuid.UUID,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    limit: Limit = 100,
    cursor: str | None = CursorParam,
) -> Response:
    """The insurer's products, oldest first, a page at a time (``next``)."""
    today = paris_day(identity.clock())
    page = products_page(session, staff.insurer_id, limit=limit, cursor=Cursor.decode(cursor))
    link = next_link(request, page.next)
    return paged_json(ProductListOut(products=[ProductOut.of(p, today) for p in page.items], next=link), link)


@router.post(
    "/products",
    dependencies=[requires(Permission.INSURER_PRODUCT_MANAGE)],
    response_model=ProductOut,
    status_code=201,
)
def post_product(
    insurer_id: uuid.UUID, body: ProductIn, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    product = do_create_product(
        session=session,
        insurer_id=staff.insurer_id,
        code=body.code,
        name=body.name,
        guarantees=[g.spec() for g in body.guarantees],
        responsible=body.responsible,
    )
    return json_response(ProductOut.of(product, paris_day(identity.clock())), 201)


@router.get("/products/{code}", dependencies=[requires(Permission.INSURER_PRODUCT_READ)], response_model=ProductOut)
def get_product(
    insurer_id: uuid.UUID, code: str, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    return json_response(ProductOut.of(product_by_code(session, staff.insurer_id, code), paris_day(identity.clock())))


@router.put("/products/{code}", dependencies=CHANGE, response_model=ProductOut)
def put_product(
    *,
    insurer_id: uuid.UUID,
    code: str,
    body: ProductUpdateIn,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> Response:
    """New formulas for care given from ``effective_on`` (today if absent); earlier care keeps its own."""
    today = paris_day(identity.clock())
    product = do_update_product(
        session=session,
        actor=_actor(staff, identity),
        insurer_id=staff.insurer_id,
        code=code,
        name=body.name,
        guarantees=[g.spec() for g in body.guarantees],
        today=today,
        effective_on=body.effective_on,
        responsible=body.responsible,
    )
    return json_response(ProductOut.of(product, today))


@router.delete("/products/{code}/scheduled", dependencies=CHANGE, response_model=ProductOut)
def delete_scheduled_change(
    insurer_id: uuid.UUID, code: str, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    """Withdraw the change of formulas scheduled after today (409 if none is)."""
    today = paris_day(identity.clock())
    product = do_cancel_scheduled_change(
        session=session, actor=_actor(staff, identity), insurer_id=staff.insurer_id, code=code, today=today
    )
    return json_response(ProductOut.of(product, today))


@router.post("/products/{code}/retire", dependencies=CHANGE, response_model=ProductOut)
def retire_product(
    *,
    insurer_id: uuid.UUID,
    code: str,
    body: ProductRetireIn,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> Response:
    """Close the product to new members from ``retired_on``; its contracts go on under it until they
    end (none is moved). A product in use needs ``successor_code``: the open product new members go on
    instead, named by the members import's refusal (422 without it)."""
    today = paris_day(identity.clock())
    product = do_retire_product(
        session=session,
        actor=_actor(staff, identity),
        insurer_id=staff.insurer_id,
        code=code,
        on=body.retired_on,
        today=today,
        successor_code=body.successor_code,
    )
    return json_response(ProductOut.of(product, today))


@router.post("/products/{code}/reopen", dependencies=CHANGE, response_model=ProductOut)
def reopen_product(
    insurer_id: uuid.UUID, code: str, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    """Open a retired product to new members again (409 if it is open)."""
    product = do_reopen_product(session=session, actor=_actor(staff, identity), insurer_id=staff.insurer_id, code=code)
    return json_response(ProductOut.of(product, paris_day(identity.clock())))


@router.delete("/products/{code}", dependencies=[requires(Permission.INSURER_PRODUCT_MANAGE)], status_code=204)
def remove_product(insurer_id: uuid.UUID, code: str, staff: GuardedStaffCaller, session: SessionDep) -> Response:
    do_delete_product(session=session, insurer_id=staff.insurer_id, code=code)
    return Response(status_code=204)


# -- members imports ----------------------------------------------------------------------------


@router.post(
    "/members-imports",
    dependencies=[requires(Permission.INSURER_MEMBER_IMPORT)],
    response_model=ImportJobOut,
    status_code=202,
)
def post_members_import(
    *,
    insurer_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="CSV or NDJSON, the columns of `rempart members import`")],
    staff: GuardedStaffCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
    background: BackgroundTasks,
) -> Response:
    """Upload a members file; it is checked whole now, imported in the background."""
    job = imports.start_import(
        session=session,
        runtime=runtime,
        staff=staff,
        source=file.file,
        filename=file.filename or "members",
        now=identity.clock(),
    )
    background.add_task(imports.run_import, runtime, insurer_id=job.insurer_id, job_id=job.id)
    return json_response(ImportJobOut.of(job), 202)


@router.get(
    "/members-imports", dependencies=[requires(Permission.INSURER_MEMBER_IMPORT)], response_model=ImportJobListOut
)
def get_members_imports(
    *,
    request: Request,
    insurer_id: uuid.UUID,
    staff: GuardedStaffCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    limit: Limit = 50,
    cursor: str | None = CursorParam,
) -> Response:
    """The jobs, newest first, a page at a time (``next``); one whose process is gone (a restart) is
    reported failed."""
    page = imports.import_jobs_page(session, runtime=runtime, staff=staff, limit=limit, cursor=Cursor.decode(cursor))
    link = next_link(request, page.next)
    return paged_json(ImportJobListOut(jobs=[ImportJobOut.of(j) for j in page.items], next=link), link)


@router.get(
    "/members-imports/{job_id}",
    dependencies=[requires(Permission.INSURER_MEMBER_IMPORT)],
    response_model=ImportJobOut,
)
def get_members_import(
    insurer_id: uuid.UUID, job_id: uuid.UUID, staff: GuardedStaffCaller, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """The job's progress (rows done of rows total) and, once done, its report; a job whose process
    is gone (a restart) or whose upload is lost is reported failed, "interrupted: upload the file again"."""
    job = imports.import_job(session, runtime=runtime, staff=staff, job_id=job_id)
    return json_response(ImportJobOut.of(job))
