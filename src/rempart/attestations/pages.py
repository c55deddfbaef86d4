"""The beneficiary's portal: their card, its offline QR attestation and printable PDF (``/me``).

Each showing of the card issues a fresh signed attestation (``do_issue_own_attestation``, which
records it in the person's access log and commits); the QR code goes inline as a ``data:`` PNG,
which the content-security policy allows (``img-src 'self' data:``). The card shows what the
printed card shows, never a name, a NIR or a date of birth.
"""

from __future__ import annotations

import base64

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from rempart.attestations.card import card_pdf, qr_png
from rempart.attestations.service import Issued, NoRightsToAttest, do_issue_own_attestation, face
from rempart.identity.context import IdentityDep
from rempart.identity.deps import AnyCaller, client_address, requires
from rempart.identity.errors import PermissionDenied
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.web import i18n
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.pages import PageRouter, render
from rempart_verifier import DOMAINS

router = PageRouter()
CARD = [requires(Permission.ME_CARD_READ)]


def _issue(
    caller: AnyCaller, request: Request, session: SessionDep, runtime: RuntimeDep, identity: IdentityDep
) -> Issued:
    if caller.insurer_id is None or caller.beneficiary_id is None:
        raise PermissionDenied("only an insured person has a card")
    return do_issue_own_attestation(
        session,
        keys=runtime.keys,
        insurer_id=caller.insurer_id,
        beneficiary_id=caller.beneficiary_id,
        account_id=caller.account_id,
        device=caller.credential_ref,
        address=client_address(request),
        now=identity.clock(),
    )


@router.page("/me", dependencies=CARD)
def my_card(
    *,
    request: Request,
    viewer: ViewerDep,
    caller: AnyCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
) -> HTMLResponse:
    """My card: the insurer, the AMC and member numbers, the validity, and the signed QR code.
    A HEAD issues nothing (its body is never sent)."""
    if request.method == "HEAD":
        return render(request, "beneficiary/card.html", viewer=viewer, card=None, qr=None, domains=DOMAINS)
    try:
        issued = _issue(caller, request, session, runtime, identity)
    except NoRightsToAttest:
        return render(request, "beneficiary/card.html", viewer=viewer, card=None, qr=None, domains=DOMAINS)
    qr = "data:image/png;base64," + base64.b64encode(qr_png(issued.token, scale=5)).decode("ascii")
    return render(request, "beneficiary/card.html", viewer=viewer, card=face(issued), qr=qr, domains=DOMAINS)


@router.api_route("/me/card.pdf", methods=["GET", "HEAD"], dependencies=CARD)
def my_card_pdf(
    *,
    request: Request,
    caller: AnyCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
) -> Response:
    """The card to print and cut out (A4, ID-1 size), in the page's language. A HEAD issues nothing."""
    if request.method == "HEAD":
        return Response(media_type="application/pdf")
    issued = _issue(caller, request, session, runtime, identity)
    name = f"attestation-{issued.member_number}-{issued.birth_rank}.pdf"
    return Response(
        card_pdf([face(issued)], locale=i18n.language_of(request)),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
