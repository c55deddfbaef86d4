"""Offline attestations: the insurers' public keys, and the beneficiary's own attestation."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from rempart.attestations.card import card_pdf, qr_png
from rempart.attestations.keys import published_keys
from rempart.attestations.schemas import KEYS_PATH, AttestationOut
from rempart.attestations.service import do_issue_own_attestation, face
from rempart.identity.context import IdentityDep
from rempart.identity.deps import PUBLIC, AnyCaller, client_address, requires
from rempart.identity.errors import PermissionDenied
from rempart.identity.permissions import Permission
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.responses import json_response

router = APIRouter(tags=["attestations"])

# Verifiers refresh their copy often enough to learn of a revocation within the hour.
KEYS_MAX_AGE = 300


@router.api_route(KEYS_PATH, methods=["GET", "HEAD"], dependencies=[PUBLIC])
def attestation_keys(request: Request, session: SessionDep, identity: IdentityDep) -> Response:
    """Every insurer's attestation public keys (JWKS); revoked keys carry ``revoked_at``."""
    published = published_keys(session, now=identity.clock())
    headers = {"ETag": published.etag, "Cache-Control": f"public, max-age={KEYS_MAX_AGE}"}
    if request.headers.get("if-none-match") == published.etag:
        return Response(status_code=304, headers=headers)
    return Response(published.body, media_type="application/jwk-set+json", headers=headers)


@router.get(
    "/api/v1/me/attestation",
    dependencies=[requires(Permission.ME_CARD_READ)],
    response_model=AttestationOut,
    responses={200: {"content": {"image/png": {}, "application/pdf": {}}}},
)
def my_attestation(
    *,
    caller: AnyCaller,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
    format: Annotated[Literal["json", "png", "pdf"], Query()] = "json",
    lang: Annotated[Literal["fr", "en"], Query()] = "fr",
) -> Response:
    """The insured person's signed offline attestation, issued afresh: JSON, a QR code (PNG) or a
    card to print (PDF). Each one is recorded in their access log."""
    if caller.insurer_id is None or caller.beneficiary_id is None:
        raise PermissionDenied("only an insured person has an attestation")
    issued = do_issue_own_attestation(
        session,
        keys=runtime.keys,
        insurer_id=caller.insurer_id,
        beneficiary_id=caller.beneficiary_id,
        account_id=caller.account_id,
        device=caller.credential_ref,
        address=client_address(request),
        now=identity.clock(),
    )
    if format == "png":
        return Response(qr_png(issued.token), media_type="image/png")
    if format == "pdf":
        name = f"attestation-{issued.member_number}-{issued.birth_rank}.pdf"
        return Response(
            card_pdf([face(issued)], locale=lang),
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return json_response(AttestationOut.of(issued))
