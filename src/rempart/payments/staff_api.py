"""Payment runs for insurer staff: ``/api/v1/insurers/{insurer_id}/payment-runs``. Answers "not
found" for another insurer's id (``GuardedStaffCaller``). Mounted by ``rempart.payments.api.router``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from rempart.detection.deps import GuardedStaffCaller
from rempart.idempotency import require_key
from rempart.identity.context import IdentityDep
from rempart.identity.deps import requires
from rempart.identity.permissions import Permission
from rempart.pagination import Cursor
from rempart.payments.approval import do_approve_run, do_ask_for_run
from rempart.payments.schemas import PaymentRunIn, PaymentRunListOut, PaymentRunOut, RunRequestOut
from rempart.payments.service import payment_run, payment_runs_page
from rempart.web.deps import SessionDep
from rempart.web.pagination import CursorParam, next_link, paged_json
from rempart.web.responses import REPLAYED, IdempotencyKey, json_response

router = APIRouter(prefix="/api/v1/insurers/{insurer_id}", tags=["insurer"])
Limit = Annotated[int, Query(ge=1, le=500)]


@router.post(
    "/payment-runs",
    dependencies=[requires(Permission.INSURER_PAYMENT_RUN_MANAGE)],
    response_model=PaymentRunOut,
    status_code=201,
)
def post_payment_run(
    *,
    insurer_id: uuid.UUID,
    body: PaymentRunIn,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Pay every accepted claim whose care started by ``cutoff_date``: one remittance per practice.
    From 50,000 € on, the run waits for a second staff member (``202``, the request's id): the same
    rule as the back office's, so that the API is no way around it. Nothing due up to that day: 409
    ``nothing-due``, and no run. With an ``Idempotency-Key``, the same key again answers with the first
    run or request (``Idempotent-Replayed: true``; 200 for a run), a key reused for another day 422."""
    key = require_key(idempotency_key) if idempotency_key is not None else None
    asked = do_ask_for_run(session, staff=staff, cutoff=body.cutoff_date, now=identity.clock(), idempotency_key=key)
    if asked.request is not None:
        response = json_response(RunRequestOut.of(asked.request), 202)
    else:
        assert asked.run is not None
        _, remittances = payment_run(session, staff=staff, run_id=asked.run.id)
        response = json_response(PaymentRunOut.of(asked.run, remittances), 200 if asked.replayed else 201)
    if asked.replayed:
        response.headers[REPLAYED] = "true"
    return response


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
    *,
    request: Request,
    insurer_id: uuid.UUID,
    staff: GuardedStaffCaller,
    session: SessionDep,
    limit: Limit = 50,
    cursor: str | None = CursorParam,
) -> Response:
    """The insurer's payment runs, newest first, a page at a time (``next``)."""
    page = payment_runs_page(session, staff=staff, limit=limit, cursor=Cursor.decode(cursor))
    link = next_link(request, page.next)
    runs = [PaymentRunOut.of(r) for r in page.items]
    return paged_json(PaymentRunListOut(payment_runs=runs, next=link), link)


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
