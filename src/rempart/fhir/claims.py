"""Claims, prior approvals and quotes as FHIR R4 (``/fhir/Claim``, ``/fhir/ClaimResponse``),
translated onto the native services with the native permissions, guards and Idempotency-Key.

- ``POST /fhir/Claim``: ``use`` says what is asked — ``claim`` bills (``submit_claim``),
  ``preauthorization`` asks for a prior approval (``request_approval``), ``predetermination`` gets a
  quote (``quote_for_check``). The answer is a ClaimResponse. Claims and approvals need an
  ``Idempotency-Key`` as on the native API: the same key and the same Claim answer the first
  ClaimResponse again (200, ``Idempotent-Replayed: true``), the same key with another Claim the
  native conflict. A quote stores nothing, so it needs no key (as natively). FHIR's conditional
  create (``If-None-Exist``) is not offered: it would search Claims by identifier, which Rempart
  does not keep, and the key already makes a create happen once.
- ``GET /fhir/ClaimResponse/{id}``: a claim's or a prior approval's current ClaimResponse, for the
  practice that made it; anyone else's answers as a missing one.
- ``POST /fhir/Claim/{id}/$cancel``: cancels the claim, or the prior approval, with that id, and
  answers its ClaimResponse (status ``cancelled``); cancelling twice is harmless.

Translation lives in ``claims_mapping``; the access log records each of these as the native routes
do, under the channel ``fhir``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fhir.resources.R4B.claim import Claim as FhirClaim
from pydantic import ValidationError
from sqlalchemy.orm import Session

from rempart.approvals.schemas import PriorApprovalIn
from rempart.approvals.service import ApprovalNotFound, cancel_approval, request_approval, view_approval
from rempart.claims.schemas import ClaimIn
from rempart.claims.service import ClaimNotFound, cancel_claim, review_comment, submit_claim, view_claim
from rempart.detection.deps import DetectionDep, GuardedPracticeCaller
from rempart.errors import NotFound
from rempart.fhir.claims_mapping import (
    Translation,
    approval_response,
    claim_response,
    native_path,
    quote_response,
    translate,
)
from rempart.fhir.parse import FHIR_ROUTER_DEPENDENCIES, FhirResourceInvalid, fhir_body, read_resource
from rempart.idempotency import require_key
from rempart.identity.context import IdentityDep
from rempart.identity.deps import requires
from rempart.identity.permissions import Permission
from rempart.identity.principal import PracticePrincipal
from rempart.pricing.schemas import QuoteIn
from rempart.pricing.service import quote_for_check
from rempart.professionals.models import Practice
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.fhir_wire import fhir_response
from rempart.web.responses import REPLAYED, IdempotencyKey

router = APIRouter(prefix="/fhir", tags=["FHIR"], dependencies=FHIR_ROUTER_DEPENDENCIES)

FhirBody = Annotated[bytes, Depends(fhir_body)]


class ClaimResponseNotFound(NotFound):
    slug = "claim-response-not-found"
    title = "ClaimResponse not found"


def _invalid(errors: list[dict[str, str]]) -> FhirResourceInvalid:
    return FhirResourceInvalid(f"{len(errors)} element(s) are not valid", extra={"errors": errors})


_REASONS = {"missing": "required", "extra_forbidden": "not allowed here", "value_error": "not a valid value"}


def _native(schema: type[Any], body: dict[str, Any]) -> Any:
    """The native request body, validated by the native schema; its errors name FHIRPaths."""
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        # The kind of error only: pydantic's message can quote the value sent.
        raise _invalid(
            [
                {"field": native_path(e["loc"]), "reason": _REASONS.get(e["type"], e["type"].replace("_", " "))}
                for e in exc.errors()
            ]
        ) from None


def _practice_finess(session: Session, practice_id: uuid.UUID) -> str | None:
    # A practice is a platform row read by its key (no tenant's data): the identity plumbing reads it so too.
    practice = session.get(Practice, practice_id)
    return practice.finess if practice is not None else None


def _check_provider(translation: Translation, caller: PracticePrincipal, session: Session) -> None:
    """The provider is who acts: the professional of ``X-Acting-RPPS``, or their practice."""
    if translation.provider_rpps is not None and translation.provider_rpps != caller.rpps:
        raise _invalid(
            [{"field": "Claim.provider", "reason": "the provider is the acting professional (X-Acting-RPPS)"}]
        )
    if translation.provider_rpps is None and translation.provider_finess != _practice_finess(
        session, caller.practice_id
    ):
        raise _invalid([{"field": "Claim.provider", "reason": "the provider is the acting professional's practice"}])


def _created(resource: Any, request: Request, *, replayed: bool) -> Response:
    headers = {"Content-Location": str(request.base_url).rstrip("/") + f"/fhir/ClaimResponse/{resource.id}"}
    if replayed:
        headers[REPLAYED] = "true"
    return fhir_response(resource, 200 if replayed else 201, headers)


@router.post(
    "/Claim",
    summary="Submit a Claim (claim, preauthorization or predetermination); the answer is a ClaimResponse",
    # What practice software may do on the native API: bill, ask for approvals, get quotes.
    dependencies=[
        requires(Permission.CARE_CLAIM_CREATE, Permission.CARE_PRIOR_APPROVAL_CREATE, Permission.CARE_QUOTE_CREATE)
    ],
)
def create_claim(
    *,
    request: Request,
    body: FhirBody,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    identity: IdentityDep,
    detection: DetectionDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    translation = translate(read_resource(body, FhirClaim))
    if translation.errors:
        raise _invalid(translation.errors)
    _check_provider(translation, caller, session)
    now = identity.clock()
    if translation.use == "predetermination":
        quote_in: QuoteIn = _native(QuoteIn, translation.body)
        lines = [line.care_line() for line in quote_in.lines]
        result = quote_for_check(session=session, caller=caller, check_id=quote_in.check_id, lines=lines, now=now)
        return fhir_response(quote_response(result, lines, now=now))
    if translation.use == "preauthorization":
        approval_in: PriorApprovalIn = _native(PriorApprovalIn, translation.body)
        key = require_key(idempotency_key)
        approved = request_approval(
            session=session, caller=caller, request=approval_in.request(), idempotency_key=key, now=now
        )
        return _created(approval_response(approved.approval), request, replayed=approved.replayed)
    claim_in: ClaimIn = _native(ClaimIn, translation.body)
    key = require_key(idempotency_key)
    outcome = submit_claim(session=session, caller=caller, request=claim_in.request(), idempotency_key=key, now=now)
    # Detection learns of the claim once it is committed (submit_claim commits), as on the native route.
    detection.claimed(practice_id=caller.practice_id, beneficiary_id=outcome.claim.beneficiary_id)
    return _created(claim_response(outcome.claim), request, replayed=outcome.replayed)


def _resource_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ClaimResponseNotFound("no ClaimResponse with this id") from None


@router.get(
    "/ClaimResponse/{response_id}",
    summary="Read the current ClaimResponse of a claim or a prior approval",
    dependencies=[requires(Permission.CARE_CLAIM_READ, Permission.CARE_PRIOR_APPROVAL_READ)],
)
def read_claim_response(
    response_id: str, caller: GuardedPracticeCaller, session: SessionDep, runtime: RuntimeDep, identity: IdentityDep
) -> Response:
    wanted = _resource_id(response_id)
    now = identity.clock()
    try:
        claim = view_claim(session=session, caller=caller, claim_id=wanted, now=now)
    except ClaimNotFound:
        pass
    else:
        return fhir_response(
            claim_response(claim, review_comment=review_comment(session, keys=runtime.keys, claim=claim))
        )
    try:
        approval = view_approval(session=session, caller=caller, approval_id=wanted, now=now)
    except ApprovalNotFound:
        raise ClaimResponseNotFound("no ClaimResponse with this id") from None
    return fhir_response(approval_response(approval))


@router.post(
    "/Claim/{claim_id}/$cancel",
    summary="Cancel a claim or a prior approval; the answer is its ClaimResponse",
    dependencies=[requires(Permission.CARE_CLAIM_CREATE, Permission.CARE_PRIOR_APPROVAL_CANCEL)],
)
def cancel(claim_id: str, caller: GuardedPracticeCaller, session: SessionDep, identity: IdentityDep) -> Response:
    wanted = _resource_id(claim_id)
    now = identity.clock()
    try:
        claim = cancel_claim(session=session, caller=caller, claim_id=wanted, now=now)
    except ClaimNotFound:
        pass
    else:
        return fhir_response(claim_response(claim))
    try:
        approval = cancel_approval(session=session, caller=caller, approval_id=wanted, now=now)
    except ApprovalNotFound:
        raise ClaimResponseNotFound("no Claim with this id") from None
    return fhir_response(approval_response(approval))
