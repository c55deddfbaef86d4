"""The portal's claim pages: the practice's claims, the claim form (from a rights check or from a
prior approval, whose lines it copies), a claim's detail with its reason explained in words.

The claim form carries an idempotency key made when the page is shown, as practice software sends
its ``Idempotency-Key``: a double click, a second submission or a reload of the answer bills once,
and every one of them lands on the same claim.
"""

from __future__ import annotations

import re
import uuid

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from rempart.approvals.forms import key_after_refusal, new_idempotency_key, posted_key
from rempart.approvals.models import USABLE_APPROVAL
from rempart.approvals.service import view_approval
from rempart.claims.models import ClaimReason, ClaimStatus, ReviewReason
from rempart.claims.service import ClaimRequest, practice_claims, review_comment, submit_claim, view_claim
from rempart.detection.deps import DetectionDep, GuardedPracticeCaller
from rempart.eligibility.service import care_day
from rempart.errors import RempartError
from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, requires
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.identity.principal import PracticePrincipal
from rempart.pricing.engine import Limit
from rempart.pricing.forms import (
    DOMAIN_WORDS,
    ROWS,
    FormFields,
    LinesForm,
    blank_values,
    check_reference,
    domain_choices,
    profession_domains,
    values_of_lines,
)
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.i18n import _, language_of
from rempart.web.pages import PageRouter, Viewer, render, see_other

router = PageRouter()

APPROVAL_NUMBER = r"^[A-Z0-9-]{1,20}$"

STATUS_WORDS: dict[ClaimStatus, tuple[str, str]] = {
    ClaimStatus.RECEIVED: (_("Received"), "warn"),
    ClaimStatus.ACCEPTED: (_("Accepted"), "ok"),
    ClaimStatus.REJECTED: (_("Rejected"), "bad"),
    ClaimStatus.PENDING_REVIEW: (_("Waiting for the insurer's review"), "warn"),
    ClaimStatus.PAID: (_("Paid"), "ok"),
    ClaimStatus.CANCELLED: (_("Cancelled by your practice"), "bad"),
    ClaimStatus.SUPERSEDED: (_("Replaced by a correction"), ""),
}

# Every reason code the insurer answers with, in words a pharmacist or an optician acts on.
REASON_WORDS: dict[ClaimReason, str] = {
    ClaimReason.NOT_COVERED_AT_DATE: _(
        "The patient was not covered on the date of care. Check the date, or check the patient's rights for that day."
    ),
    ClaimReason.DOMAIN_NOT_COVERED: _(
        "The patient's contract does not cover this kind of care: the insurer pays nothing for it."
    ),
    ClaimReason.APPROVAL_MISSING: _(
        "This care needs a prior approval from the insurer, and the claim gave no approval number. Ask for an "
        "approval, then send the claim again with its number."
    ),
    ClaimReason.APPROVAL_NOT_GRANTED: _(
        "The prior approval given was refused, cancelled or is still waiting for the insurer: it cannot pay this claim."
    ),
    ClaimReason.APPROVAL_EXPIRED: _(
        "The prior approval given had expired on the date of care. Ask for a new approval."
    ),
    ClaimReason.APPROVAL_EXCEEDED: _(
        "The claim asks the insurer for more than the prior approval granted. Bill within the approved amounts."
    ),
    ClaimReason.APPROVAL_MISMATCH: _(
        "The approval number does not match this claim: it is unknown, or it was given for another patient, "
        "another practice or another kind of care. Check the number."
    ),
    ClaimReason.APPROVAL_ALREADY_USED: _(
        "The prior approval given has already paid another claim: an approval pays once."
    ),
    ClaimReason.CEILING_EXHAUSTED: _(
        "The patient's yearly ceiling for this care is used up: the insurer pays nothing more this year, the "
        "patient pays the rest."
    ),
    ClaimReason.DUPLICATE_CLAIM: _(
        "Your practice already billed the same care for the same patient. Find the first claim in your list "
        "instead of sending it again."
    ),
    ClaimReason.PRICE_OVER_REGULATED_LIMIT: _(
        "A class A (100 %% Santé) line is priced above its regulated price. Bill it at the regulated price at most."
    ),
    ClaimReason.MANUAL_REVIEW: _(
        "The amount is high enough for a person at the insurer to check the claim before it is paid. Nothing to "
        "do: the answer will show on this page."
    ),
    ClaimReason.REJECTED_BY_INSURER: _(
        "A person at the insurer rejected this claim after review, for the reason below. Correct the claim if you "
        "can, or call the insurer."
    ),
    ClaimReason.ATTESTATION_EXPIRED: _(
        "The offline attestation this claim relies on was not valid on the date of care. Check the patient's "
        "rights now and bill again with the rights check."
    ),
    ClaimReason.ATTESTATION_KEY_REVOKED: _(
        "The offline attestation this claim relies on was signed by a key the insurer revoked: it is not "
        "accepted. Check the patient's rights now and bill again with the rights check."
    ),
    ClaimReason.ATTESTATION_DOMAIN: _(
        "The offline attestation this claim relies on gives no third-party payment for this kind of care: the "
        "patient pays and is reimbursed by the insurer."
    ),
}

# Why a claims agent rejected a claim after review, as the practice reads it beside the agent's comment.
REVIEW_REASON_WORDS: dict[ReviewReason, str] = {
    ReviewReason.NOT_PERFORMED: _("The insurer finds the care billed was not performed, or not as billed."),
    ReviewReason.DOCUMENTS_MISSING: _(
        "Documents are missing (prescription, quote or invoice): send them to the insurer, or correct the claim."
    ),
    ReviewReason.AMOUNT_DISPUTED: _("The amount billed does not match the quote, the prior approval or the act."),
    ReviewReason.DUPLICATE: _("The insurer finds this care was already billed in another claim."),
    ReviewReason.NOT_COVERED: _("The patient's contract does not cover this care."),
    ReviewReason.OTHER: _("Another reason: see the insurer's comment."),
}

# What capped the complementary share of a line.
LIMIT_WORDS: dict[Limit, str] = {
    Limit.NOT_COVERED: _("Not covered by the contract"),
    Limit.PRICE: _("Capped at what the AMO share leaves of the price"),
    Limit.CLASS_B_CEILING: _("Capped by the class B ceiling"),
    Limit.YEARLY_CEILING: _("Capped by the yearly ceiling"),
}


@router.page("/claims", dependencies=[requires(Permission.CARE_CLAIM_READ)])
def claims_list(
    request: Request, viewer: ViewerDep, caller: GuardedPracticeCaller, session: SessionDep, identity: IdentityDep
) -> HTMLResponse:
    claims = practice_claims(session=session, caller=caller, now=identity.clock())
    return render(
        request,
        "claims/list.html",
        viewer=viewer,
        claims=claims,
        status_words=STATUS_WORDS,
    )


def _form_page(
    request: Request,
    viewer: Viewer,
    caller: PracticePrincipal,
    form: LinesForm,
    *,
    key: str,
    status: int = 200,
    approval_number: str = "",
) -> HTMLResponse:
    return render(
        request,
        "claims/new.html",
        viewer=viewer,
        status=status,
        form=form,
        idempotency_key=key,
        rows=range(1, ROWS + 1),
        domains=domain_choices(profession_domains(caller)),
        from_approval=approval_number,
    )


@router.page("/claims/new", dependencies=[requires(Permission.CARE_CLAIM_CREATE)])
def claim_form(
    request: Request,
    *,
    viewer: ViewerDep,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    identity: IdentityDep,
    check: str | None = None,
    approval: uuid.UUID | None = None,
) -> HTMLResponse:
    """A blank claim for a checked patient, or one filled from the prior approval it bills."""
    now = identity.clock()
    domains = profession_domains(caller)
    values = blank_values(care_date=care_day(now), care_domain=domains[0].value if domains else "")
    values["check_id"] = check_reference(check)
    number = ""
    if approval is not None:
        approved = view_approval(session=session, caller=caller, approval_id=approval, now=now)
        number = approved.approval_number if approved.status in USABLE_APPROVAL else ""
        values |= values_of_lines(list(approved.lines), language_of(request))
        values |= {
            "check_id": str(approved.check_id),
            "care_domain": approved.care_domain.value,
            "approval_number": approved.approval_number,
        }
    return _form_page(request, viewer, caller, LinesForm(values), key=new_idempotency_key(), approval_number=number)


def _approval_number(form: LinesForm) -> str | None:
    number = form.text("approval_number").upper()
    if not number:
        return None
    if not re.match(APPROVAL_NUMBER, number):
        form.fail("approval_number", _("An approval number has letters, digits and dashes, as the insurer gave it."))
        return None
    return number


@router.post("/claims", dependencies=[FORM_CSRF, requires(Permission.CARE_CLAIM_CREATE)])
def claim_create(
    request: Request,
    *,
    viewer: ViewerDep,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    identity: IdentityDep,
    detection: DetectionDep,
    fields: FormFields,
) -> Response:
    """Bill the insurer once per form shown: the same form sent again lands on the same claim."""
    key = posted_key(fields)
    form = LinesForm(dict(fields))
    check_id = form.check_id()
    number = _approval_number(form)
    domain = form.care_domain(profession_domains(caller))
    lines = form.lines(domain, form.care_date())
    try:
        form.raise_if_invalid()
        assert check_id is not None
        outcome = submit_claim(
            session=session,
            caller=caller,
            request=ClaimRequest(check_id=check_id, lines=tuple(lines), approval_number=number),
            idempotency_key=key,
            now=identity.clock(),
        )
    except RempartError as error:
        again = key_after_refusal(form, error, key)
        if again is None:
            raise
        return _form_page(request, viewer, caller, form, key=again, status=422)
    # Detection learns of the claim once it is committed (submit_claim commits), as from the API.
    detection.claimed(practice_id=caller.practice_id, beneficiary_id=outcome.claim.beneficiary_id)
    return see_other(f"/claims/{outcome.claim.id}")


@router.page("/claims/{claim_id}", dependencies=[requires(Permission.CARE_CLAIM_READ)])
def claim_detail(
    request: Request,
    *,
    claim_id: uuid.UUID,
    viewer: ViewerDep,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
) -> HTMLResponse:
    claim = view_claim(session=session, caller=caller, claim_id=claim_id, now=identity.clock())
    return render(
        request,
        "claims/detail.html",
        viewer=viewer,
        claim=claim,
        badge=STATUS_WORDS[claim.status],
        reason=REASON_WORDS.get(claim.reason_code) if claim.reason_code else None,
        review_reason=REVIEW_REASON_WORDS.get(claim.review_reason) if claim.review_reason else None,
        review_comment=review_comment(session, keys=runtime.keys, claim=claim),
        domain_words=DOMAIN_WORDS,
        limit_words=LIMIT_WORDS,
    )
