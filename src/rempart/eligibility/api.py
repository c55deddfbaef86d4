"""Rights checks for practice software and the professional portal: ``/api/v1/rights-checks``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from rempart.app import RuntimeDep, SessionDep
from rempart.eligibility.schemas import (
    BatchItemOut,
    RightsCheckBatchIn,
    RightsCheckBatchOut,
    RightsCheckIn,
    RightsCheckOut,
)
from rempart.eligibility.service import NoMatchingRights, RightsMiss, check_rights, check_rights_batch
from rempart.errors import PROBLEM_JSON
from rempart.identity.context import IdentityDep
from rempart.identity.deps import PracticeCaller, requires
from rempart.identity.permissions import Permission

router = APIRouter(tags=["rights checks"])

NO_MATCH: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "No rights match: the same answer whichever field was wrong",
        "content": {PROBLEM_JSON: {"example": NoMatchingRights().problem()}},
    }
}


def json_response(model: Any, status_code: int = 200) -> Response:
    # Serialised once by pydantic's core; the route's response_model documents the shape.
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


@router.post(
    "/api/v1/rights-checks",
    dependencies=[requires(Permission.CARE_RIGHTS_CHECK_CREATE)],
    response_model=RightsCheckOut,
    responses=NO_MATCH,
)
def create_rights_check(
    body: RightsCheckIn, caller: PracticeCaller, session: SessionDep, runtime: RuntimeDep, identity: IdentityDep
) -> Response:
    """Is this patient covered on the day of care, for the professional's care domains, and how."""
    outcome = check_rights(session=session, keys=runtime.keys, caller=caller, query=body.query(), now=identity.clock())
    session.commit()  # the access event, hit or miss, is stored before anything is answered
    if isinstance(outcome, RightsMiss):
        raise outcome.error
    return json_response(RightsCheckOut.of(outcome))


@router.post(
    "/api/v1/rights-checks/batch",
    dependencies=[requires(Permission.CARE_RIGHTS_CHECK_CREATE)],
    response_model=RightsCheckBatchOut,
)
def create_rights_check_batch(
    body: RightsCheckBatchIn, caller: PracticeCaller, session: SessionDep, runtime: RuntimeDep, identity: IdentityDep
) -> Response:
    """A day's appointments at once (up to 50); each item counts as one check."""
    outcomes = check_rights_batch(
        session=session,
        keys=runtime.keys,
        caller=caller,
        queries=[item.query() for item in body.checks],
        now=identity.clock(),
    )
    session.commit()
    results = [
        BatchItemOut(index=i, status=404, problem=outcome.error.problem())
        if isinstance(outcome, RightsMiss)
        else BatchItemOut(index=i, status=200, rights=RightsCheckOut.of(outcome))
        for i, outcome in enumerate(outcomes)
    ]
    return json_response(RightsCheckBatchOut(results=results))
