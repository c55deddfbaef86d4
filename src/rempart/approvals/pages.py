"""The portal's prior-approval pages: the practice's list, the request form (from a rights check),
an approval's detail and its cancellation.

The request form carries an idempotency key made when the page is shown: a double click, a second
submission or a reload asks for one approval, and lands on it.
"""

from __future__ import annotations

import uuid
from datetime import date

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from rempart.approvals.forms import key_after_refusal, new_idempotency_key, posted_key
from rempart.approvals.models import USABLE_APPROVAL, ApprovalReason, ApprovalStatus, PriorApproval
from rempart.approvals.service import (
    ApprovalRequest,
    cancel_approval,
    practice_approvals,
    request_approval,
    view_approval,
)
from rempart.detection.deps import GuardedPracticeCaller
from rempart.eligibility.service import care_day
from rempart.errors import RempartError
from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, requires
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.identity.principal import PracticePrincipal
from rempart.insurers.models import APPROVAL_DOMAINS, CareDomain
from rempart.pricing.forms import (
    DOMAIN_WORDS,
    ROWS,
    FormFields,
    LinesForm,
    blank_values,
    check_reference,
    domain_choices,
    profession_domains,
)
from rempart.web.deps import SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, Viewer, render, see_other

router = PageRouter()

STATUS_WORDS: dict[ApprovalStatus, tuple[str, str]] = {
    ApprovalStatus.GRANTED: (_("Granted"), "ok"),
    ApprovalStatus.PARTIALLY_GRANTED: (_("Partly granted"), "warn"),
    ApprovalStatus.REFUSED: (_("Refused"), "bad"),
    ApprovalStatus.PENDING: (_("Waiting for the insurer"), "warn"),
    ApprovalStatus.CANCELLED: (_("Cancelled"), "bad"),
}

# Every reason code of a refusal or a partial grant, in words a professional acts on.
REASON_WORDS: dict[ApprovalReason, str] = {
    ApprovalReason.NOT_COVERED_AT_DATE: _(
        "The patient is not covered on the planned date of care. Check the date, or the patient's rights on that day."
    ),
    ApprovalReason.DOMAIN_NOT_COVERED: _("The patient's contract does not cover this kind of care."),
    ApprovalReason.PRICE_OVER_REGULATED_LIMIT: _(
        "A class A (100 %% Santé) line is priced above its regulated price. Bring it down to the regulated price."
    ),
    ApprovalReason.CEILING_EXHAUSTED: _(
        "The patient's yearly ceiling for this care is used up: the insurer can pay nothing more this year."
    ),
    ApprovalReason.CEILING_PARTLY_USED: _(
        "The patient's yearly ceiling is partly used: the insurer commits to less than the lines would get."
    ),
    ApprovalReason.MANUAL_REVIEW: _(
        "The amount is high enough for a person at the insurer to decide. Come back to this page for the answer."
    ),
    ApprovalReason.REFUSED_BY_INSURER: _("A person at the insurer refused this request."),
}


def approval_domains(caller: PracticePrincipal) -> list[CareDomain]:
    """The domains this professional may ask an approval for, in the menu's order."""
    return [d for d in profession_domains(caller) if d in APPROVAL_DOMAINS]


def _badge(approval: PriorApproval, today: date) -> tuple[str, str]:
    """The status a person reads: an unused approval past its expiry shows as expired."""
    if approval.status in USABLE_APPROVAL and approval.claim_id is None and approval.expires_on < today:
        return _("Expired"), "bad"
    if approval.claim_id is not None and approval.status in USABLE_APPROVAL:
        return _("Used by a claim"), "ok"
    return STATUS_WORDS[approval.status]


@router.page("/approvals", dependencies=[requires(Permission.CARE_PRIOR_APPROVAL_READ)])
def approvals_list(
    request: Request, viewer: ViewerDep, caller: GuardedPracticeCaller, session: SessionDep, identity: IdentityDep
) -> HTMLResponse:
    now = identity.clock()
    approvals = practice_approvals(session=session, caller=caller, now=now)
    today = care_day(now)
    return render(
        request,
        "approvals/list.html",
        viewer=viewer,
        approvals=[(a, _badge(a, today)) for a in approvals],
        domain_words=DOMAIN_WORDS,
    )


def _form_page(
    request: Request,
    viewer: Viewer,
    caller: PracticePrincipal,
    form: LinesForm,
    *,
    key: str,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "approvals/new.html",
        viewer=viewer,
        status=status,
        form=form,
        idempotency_key=key,
        rows=range(1, ROWS + 1),
        domains=domain_choices(approval_domains(caller)),
    )


@router.page("/approvals/new", dependencies=[requires(Permission.CARE_PRIOR_APPROVAL_CREATE)])
def approval_form(
    request: Request,
    viewer: ViewerDep,
    caller: GuardedPracticeCaller,
    identity: IdentityDep,
    check: str | None = None,
) -> HTMLResponse:
    domains = approval_domains(caller)
    values = blank_values(care_date=care_day(identity.clock()), care_domain=domains[0].value if domains else "")
    values["check_id"] = check_reference(check)
    return _form_page(request, viewer, caller, LinesForm(values), key=new_idempotency_key())


@router.post("/approvals", dependencies=[FORM_CSRF, requires(Permission.CARE_PRIOR_APPROVAL_CREATE)])
def approval_create(
    request: Request,
    *,
    viewer: ViewerDep,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    identity: IdentityDep,
    fields: FormFields,
) -> Response:
    key = posted_key(fields)
    form = LinesForm(dict(fields))
    check_id = form.check_id()
    domain = form.care_domain(approval_domains(caller))
    lines = form.lines(domain, form.care_date())
    try:
        form.raise_if_invalid()
        assert check_id is not None
        assert domain is not None
        outcome = request_approval(
            session=session,
            caller=caller,
            request=ApprovalRequest(check_id=check_id, care_domain=domain, lines=tuple(lines)),
            idempotency_key=key,
            now=identity.clock(),
        )
    except RempartError as error:
        again = key_after_refusal(form, error, key)
        if again is None:
            raise
        return _form_page(request, viewer, caller, form, key=again, status=422)
    return see_other(f"/approvals/{outcome.approval.id}")


@router.page("/approvals/{approval_id}", dependencies=[requires(Permission.CARE_PRIOR_APPROVAL_READ)])
def approval_detail(
    request: Request,
    *,
    approval_id: uuid.UUID,
    viewer: ViewerDep,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> HTMLResponse:
    now = identity.clock()
    approval = view_approval(session=session, caller=caller, approval_id=approval_id, now=now)
    today = care_day(now)
    cancellable = approval.claim_id is None and approval.status in (*USABLE_APPROVAL, ApprovalStatus.PENDING)
    return render(
        request,
        "approvals/detail.html",
        viewer=viewer,
        approval=approval,
        badge=_badge(approval, today),
        domain_words=DOMAIN_WORDS,
        reason=REASON_WORDS.get(approval.reason_code) if approval.reason_code else None,
        cancellable=cancellable,
        # An expired approval would only bring a rejection: the page does not offer to bill with it.
        can_claim=approval.status in USABLE_APPROVAL and approval.claim_id is None and approval.expires_on >= today,
    )


@router.post(
    "/approvals/{approval_id}/cancel", dependencies=[FORM_CSRF, requires(Permission.CARE_PRIOR_APPROVAL_CANCEL)]
)
def approval_cancel(
    approval_id: uuid.UUID, caller: GuardedPracticeCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    """Cancel an approval no claim has used; cancelling twice is harmless."""
    approval = cancel_approval(session=session, caller=caller, approval_id=approval_id, now=identity.clock())
    return see_other(f"/approvals/{approval.id}")
