"""The insurer's back office: the claims review queue, a claim's lines, and the reviewer's decision.

The queue asks ``review_queue`` for the claims matching its filters (reason, practice, amount), so
that only the claims shown are read and recorded in the access log. The practice's own words for the
reason codes (``claims.pages``) are advice to a professional and another domain's routes may not be
imported, so the staff read their own, shorter words below.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from rempart.claims.models import Claim, ClaimReason, ClaimStatus, ReviewReason
from rempart.claims.service import (
    COMMENT_LIMIT,
    ClaimNotPending,
    QueueQuery,
    ReviewNoteInvalid,
    insurer_claim,
    queue_practices,
    review_claim,
    review_comment,
    review_queue_claims,
)
from rempart.detection.deps import GuardedStaffCaller
from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, requires
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.pricing.forms import DOMAIN_WORDS
from rempart.professionals.models import Practice
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, Viewer, render, see_other

router = PageRouter()

QUEUE_LIMIT = 500

STATUS_WORDS: dict[ClaimStatus, tuple[str, str]] = {
    ClaimStatus.PENDING_REVIEW: (_("Waiting for review"), "warn"),
    ClaimStatus.RECEIVED: (_("Received"), "warn"),
    ClaimStatus.ACCEPTED: (_("Accepted"), "ok"),
    ClaimStatus.REJECTED: (_("Rejected"), "bad"),
    ClaimStatus.PAID: (_("Paid"), "ok"),
    ClaimStatus.CANCELLED: (_("Cancelled by the practice"), "bad"),
    ClaimStatus.SUPERSEDED: (_("Replaced by a correction"), ""),
}

# Each reason code as a reviewer reads it.
REVIEW_REASON_WORDS: dict[ClaimReason, str] = {
    ClaimReason.NOT_COVERED_AT_DATE: _("Not covered on the date of care"),
    ClaimReason.DOMAIN_NOT_COVERED: _("The contract does not cover this kind of care"),
    ClaimReason.APPROVAL_MISSING: _("Prior approval needed, none given"),
    ClaimReason.APPROVAL_NOT_GRANTED: _("The prior approval was not granted"),
    ClaimReason.APPROVAL_EXPIRED: _("The prior approval had expired"),
    ClaimReason.APPROVAL_EXCEEDED: _("More than the prior approval granted"),
    ClaimReason.APPROVAL_MISMATCH: _("The approval number does not match this claim"),
    ClaimReason.APPROVAL_ALREADY_USED: _("The prior approval already paid another claim"),
    ClaimReason.CEILING_EXHAUSTED: _("Yearly ceiling used up"),
    ClaimReason.DUPLICATE_CLAIM: _("Same care billed twice"),
    ClaimReason.PRICE_OVER_REGULATED_LIMIT: _("Class A line above its regulated price"),
    ClaimReason.MANUAL_REVIEW: _("Amount over the review threshold: a person decides"),
    ClaimReason.REJECTED_BY_INSURER: _("Rejected after review"),
    ClaimReason.ATTESTATION_EXPIRED: _("Offline attestation not valid on the date of care"),
    ClaimReason.ATTESTATION_KEY_REVOKED: _("Offline attestation signed by a revoked key"),
    ClaimReason.ATTESTATION_DOMAIN: _("Offline attestation gives no third-party payment for this care"),
}

# Why a reviewer rejects: a short list, so that the answers can be counted (stored on the claim).
REJECT_REASONS: dict[ReviewReason, str] = {
    ReviewReason.NOT_PERFORMED: _("The care was not performed, or not as billed"),
    ReviewReason.DOCUMENTS_MISSING: _("Documents are missing"),
    ReviewReason.AMOUNT_DISPUTED: _("The amount does not match the quote, the approval or the act"),
    ReviewReason.DUPLICATE: _("The care was already billed"),
    ReviewReason.NOT_COVERED: _("The contract does not cover this care"),
    ReviewReason.OTHER: _("Another reason (say which in the comment)"),
}

# The service's refusals of a reason or a comment (``review_note``), in a reviewer's words.
NOTE_PROBLEM_WORDS: dict[str, str] = {
    "reason-missing": _("Choose why you reject the claim."),
    "reason-on-accept": _("An acceptance takes no reason."),
    "comment-on-accept": _("An acceptance takes no comment."),
    "comment-not-one-paragraph": _("Write the comment as one paragraph, without line breaks."),
    "comment-control-characters": _("The comment has invisible or control characters: write it again as plain text."),
    "comment-too-long": _("The comment is too long: 500 characters at most."),
    "comment-needed": _("Say in a few words why you reject the claim."),
}


@dataclass(frozen=True)
class QueueFilters:
    status: str = ClaimStatus.PENDING_REVIEW.value  # "" for every status
    reason: str = ""
    practice: str = ""
    min_euros: str = ""
    max_euros: str = ""
    attestation: bool = False


def _cents(text: str) -> int | None:
    try:
        value = Decimal(text.strip().replace(",", ".").replace("\u202f", "").replace(" ", ""))
    except InvalidOperation:
        return None
    return int(value * 100) if value.is_finite() and value >= 0 else None


def _practice_names(session: SessionDep, practice_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    # A practice is a platform record (no tenant), read by its key: the name a reviewer recognises.
    names = {}
    for practice_id in set(practice_ids):
        practice = session.get(Practice, practice_id)
        names[practice_id] = practice.name if practice is not None else str(practice_id)[:8]
    return names


def _query(filters: QueueFilters) -> tuple[QueueQuery, dict[str, str]]:
    """The filters as the service takes them; a bound that is not an amount filters nothing, and is marked."""
    errors: dict[str, str] = {}
    low = _cents(filters.min_euros) if filters.min_euros else None
    high = _cents(filters.max_euros) if filters.max_euros else None
    if filters.min_euros and low is None:
        errors["min_euros"] = _("Write an amount in euros, such as 120,50.")
    if filters.max_euros and high is None:
        errors["max_euros"] = _("Write an amount in euros, such as 120,50.")
    try:
        practice_id = uuid.UUID(filters.practice) if filters.practice else None
    except ValueError:
        practice_id = uuid.UUID(int=0)  # names no practice: nothing matches, as before
    query = QueueQuery(
        status=ClaimStatus(filters.status) if filters.status else None,
        under_attestation=True if filters.attestation else None,
        reason=ClaimReason(filters.reason) if filters.reason else None,
        practice_id=practice_id,
        min_cents=low,
        max_cents=high,
    )
    return query, errors


@router.page("/insurer/claims", dependencies=[requires(Permission.INSURER_CLAIM_READ)])
def review_queue(
    request: Request,
    *,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    status: str = ClaimStatus.PENDING_REVIEW.value,
    reason: str = "",
    practice: str = "",
    min_euros: str = "",
    max_euros: str = "",
    attestation: str = "",
) -> HTMLResponse:
    filters = QueueFilters(
        status=status if status in {s.value for s in ClaimStatus} else "",
        reason=reason if reason in {r.value for r in ClaimReason} else "",
        practice=practice[:36],
        min_euros=min_euros[:20],
        max_euros=max_euros[:20],
        attestation=attestation == "yes",
    )
    query, errors = _query(filters)
    shown = review_queue_claims(session, staff=staff, now=identity.clock(), query=query, limit=QUEUE_LIMIT)
    # Every practice with claims of this status, for the filter, whichever the claims shown.
    offered = queue_practices(session, staff=staff, status=query.status, under_attestation=query.under_attestation)
    names = _practice_names(session, offered)
    return render(
        request,
        "backoffice/review_queue.html",
        viewer=viewer,
        status=422 if errors else 200,
        claims=shown,
        filters=filters,
        errors=errors,
        practices=sorted(names.items(), key=lambda item: item[1]),
        practice_names=names,
        status_words=STATUS_WORDS,
        reason_words=REVIEW_REASON_WORDS,
        statuses=[(s.value, STATUS_WORDS[s][0]) for s in ClaimStatus],
        reasons=[(r.value, REVIEW_REASON_WORDS[r]) for r in ClaimReason],
        can_review=viewer_can_review(staff.permissions),
        limit=QUEUE_LIMIT,
    )


def viewer_can_review(permissions: frozenset[Permission]) -> bool:
    return Permission.INSURER_CLAIM_REVIEW in permissions


def _detail(
    request: Request,
    viewer: Viewer,
    claim: Claim,
    practice_name: str,
    *,
    can_review: bool,
    comment: str | None,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    decided: str = "",
) -> HTMLResponse:
    return render(
        request,
        "backoffice/review_claim.html",
        viewer=viewer,
        status=status,
        claim=claim,
        practice_name=practice_name,
        badge=STATUS_WORDS[claim.status],
        reason=REVIEW_REASON_WORDS.get(claim.reason_code) if claim.reason_code else None,
        review_reason=REJECT_REASONS.get(claim.review_reason) if claim.review_reason else None,
        review_comment=comment,
        domain_words=DOMAIN_WORDS,
        reject_reasons={reason.value: words for reason, words in REJECT_REASONS.items()},
        can_review=can_review and claim.status is ClaimStatus.PENDING_REVIEW,
        errors=errors or {},
        values=values or {"reject_reason": "", "comment": ""},
        decided=decided,
        comment_limit=COMMENT_LIMIT,
    )


@router.page("/insurer/claims/{claim_id}", dependencies=[requires(Permission.INSURER_CLAIM_READ)])
def review_detail(
    request: Request,
    *,
    claim_id: uuid.UUID,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
    decided: str = "",
) -> HTMLResponse:
    claim = insurer_claim(session, staff=staff, claim_id=claim_id, now=identity.clock())
    names = _practice_names(session, [claim.practice_id])
    return _detail(
        request,
        viewer,
        claim,
        names[claim.practice_id],
        can_review=viewer_can_review(staff.permissions),
        comment=review_comment(session, keys=runtime.keys, claim=claim),
        decided=decided if decided in {"accepted", "rejected"} else "",
    )


@router.post(
    "/insurer/claims/{claim_id}/review",
    dependencies=[FORM_CSRF, requires(Permission.INSURER_CLAIM_REVIEW)],
)
def review_decide(
    request: Request,
    *,
    claim_id: uuid.UUID,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
    decision: Annotated[str, Form()] = "",
    reject_reason: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
) -> Response:
    """Accept, or reject with a reason from the list and a comment for the practice; the claim's
    page shows the decision after. A refused form writes nothing and comes back marked (422)."""
    now = identity.clock()
    errors: dict[str, str] = {}
    reason = ReviewReason(reject_reason) if reject_reason in {r.value for r in ReviewReason} else None
    if decision not in {"accept", "reject"}:
        errors["decision"] = _("Choose to accept or to reject the claim.")
    else:
        accept = decision == "accept"
        try:
            # The accept form sends no reason nor comment: whatever came with it is left out.
            review_claim(
                session=session,
                keys=runtime.keys,
                staff=staff,
                claim_id=claim_id,
                accept=accept,
                reason=None if accept else reason,
                comment=None if accept else comment,
                now=now,
            )
        except ClaimNotPending:
            errors["decision"] = _("This claim was decided meanwhile: see its status above.")
        except ReviewNoteInvalid as refused:
            field_of = {"reason": "reject_reason", "comment": "comment"}
            errors = {field_of[field]: NOTE_PROBLEM_WORDS[code] for field, code in refused.problems.items()}
        else:
            return see_other(f"/insurer/claims/{claim_id}?decided={'accepted' if accept else 'rejected'}")
    claim = insurer_claim(session, staff=staff, claim_id=claim_id, now=now)
    return _detail(
        request,
        viewer,
        claim,
        _practice_names(session, [claim.practice_id])[claim.practice_id],
        can_review=True,
        comment=review_comment(session, keys=runtime.keys, claim=claim),
        status=422,
        errors=errors,
        values={"reject_reason": reason.value if reason else "", "comment": comment.strip()[: 4 * COMMENT_LIMIT]},
    )
