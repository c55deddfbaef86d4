"""Adjudication: the rules that accept, reject (with a stable reason code) or hold a claim for
review, and what an accepted claim takes — yearly ceilings and its prior approval — and gives back
when it is closed unpaid."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from rempart.approvals.models import USABLE_APPROVAL, PriorApproval
from rempart.claims.models import LIVE_CLAIM, Claim, ClaimLine, ClaimReason, ClaimStatus
from rempart.db import is_postgresql
from rempart.pricing.engine import CareLine, CeilingKey, Limit, Quote, Sante100Class, quote
from rempart.pricing.models import PricedLineColumns
from rempart.pricing.service import (
    CheckedCover,
    ceiling_keys,
    consume_ceilings,
    lock_ceilings,
    release_ceilings,
    usage,
)

# Above this amount a claims agent looks at the claim before it is paid.
REVIEW_THRESHOLD_CENTS = 300_000


@dataclass(frozen=True)
class Decision:
    status: ClaimStatus
    reason: ClaimReason | None
    priced: Quote
    approval: PriorApproval | None = None


def _approval_problem(
    session: Session, *, claim: Claim, cover: CheckedCover, lines: Sequence[CareLine], number: str | None
) -> tuple[ClaimReason | None, PriorApproval | None]:
    needs = {
        line.care_domain
        for line in lines
        if (c := cover.covers.get(line.care_domain)) is not None and c.guarantee.prior_approval_required
    }
    if not number:
        return (ClaimReason.APPROVAL_MISSING if needs else None), None
    approval = session.scalar(
        select(PriorApproval)
        .where(PriorApproval.insurer_id == claim.insurer_id, PriorApproval.approval_number == number)
        .with_for_update()
    )
    if (
        approval is None
        or approval.beneficiary_id != claim.beneficiary_id
        or approval.practice_id != claim.practice_id
        or any(line.care_domain is not approval.care_domain for line in lines)
    ):
        return ClaimReason.APPROVAL_MISMATCH, None
    if approval.status not in USABLE_APPROVAL:
        return ClaimReason.APPROVAL_NOT_GRANTED, approval
    if max(line.care_date for line in lines) > approval.expires_on:
        return ClaimReason.APPROVAL_EXPIRED, approval
    if approval.claim_id is not None and approval.claim_id != claim.id:
        return ClaimReason.APPROVAL_ALREADY_USED, approval
    return None, approval


def _wait_for_twins(session: Session, *, claim: Claim) -> None:
    """Claims for the same care take turns from here to their commit, so that the duplicate check
    sees a twin sent at the same moment under another Idempotency-Key (two workstations, a retry
    with a new key). SQLite already runs one writer at a time; PostgreSQL needs a lock, on the
    fingerprint: the claim row is new and nothing else the twins share is locked before the check."""
    if is_postgresql(session):
        key = int.from_bytes(bytes.fromhex(claim.fingerprint[:16]), "big", signed=True)
        session.execute(select(func.pg_advisory_xact_lock(key)))


def adjudicate(  # noqa: PLR0911  (one return per reason code reads like the rule book)
    session: Session,
    *,
    claim: Claim,
    cover: CheckedCover,
    lines: Sequence[CareLine],
    approval_number: str | None,
    review_threshold: int = REVIEW_THRESHOLD_CENTS,
    refused: ClaimReason | None = None,
) -> Decision:
    def reject(reason: ClaimReason, priced: Quote | None = None) -> Decision:
        if priced is None:
            before = usage(
                session,
                insurer_id=claim.insurer_id,
                beneficiary_id=claim.beneficiary_id,
                keys=ceiling_keys(lines, cover),
            )
            priced = quote(lines, cover.formulas, consumed=before, in_force=cover.in_force)
        return Decision(ClaimStatus.REJECTED, reason, priced)

    if refused is not None:  # decided before adjudication (an attestation that does not hold)
        return reject(refused)
    if not all(cover.in_force(line.care_date) for line in lines):
        return reject(ClaimReason.NOT_COVERED_AT_DATE)
    if not any(line.care_domain in cover.covers for line in lines):
        return reject(ClaimReason.DOMAIN_NOT_COVERED)
    if any(line.sante_100_class is Sante100Class.A and line.over_regulated_price for line in lines):
        return reject(ClaimReason.PRICE_OVER_REGULATED_LIMIT)
    _wait_for_twins(session, claim=claim)
    duplicate = session.scalar(
        select(Claim.id)
        .where(
            Claim.insurer_id == claim.insurer_id,
            Claim.fingerprint == claim.fingerprint,
            Claim.id != claim.id,
            Claim.status.in_(LIVE_CLAIM),
        )
        .limit(1)
    )
    if duplicate is not None and duplicate != claim.replaces_id:
        return reject(ClaimReason.DUPLICATE_CLAIM)
    problem, approval = _approval_problem(session, claim=claim, cover=cover, lines=lines, number=approval_number)
    if problem is not None:
        return reject(problem)

    ceilings = {key: ceiling for key in ceiling_keys(lines, cover) if (ceiling := cover.ceiling_of(key.care_domain))}
    before = lock_ceilings(session, insurer_id=claim.insurer_id, beneficiary_id=claim.beneficiary_id, ceilings=ceilings)
    priced = quote(lines, cover.formulas, consumed=before, in_force=cover.in_force)
    if approval is not None and priced.insurer_cents > approval.granted_cents:
        return reject(ClaimReason.APPROVAL_EXCEEDED, priced)
    if priced.insurer_cents == 0 and any(q.limited_by is Limit.YEARLY_CEILING for q in priced.lines):
        return reject(ClaimReason.CEILING_EXHAUSTED, priced)
    if priced.insurer_cents > review_threshold:
        return Decision(ClaimStatus.PENDING_REVIEW, ClaimReason.MANUAL_REVIEW, priced, approval)
    return Decision(ClaimStatus.ACCEPTED, None, priced, approval)


def apply_decision(
    session: Session,
    *,
    claim: Claim,
    cover: CheckedCover,
    lines: Sequence[CareLine],
    decision: Decision,
    now: datetime,
) -> None:
    """Write a decision: amounts, lines and, when accepted, ceilings and the approval."""
    accepted = decision.status is ClaimStatus.ACCEPTED
    payable = decision.status in (ClaimStatus.ACCEPTED, ClaimStatus.PENDING_REVIEW)
    claim.lines.clear()
    session.flush()
    for number, (line, priced) in enumerate(zip(lines, decision.priced.lines, strict=True), start=1):
        columns = PricedLineColumns.priced_columns(line, priced)
        if not payable:
            columns |= {"insurer_cents": 0, "remainder_cents": priced.price_cents - priced.amo_cents}
        if not accepted:
            columns |= {"ceiling_consumed_cents": 0}
        claim.lines.append(ClaimLine(insurer_id=claim.insurer_id, line_no=number, **columns))
    claim.status, claim.reason_code = decision.status, decision.reason
    claim.amo_cents = decision.priced.amo_cents
    claim.insurer_cents = decision.priced.insurer_cents if payable else 0
    claim.remainder_cents = claim.price_cents - claim.amo_cents - claim.insurer_cents
    claim.approval_id = decision.approval.id if decision.approval is not None else None
    claim.decided_at = now
    if accepted:
        consumed = decision.priced.consumed()
        ceilings = {key: ceiling for key in consumed if (ceiling := cover.ceiling_of(key.care_domain)) is not None}
        consume_ceilings(
            session,
            insurer_id=claim.insurer_id,
            beneficiary_id=claim.beneficiary_id,
            consumed=consumed,
            ceilings=ceilings,
        )
        if decision.approval is not None:
            decision.approval.claim_id = claim.id
    session.flush()


def _given_back(claim: Claim) -> dict[CeilingKey, int]:
    totals: dict[CeilingKey, int] = {}
    for line in claim.lines:
        if line.ceiling_consumed_cents:
            key = CeilingKey(line.care_domain, line.care_date.year)
            totals[key] = totals.get(key, 0) + line.ceiling_consumed_cents
    return totals


def release(session: Session, *, claim: Claim) -> None:
    """Give back the ceilings and the approval of an accepted claim that is closed unpaid."""
    release_ceilings(
        session, insurer_id=claim.insurer_id, beneficiary_id=claim.beneficiary_id, consumed=_given_back(claim)
    )
    if claim.approval_id is not None:
        session.execute(
            update(PriorApproval)
            .where(
                PriorApproval.insurer_id == claim.insurer_id,
                PriorApproval.id == claim.approval_id,
                PriorApproval.claim_id == claim.id,
            )
            .values(claim_id=None)
            .execution_options(synchronize_session=False)
        )
