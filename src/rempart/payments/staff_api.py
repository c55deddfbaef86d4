"""Payment runs for insurer staff: ``/api/v1/insurers/{insurer_id}/payment-runs``. Answers "not
found" for another insurer's id (``GuardedStaffCaller``). Mounted by ``rempart.payments.api.router``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from rempart.detection.deps import GuardedStaffCaller
from rempart.identity.context import IdentityDep
from rempart.identity.deps import requires
from rempart.identity.permissions import Permission
from rempart.payments.schemas import PaymentRunIn, PaymentRunListOut, PaymentRunOut
from rempart.payments.service import payment_run, payment_runs, run_payments
from rempart.web.deps import SessionDep
from rempart.web.responses import json_response

router = APIRouter(prefix="/api/v1/insurers/{insurer_id}", tags=["insurer"])
Limit = Annotated[int, Query(ge=1, le=500)]


@router.post(
    "/payment-runs",
    dependencies=[requires(Permission.INSURER_PAYMENT_RUN_MANAGE)],
    response_model=PaymentRunOut,
    status_code=201,
)
def post_payment_run(
    insurer_id: uuid.UUID, body: PaymentRunIn, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    """Pay every accepted claim whose care started by ``cutoff_date``: one remittance per practice."""
    run = run_payments(session=session, staff=staff, cutoff=body.cutoff_date, now=identity.clock())
    _, remittances = payment_run(session, staff=staff, run_id=run.id)
    return json_response(PaymentRunOut.of(run, remittances), 201)


@router.get(
    "/payment-runs", dependencies=[requires(Permission.INSURER_PAYMENT_RUN_MANAGE)], response_model=PaymentRunListOut
)
def get_payment_runs(
    insurer_id: uuid.UUID, staff: GuardedStaffCaller, session: SessionDep, limit: Limit = 50
) -> Response:
    return json_response(
        PaymentRunListOut(payment_runs=[PaymentRunOut.of(r) for r in payment_runs(session, staff=staff, limit=limit)])
    )


@router.get(
    "/payment-runs/{run_id}",
    dependencies=[requires(Permission.INSURER_PAYMENT_RUN_MANAGE)],
    response_model=PaymentRunOut,
)
def get_payment_run(
    insurer_id: uuid.UUID, run_id: uuid.UUID, staff: GuardedStaffCaller, session: SessionDep
) -> Response:
    run, remittances = payment_run(session, staff=staff, run_id=run_id)
    return json_response(PaymentRunOut.of(run, remittances))
