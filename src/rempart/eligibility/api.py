"""Rights checks for practice software and the professional portal: ``/api/v1/rights-checks``.

Detection sees every check between the lookup and the answer (``DetectionAdmission``, passed to the
service): when it refuses, the access log records the refusal and nothing of the lookup leaves. The
service commits the access event, hit, miss or refusal, before the route answers.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from rempart.detection.deps import DetectionDep, GuardedPracticeCaller
from rempart.eligibility.admission import DetectionAdmission, detection_actor
from rempart.eligibility.schemas import (
    BatchItemOut,
    RightsCheckBatchIn,
    RightsCheckBatchOut,
    RightsCheckIn,
    RightsCheckOut,
)
from rempart.eligibility.service import (
    NoMatchingRights,
    RightsMiss,
    check_rights,
    check_rights_batch,
)
from rempart.errors import PROBLEM_JSON
from rempart.identity.context import IdentityDep
from rempart.identity.deps import requires
from rempart.identity.permissions import Permission
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.responses import json_response

router = APIRouter(tags=["rights checks"])

NO_MATCH: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "No rights match: the same answer whichever field was wrong",
        "content": {PROBLEM_JSON: {"example": NoMatchingRights().problem()}},
    }
}


@router.post(
    "/api/v1/rights-checks",
    dependencies=[requires(Permission.CARE_RIGHTS_CHECK_CREATE)],
    response_model=RightsCheckOut,
    responses=NO_MATCH,
)
def create_rights_check(
    *,
    body: RightsCheckIn,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
    detection: DetectionDep,
) -> Response:
    """Is this patient covered on the day of care, for the professional's care domains, and how."""
    outcome = check_rights(
        session=session,
        keys=runtime.keys,
        caller=caller,
        query=body.query(),
        now=identity.clock(),
        admission=DetectionAdmission(detection, detection_actor(caller)),
    )
    if isinstance(outcome, RightsMiss):
        raise outcome.error
    return json_response(RightsCheckOut.of(outcome))


@router.post(
    "/api/v1/rights-checks/batch",
    dependencies=[requires(Permission.CARE_RIGHTS_CHECK_CREATE)],
    response_model=RightsCheckBatchOut,
)
def create_rights_check_batch(
    *,
    body: RightsCheckBatchIn,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
    detection: DetectionDep,
) -> Response:
    """A day's appointments at once (up to 50); each item counts as one check."""
    outcomes = check_rights_batch(
        session=session,
        keys=runtime.keys,
        caller=caller,
        queries=[item.query() for item in body.checks],
        now=identity.clock(),
        admission=DetectionAdmission(detection, detection_actor(caller)),
    )
    results = [
        BatchItemOut(index=i, status=404, problem=outcome.error.problem())
        if isinstance(outcome, RightsMiss)
        else BatchItemOut(index=i, status=200, rights=RightsCheckOut.of(outcome))
        for i, outcome in enumerate(outcomes)
    ]
    return json_response(RightsCheckBatchOut(results=results))
