"""The insurer's back office: the claims review queue, a claim's lines, and the reviewer's decision.

The queue reads the insurer's claims through ``insurer_claims`` (each claim read is recorded in the
access log) and filters them here by reason, practice and amount. The practice's own words for the
reason codes (``claims.pages``) are advice to a professional and another domain's routes may not be
imported, so the staff read their own, shorter words below.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from rempart.claims.models import Claim, ClaimReason, ClaimStatus
from rempart.claims.service import ClaimNotPending, insurer_claim, insurer_claims, review_claim
from rempart.detection.deps import GuardedStaffCaller
from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, requires
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.pricing.forms import DOMAIN_WORDS
from rempart.professionals.models import Practice
from rempart.web.deps import SessionDep
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

# Why a reviewer rejects: a short list, so that the answers can be counted.
REJECT_REASONS: dict[str, str] = {
    "not-justified": _("The care is not justified by the documents"),
    "price": _("The price is not in line with the care"),
    "duplicate": _("The care was already paid"),
    "documents-missing": _("Documents are missing"),
    "other": _("Another reason (say which in the comment)"),
}
COMMENT_LIMIT = 500


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


def _practice_names(session: SessionDep, claims: Sequence[Claim]) -> dict[uuid.UUID, str]:
    # A practice is a platform record (no tenant), read by its key: the name a reviewer recognises.
    names = {}
    for practice_id in {c.practice_id for c in claims}:
        practice = session.get(Practice, practice_id)
        names[practice_id] = practice.name if practice is not None else str(practice_id)[:8]
    return names


def _apply(claims: Sequence[Claim], filters: QueueFilters) -> tuple[list[Claim], dict[str, str]]:
    errors: dict[str, str] = {}
    low = _cents(filters.min_euros) if filters.min_euros else None
    high = _cents(filters.max_euros) if filters.max_euros else None
    if filters.min_euros and low is None:
        errors["min_euros"] = _("Write an amount in euros, such as 120,50.")
    if filters.max_euros and high is None:
        errors["max_euros"] = _("Write an amount in euros, such as 120,50.")
    kept = [
        c
        for c in claims
        if (not filters.reason or (c.reason_code is not None and c.reason_code.value == filters.reason))
        and (not filters.practice or str(c.practice_id) == filters.practice)
        and (low is None or c.insurer_cents >= low)
        and (high is None or c.insurer_cents <= high)
    ]
    # The queue: what waits for a person first, then the oldest.
    kept.sort(key=lambda c: (c.status is not ClaimStatus.PENDING_REVIEW, c.created_at))
    return kept, errors


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
    claims = insurer_claims(
        session,
        staff=staff,
        now=identity.clock(),
        status=ClaimStatus(filters.status) if filters.status else None,
        under_attestation=True if filters.attestation else None,
        limit=QUEUE_LIMIT,
    )
    names = _practice_names(session, claims)
    shown, errors = _apply(claims, filters)
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
        domain_words=DOMAIN_WORDS,
        reject_reasons=REJECT_REASONS,
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
    identity: IdentityDep,
    decided: str = "",
) -> HTMLResponse:
    claim = insurer_claim(session, staff=staff, claim_id=claim_id, now=identity.clock())
    names = _practice_names(session, [claim])
    return _detail(
        request,
        viewer,
        claim,
        names[claim.practice_id],
        can_review=viewer_can_review(staff.permissions),
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
    identity: IdentityDep,
    decision: Annotated[str, Form()] = "",
    reject_reason: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
) -> Response:
    """Accept, or reject with a reason from the list; the claim's page shows the decision after."""
    now = identity.clock()
    errors: dict[str, str] = {}
    comment = comment.strip()
    if decision not in {"accept", "reject"}:
        errors["decision"] = _("Choose to accept or to reject the claim.")
    if decision == "reject":
        if reject_reason not in REJECT_REASONS:
            errors["reject_reason"] = _("Choose why you reject the claim.")
        if reject_reason == "other" and not comment:
            errors["comment"] = _("Say in a few words why you reject the claim.")
    if len(comment) > COMMENT_LIMIT:
        errors["comment"] = _("The comment is too long: 500 characters at most.")
    if not errors:
        try:
            review_claim(session=session, staff=staff, claim_id=claim_id, accept=decision == "accept", now=now)
        except ClaimNotPending:
            errors["decision"] = _("This claim was decided meanwhile: see its status above.")
        else:
            return see_other(f"/insurer/claims/{claim_id}?decided={'accepted' if decision == 'accept' else 'rejected'}")
    claim = insurer_claim(session, staff=staff, claim_id=claim_id, now=now)
    return _detail(
        request,
        viewer,
        claim,
        _practice_names(session, [claim])[claim.practice_id],
        can_review=True,
        status=422,
        errors=errors,
        values={"reject_reason": reject_reason if reject_reason in REJECT_REASONS else "", "comment": comment},
    )
