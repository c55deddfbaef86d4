"""Prior approvals: the insurer commits to an amount before optical, hearing, dental or hospital care.

A request cites the patient's rights check and lists the planned lines. The decision is automatic
unless the amount needs a person: granted (amounts per line, an approval number and an expiry),
partially granted (a yearly ceiling caps some lines), refused with a reason code, or pending.
Approvals are not consumed by themselves; the claim that uses one consumes the ceilings.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rempart.approvals.models import (
    USABLE_APPROVAL,
    ApprovalReason,
    ApprovalStatus,
    PriorApproval,
    PriorApprovalLine,
)
from rempart.audit.care import record_practice_access, record_staff_access
from rempart.audit.disclosures import Operation
from rempart.audit.models import Outcome
from rempart.eligibility.service import access_check, care_day, domains_for
from rempart.errors import Conflict, NotFound, ValidationFailed
from rempart.idempotency import check_replay, digest, once
from rempart.identity.principal import PracticePrincipal, StaffPrincipal
from rempart.insurers.models import APPROVAL_DOMAINS, CareDomain
from rempart.pagination import Cursor, Page, keyset_page
from rempart.pricing.engine import CareLine, Sante100Class, quote
from rempart.pricing.models import PricedLineColumns
from rempart.pricing.service import ceiling_keys, checked_cover, usage
from rempart.tenancy import bind_practice, bind_tenant, record_of

# How long an approval may be used, from the day it is decided.
APPROVAL_VALIDITY: dict[CareDomain, timedelta] = {
    CareDomain.OPTI: timedelta(days=180),
    CareDomain.AUDI: timedelta(days=180),
    CareDomain.DENT: timedelta(days=180),
    CareDomain.HOSP: timedelta(days=90),
}
# Above this insurer share, a person at the insurer decides.
REVIEW_THRESHOLD_CENTS = 200_000
MAX_LINES = 50


class ApprovalNotFound(NotFound):
    slug = "prior-approval-not-found"
    title = "Prior approval not found"


class ApprovalNotCancellable(Conflict):
    slug = "prior-approval-not-cancellable"
    title = "This prior approval cannot be cancelled"


class ApprovalNotPending(Conflict):
    slug = "prior-approval-not-pending"
    title = "This prior approval is not waiting for a decision"


@dataclass(frozen=True)
class ApprovalRequest:
    check_id: uuid.UUID
    care_domain: CareDomain
    lines: tuple[CareLine, ...]

    def payload(self) -> dict[str, object]:
        return {
            "check_id": str(self.check_id),
            "care_domain": self.care_domain.value,
            "lines": [asdict(line) for line in self.lines],
        }


@dataclass(frozen=True)
class ApprovalOutcome:
    approval: PriorApproval
    replayed: bool  # the same Idempotency-Key came back: this is the first result


def _validate(request: ApprovalRequest) -> None:
    if request.care_domain not in APPROVAL_DOMAINS:
        raise ValidationFailed("prior approvals exist for OPTI, AUDI, DENT and HOSP only")
    if not 1 <= len(request.lines) <= MAX_LINES:
        raise ValidationFailed(f"a prior approval has 1 to {MAX_LINES} lines")
    if any(line.care_domain is not request.care_domain for line in request.lines):
        raise ValidationFailed("every line of a prior approval is in the approval's care domain")
    for line in request.lines:
        line.validate()


def _by_key(session: Session, *, insurer_id: uuid.UUID, practice_id: uuid.UUID, key: str) -> PriorApproval | None:
    return session.scalar(
        select(PriorApproval).where(
            PriorApproval.insurer_id == insurer_id,
            PriorApproval.practice_id == practice_id,
            PriorApproval.idempotency_key == key,
        )
    )


def _new_number(domain: CareDomain) -> str:
    return f"{domain.value}-{secrets.token_hex(6).upper()}"


def request_approval(
    *,
    session: Session,
    caller: PracticePrincipal,
    request: ApprovalRequest,
    idempotency_key: str,
    now: datetime,
    review_threshold_cents: int = REVIEW_THRESHOLD_CENTS,
) -> ApprovalOutcome:
    """Decide a prior approval, once per Idempotency-Key, and commit it with its access event."""
    _validate(request)
    domains_for(caller, [request.care_domain])
    request_digest = digest(request.payload())
    check = access_check(session, caller=caller, check_id=request.check_id, now=now)
    insurer_id = check.insurer_id

    def replay() -> ApprovalOutcome | None:
        bind_tenant(session, insurer_id)
        found = _by_key(session, insurer_id=insurer_id, practice_id=caller.practice_id, key=idempotency_key)
        if found is None:
            return None
        check_replay(found.request_digest, request_digest)
        return ApprovalOutcome(found, replayed=True)

    def create() -> ApprovalOutcome:
        cover = checked_cover(session, check=check)
        lines = request.lines
        before = usage(
            session,
            insurer_id=insurer_id,
            beneficiary_id=check.beneficiary_id,
            keys=ceiling_keys(lines, cover),
        )
        priced = quote(lines, cover.formulas, consumed=before, in_force=cover.in_force)
        # What the lines would get if no yearly ceiling had been consumed at all.
        unbounded = {
            d: replace(f, yearly_ceiling_cents=None)
            for d, f in cover.formulas.items()
            if f.yearly_ceiling_cents is not None  # a ceiling of 0 caps everything too
        }
        asked = quote(lines, {**cover.formulas, **unbounded}, consumed={}, in_force=cover.in_force)
        requested = asked.insurer_cents
        granted = priced.insurer_cents

        status, reason = ApprovalStatus.GRANTED, None
        if not all(cover.in_force(line.care_date) for line in lines):
            status, reason = ApprovalStatus.REFUSED, ApprovalReason.NOT_COVERED_AT_DATE
        elif request.care_domain not in cover.covers:
            status, reason = ApprovalStatus.REFUSED, ApprovalReason.DOMAIN_NOT_COVERED
        elif any(line.sante_100_class is Sante100Class.A and line.over_regulated_price for line in lines):
            status, reason = ApprovalStatus.REFUSED, ApprovalReason.PRICE_OVER_REGULATED_LIMIT
        elif requested > 0 and granted == 0:
            status, reason = ApprovalStatus.REFUSED, ApprovalReason.CEILING_EXHAUSTED
        elif granted > review_threshold_cents:
            status, reason = ApprovalStatus.PENDING, ApprovalReason.MANUAL_REVIEW
        elif granted < requested:
            status, reason = ApprovalStatus.PARTIALLY_GRANTED, ApprovalReason.CEILING_PARTLY_USED
        committed = status in USABLE_APPROVAL

        approval = PriorApproval(
            insurer_id=insurer_id,
            id=uuid.uuid4(),
            approval_number=_new_number(request.care_domain),
            check_id=check.id,
            beneficiary_id=check.beneficiary_id,
            contract_id=check.contract_id,
            practice_id=caller.practice_id,
            professional_id=caller.professional_id,
            care_domain=request.care_domain,
            status=status,
            reason_code=reason,
            requested_cents=requested,
            granted_cents=granted if committed else 0,
            expires_on=care_day(now) + APPROVAL_VALIDITY[request.care_domain],
            created_at=now,
            decided_at=None if status is ApprovalStatus.PENDING else now,
            idempotency_key=idempotency_key,
            request_digest=request_digest,
        )
        approval.lines = [
            PriorApprovalLine(
                insurer_id=insurer_id,
                line_no=number,
                granted_cents=line_quote.insurer_cents if committed else 0,
                **PricedLineColumns.priced_columns(line, line_quote),
            )
            for number, (line, line_quote) in enumerate(zip(lines, priced.lines, strict=True), start=1)
        ]
        session.add(approval)
        session.flush()
        return ApprovalOutcome(approval, replayed=False)

    outcome = replay() or once(session, create, replay)
    _record(session, caller=caller, approval=outcome.approval, operation=Operation.PRIOR_APPROVAL_REQUEST, now=now)
    session.commit()
    return outcome


def _record(
    session: Session, *, caller: PracticePrincipal, approval: PriorApproval, operation: Operation, now: datetime
) -> None:
    record_practice_access(
        session,
        caller=caller,
        operation=operation,
        outcome=Outcome.DISCLOSED,
        now=now,
        insurer_id=approval.insurer_id,
        beneficiary_id=approval.beneficiary_id,
        reference=approval.approval_number,
    )


def view_approval(
    *, session: Session, caller: PracticePrincipal, approval_id: uuid.UUID, now: datetime
) -> PriorApproval:
    approval = access_approval(session, caller=caller, approval_id=approval_id)
    approval.lines  # noqa: B018  (loaded under the insurer's tenant binding)
    _record(session, caller=caller, approval=approval, operation=Operation.PRIOR_APPROVAL_VIEW, now=now)
    session.commit()
    return approval


def practice_approvals(
    *, session: Session, caller: PracticePrincipal, now: datetime, limit: int = 100
) -> Sequence[PriorApproval]:
    """The practice's prior approvals with every insurer, newest first, without their lines; each one
    shown is logged (committed)."""
    bind_practice(session, caller.practice_id)
    approvals = session.scalars(
        select(PriorApproval)
        .where(PriorApproval.practice_id == caller.practice_id)
        .order_by(PriorApproval.created_at.desc())
        .limit(limit)
    ).all()
    for approval in approvals:
        _record(session, caller=caller, approval=approval, operation=Operation.PRIOR_APPROVAL_VIEW, now=now)
    session.commit()
    return approvals


def access_approval(session: Session, *, caller: PracticePrincipal, approval_id: uuid.UUID) -> PriorApproval:
    """The caller's practice's own approval; another practice's answers like a missing one."""
    return record_of(
        session,
        PriorApproval,
        approval_id,
        practice_id=caller.practice_id,
        missing=ApprovalNotFound,
        what="prior approval",
    )


def cancel_approval(
    *, session: Session, caller: PracticePrincipal, approval_id: uuid.UUID, now: datetime
) -> PriorApproval:
    """Cancel an approval no claim has used yet, and commit. Cancelling twice is harmless."""
    approval = access_approval(session, caller=caller, approval_id=approval_id)
    approval.lines  # noqa: B018  (loaded under the insurer's tenant binding)
    _record(session, caller=caller, approval=approval, operation=Operation.PRIOR_APPROVAL_CANCEL, now=now)
    if approval.status is ApprovalStatus.CANCELLED:
        session.commit()
        return approval
    cancellable = (ApprovalStatus.GRANTED, ApprovalStatus.PARTIALLY_GRANTED, ApprovalStatus.PENDING)
    done = session.execute(
        update(PriorApproval)
        .where(
            PriorApproval.insurer_id == approval.insurer_id,
            PriorApproval.id == approval.id,
            PriorApproval.status.in_(cancellable),
            PriorApproval.claim_id.is_(None),
        )
        .values(status=ApprovalStatus.CANCELLED, cancelled_at=now, granted_cents=0)
        .execution_options(synchronize_session=False)
    )
    session.refresh(approval)
    if done.rowcount != 1 and not _cancelled(approval):  # type: ignore[attr-defined]
        # A claim used it, or it was refused, between our read and our update.
        raise ApprovalNotCancellable(
            "a claim has used this approval" if approval.claim_id else "a refused approval cannot be cancelled"
        )
    session.commit()
    return approval


def _cancelled(approval: PriorApproval) -> bool:
    return approval.status is ApprovalStatus.CANCELLED


# -- the insurer's side ----------------------------------------------------------------------------


def pending_approvals(
    session: Session, *, staff: StaffPrincipal, now: datetime, limit: int = 100
) -> Sequence[PriorApproval]:
    """The first page of ``pending_approvals_page``."""
    return pending_approvals_page(session, staff=staff, now=now, limit=limit).items


def pending_approvals_page(
    session: Session, *, staff: StaffPrincipal, now: datetime, limit: int = 100, cursor: Cursor | None = None
) -> Page[PriorApproval]:
    """The insurer's approvals waiting for a person, oldest first, a page at a time (after
    ``cursor``); each one shown is logged (committed)."""
    bind_tenant(session, staff.insurer_id)
    statement = select(PriorApproval).where(
        PriorApproval.insurer_id == staff.insurer_id, PriorApproval.status == ApprovalStatus.PENDING
    )
    page = keyset_page(
        session,
        statement,
        at=PriorApproval.created_at,
        row_id=PriorApproval.id,
        cursor=cursor,
        limit=limit,
        descending=False,
    )
    for approval in page.items:
        _record_staff(session, staff=staff, approval=approval, now=now)
    session.commit()
    return page


def _record_staff(session: Session, *, staff: StaffPrincipal, approval: PriorApproval, now: datetime) -> None:
    record_staff_access(
        session,
        staff=staff,
        operation=Operation.CLAIM_REVIEW,
        outcome=Outcome.DISCLOSED,
        now=now,
        beneficiary_id=approval.beneficiary_id,
        reference=approval.approval_number,
    )


def decide_approval(
    *, session: Session, staff: StaffPrincipal, approval_id: uuid.UUID, grant: bool, now: datetime
) -> PriorApproval:
    """A person at the insurer grants or refuses a pending approval; committed with its access event."""
    bind_tenant(session, staff.insurer_id)
    approval = session.scalar(
        select(PriorApproval)
        .where(PriorApproval.insurer_id == staff.insurer_id, PriorApproval.id == approval_id)
        .with_for_update()
    )
    if approval is None:
        raise ApprovalNotFound("no prior approval with this id")
    if approval.status is not ApprovalStatus.PENDING:
        raise ApprovalNotPending(f"this approval is {approval.status.value}")
    _record_staff(session, staff=staff, approval=approval, now=now)
    approval.decided_at, approval.decided_by = now, staff.account_id
    if grant:
        approval.granted_cents = sum(line.insurer_cents for line in approval.lines)
        # The lines' shares were capped by the ceilings when the request came: as decided automatically.
        if approval.granted_cents < approval.requested_cents:
            approval.status, approval.reason_code = ApprovalStatus.PARTIALLY_GRANTED, ApprovalReason.CEILING_PARTLY_USED
        else:
            approval.status, approval.reason_code = ApprovalStatus.GRANTED, None
        for line in approval.lines:
            line.granted_cents = line.insurer_cents
        approval.expires_on = max(approval.expires_on, care_day(now) + APPROVAL_VALIDITY[approval.care_domain])
    else:
        approval.status, approval.reason_code = ApprovalStatus.REFUSED, ApprovalReason.REFUSED_BY_INSURER
        approval.granted_cents = 0
    session.commit()
    return approval
