"""The insurer API: products, members imports, claims review, prior approvals waiting for a person,
payment runs. Every route is ``/api/v1/insurers/{insurer_id}/...`` and answers "not found" for
another insurer's id (``StaffCaller``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, File, Query, Response, UploadFile

from rempart.approvals.schemas import ApprovalDecisionIn, ApprovalListOut, PriorApprovalOut
from rempart.approvals.service import decide_approval, pending_approvals
from rempart.claims.models import ClaimStatus
from rempart.claims.schemas import ClaimReviewIn, InsurerClaimListOut, InsurerClaimOut
from rempart.claims.service import insurer_claim, insurer_claims, review_claim
from rempart.detection.deps import GuardedStaffCaller as StaffCaller
from rempart.identity.context import IdentityDep
from rempart.identity.deps import requires
from rempart.identity.permissions import Permission
from rempart.insurers import imports
from rempart.insurers.schemas import (
    ImportJobListOut,
    ImportJobOut,
    ProductIn,
    ProductListOut,
    ProductOut,
    ProductUpdateIn,
)
from rempart.insurers.service import (
    do_create_product,
    do_delete_product,
    do_update_product,
    list_products,
    product_by_code,
)
from rempart.payments.schemas import PaymentRunIn, PaymentRunListOut, PaymentRunOut
from rempart.payments.service import payment_run, payment_runs, run_payments
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.responses import json_response

router = APIRouter(prefix="/api/v1/insurers/{insurer_id}", tags=["insurer"])
Limit = Annotated[int, Query(ge=1, le=500)]


# -- products ----------------------------------------------------------------------------------


@router.get("/products", dependencies=[requires(Permission.INSURER_PRODUCT_READ)], response_model=ProductListOut)
def get_products(insurer_id: uuid.UUID, staff: StaffCaller, session: SessionDep) -> Response:
    return json_response(ProductListOut(products=[ProductOut.of(p) for p in list_products(session, staff.insurer_id)]))


@router.post(
    "/products",
    dependencies=[requires(Permission.INSURER_PRODUCT_MANAGE)],
    response_model=ProductOut,
    status_code=201,
)
def post_product(insurer_id: uuid.UUID, body: ProductIn, staff: StaffCaller, session: SessionDep) -> Response:
    product = do_create_product(
        session=session,
        insurer_id=staff.insurer_id,
        code=body.code,
        name=body.name,
        guarantees=[g.spec() for g in body.guarantees],
    )
    return json_response(ProductOut.of(product), 201)


@router.get("/products/{code}", dependencies=[requires(Permission.INSURER_PRODUCT_READ)], response_model=ProductOut)
def get_product(insurer_id: uuid.UUID, code: str, staff: StaffCaller, session: SessionDep) -> Response:
    return json_response(ProductOut.of(product_by_code(session, staff.insurer_id, code)))


@router.put("/products/{code}", dependencies=[requires(Permission.INSURER_PRODUCT_MANAGE)], response_model=ProductOut)
def put_product(
    insurer_id: uuid.UUID, code: str, body: ProductUpdateIn, staff: StaffCaller, session: SessionDep
) -> Response:
    product = do_update_product(
        session=session,
        insurer_id=staff.insurer_id,
        code=code,
        name=body.name,
        guarantees=[g.spec() for g in body.guarantees],
    )
    return json_response(ProductOut.of(product))


@router.delete("/products/{code}", dependencies=[requires(Permission.INSURER_PRODUCT_MANAGE)], status_code=204)
def remove_product(insurer_id: uuid.UUID, code: str, staff: StaffCaller, session: SessionDep) -> Response:
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
    staff: StaffCaller,
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
    insurer_id: uuid.UUID, staff: StaffCaller, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """The latest jobs; one whose process is gone (a restart) is reported failed."""
    jobs = imports.import_jobs(session, runtime=runtime, staff=staff)
    return json_response(ImportJobListOut(jobs=[ImportJobOut.of(j) for j in jobs]))


@router.get(
    "/members-imports/{job_id}",
    dependencies=[requires(Permission.INSURER_MEMBER_IMPORT)],
    response_model=ImportJobOut,
)
def get_members_import(
    insurer_id: uuid.UUID, job_id: uuid.UUID, staff: StaffCaller, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """The job's progress (rows done of rows total) and, once done, its report; a job whose process
    is gone (a restart) or whose upload is lost is reported failed, "interrupted: upload the file again"."""
    job = imports.import_job(session, runtime=runtime, staff=staff, job_id=job_id)
    return json_response(ImportJobOut.of(job))


# -- claims review ------------------------------------------------------------------------------


@router.get("/claims", dependencies=[requires(Permission.INSURER_CLAIM_READ)], response_model=InsurerClaimListOut)
def get_claims(
    *,
    insurer_id: uuid.UUID,
    staff: StaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    status: ClaimStatus | None = None,
    limit: Limit = 100,
) -> Response:
    """The insurer's claims, oldest first (``status=pending_review`` for the review queue)."""
    claims = insurer_claims(session, staff=staff, now=identity.clock(), status=status, limit=limit)
    return json_response(InsurerClaimListOut(claims=[InsurerClaimOut.of_claim(c, with_lines=False) for c in claims]))


@router.get(
    "/claims/{claim_id}", dependencies=[requires(Permission.INSURER_CLAIM_READ)], response_model=InsurerClaimOut
)
def get_claim(
    insurer_id: uuid.UUID, claim_id: uuid.UUID, staff: StaffCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    claim = insurer_claim(session, staff=staff, claim_id=claim_id, now=identity.clock())
    return json_response(InsurerClaimOut.of_claim(claim))


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
    staff: StaffCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> Response:
    """Accept or reject a claim waiting for review."""
    claim = review_claim(
        session=session, staff=staff, claim_id=claim_id, accept=body.decision == "accept", now=identity.clock()
    )
    return json_response(InsurerClaimOut.of_claim(claim))


# -- prior approvals waiting for a person ---------------------------------------------------------


@router.get("/prior-approvals", dependencies=[requires(Permission.INSURER_CLAIM_READ)], response_model=ApprovalListOut)
def get_pending_approvals(
    insurer_id: uuid.UUID, staff: StaffCaller, session: SessionDep, identity: IdentityDep, limit: Limit = 100
) -> Response:
    approvals = pending_approvals(session, staff=staff, now=identity.clock(), limit=limit)
    return json_response(ApprovalListOut(prior_approvals=[PriorApprovalOut.of(a) for a in approvals]))


@router.post(
    "/prior-approvals/{approval_id}/decision",
    dependencies=[requires(Permission.INSURER_CLAIM_REVIEW)],
    response_model=PriorApprovalOut,
)
def post_approval_decision(
    *,
    insurer_id: uuid.UUID,
    approval_id: uuid.UUID,
    body: ApprovalDecisionIn,
    staff: StaffCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> Response:
    approval = decide_approval(
        session=session, staff=staff, approval_id=approval_id, grant=body.decision == "grant", now=identity.clock()
    )
    return json_response(PriorApprovalOut.of(approval))


# -- payment runs -------------------------------------------------------------------------------


@router.post(
    "/payment-runs",
    dependencies=[requires(Permission.INSURER_PAYMENT_RUN_MANAGE)],
    response_model=PaymentRunOut,
    status_code=201,
)
def post_payment_run(
    insurer_id: uuid.UUID, body: PaymentRunIn, staff: StaffCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    """Pay every accepted claim whose care started by ``cutoff_date``: one remittance per practice."""
    run = run_payments(session=session, staff=staff, cutoff=body.cutoff_date, now=identity.clock())
    _, remittances = payment_run(session, staff=staff, run_id=run.id)
    return json_response(PaymentRunOut.of(run, remittances), 201)


@router.get(
    "/payment-runs", dependencies=[requires(Permission.INSURER_PAYMENT_RUN_MANAGE)], response_model=PaymentRunListOut
)
def get_payment_runs(insurer_id: uuid.UUID, staff: StaffCaller, session: SessionDep, limit: Limit = 50) -> Response:
    return json_response(
        PaymentRunListOut(payment_runs=[PaymentRunOut.of(r) for r in payment_runs(session, staff=staff, limit=limit)])
    )


@router.get(
    "/payment-runs/{run_id}",
    dependencies=[requires(Permission.INSURER_PAYMENT_RUN_MANAGE)],
    response_model=PaymentRunOut,
)
def get_payment_run(insurer_id: uuid.UUID, run_id: uuid.UUID, staff: StaffCaller, session: SessionDep) -> Response:
    run, remittances = payment_run(session, staff=staff, run_id=run_id)
    return json_response(PaymentRunOut.of(run, remittances))
