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
from rempart.payments.approval import do_approve_run, do_ask_for_run
from rempart.payments.schemas import PaymentRunIn, PaymentRunListOut, PaymentRunOut, RunRequestOut
from rempart.payments.service import payment_run, payment_runs
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
    """Pay every accepted claim whose care started by ``cutoff_date``: one remittance per practice.
    From 50,000 € on, the run waits for a second staff member (``202``, the request's id): the same
    rule as the back office's, so that the API is no way around it."""
    asked = do_ask_for_run(session, staff=staff, cutoff=body.cutoff_date, now=identity.clock())
    if asked.request is not None:
        return json_response(RunRequestOut.of(asked.request), 202)
    assert asked.run is not None
    _, remittances = payment_run(session, staff=staff, run_id=asked.run.id)
    return json_response(PaymentRunOut.of(asked.run, remittances), 201)


@router.post(
    "/payment-run-requests/{request_id}/approve",
    dependencies=[requires(Permission.INSURER_PAYMENT_RUN_MANAGE)],
    response_model=PaymentRunOut,
    status_code=201,
)
def approve_payment_run(
    insurer_id: uuid.UUID, request_id: uuid.UUID, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    """A second staff member approves a waiting run request (never its requester): the run is made."""
    run = do_approve_run(session, staff=staff, request_id=request_id, now=identity.clock())
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
