"""Payment runs and remittance advices.

A run pays every accepted claim of one insurer whose care started on or before a cut-off day, and
writes one remittance per practice. It is one transaction, and it takes its claims with a single
conditional ``UPDATE ... SET status = 'paid' WHERE status = 'accepted'``: on PostgreSQL over rows
picked with ``FOR UPDATE SKIP LOCKED`` (a second run started at the same moment takes the other
claims, or none), on SQLite under the database's single writer lock. A unique constraint on the
claim in remittance lines is the second wall: no claim is ever paid twice.
"""

from __future__ import annotations

import secrets
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.orm import Session

from rempart.audit.care import record_practice_access, record_staff_access
from rempart.audit.disclosures import Operation
from rempart.audit.models import Outcome
from rempart.claims.models import Claim, ClaimStatus
from rempart.errors import Conflict, NotFound
from rempart.identity.principal import PracticePrincipal, StaffPrincipal
from rempart.insurers.models import Insurer
from rempart.pagination import Cursor, Page, after, page_of
from rempart.payments.models import PaymentRun, Remittance, RemittanceLine
from rempart.tenancy import bind_practice, bind_tenant, record_of


class RemittanceNotFound(NotFound):
    slug = "remittance-not-found"
    title = "Remittance not found"


class PaymentRunNotFound(NotFound):
    slug = "payment-run-not-found"
    title = "Payment run not found"


@dataclass(frozen=True)
class PaidClaim:
    claim_id: uuid.UUID
    practice_id: uuid.UUID
    professional_id: uuid.UUID
    amount_cents: int


class NothingDue(Conflict):
    """No accepted claim up to the cut-off day: a run would pay nothing, so none is made."""

    slug = "nothing-due"
    title = "Nothing is due up to this day"


def run_payments(
    *,
    session: Session,
    staff: StaffPrincipal,
    cutoff: date,
    now: datetime,
    idempotency_key: str | None = None,
    request_digest: str | None = None,
) -> PaymentRun:
    """Pay the insurer's accepted claims up to ``cutoff``, one remittance per practice; committed."""
    insurer_id = staff.insurer_id
    bind_tenant(session, insurer_id)
    run = PaymentRun(
        insurer_id=insurer_id,
        id=uuid.uuid4(),
        cutoff_date=cutoff,
        started_by=staff.account_id,
        created_at=now,
        idempotency_key=idempotency_key,
        request_digest=request_digest,
    )
    session.add(run)
    session.flush()

    payable = (
        select(Claim.id)
        .where(
            Claim.insurer_id == insurer_id,
            Claim.status == ClaimStatus.ACCEPTED,
            Claim.first_care_date <= cutoff,
        )
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer at a time anyway
    )
    session.execute(
        update(Claim)
        .where(Claim.insurer_id == insurer_id, Claim.id.in_(payable), Claim.status == ClaimStatus.ACCEPTED)
        .values(status=ClaimStatus.PAID, payment_run_id=run.id, paid_at=now)
        .execution_options(synchronize_session=False)
    )
    paid = [
        PaidClaim(*row)
        for row in session.execute(
            select(Claim.id, Claim.practice_id, Claim.professional_id, Claim.insurer_cents)
            .where(Claim.insurer_id == insurer_id, Claim.payment_run_id == run.id)
            .order_by(Claim.practice_id, Claim.created_at)
        )
    ]
    if not paid:
        # Nothing accepted up to the cut-off, or another run paid it meanwhile: no empty run.
        session.rollback()
        raise NothingDue(f"no accepted claim with care up to {cutoff.isoformat()} is waiting to be paid")
    by_practice: dict[uuid.UUID, list[PaidClaim]] = defaultdict(list)
    for claim in paid:
        by_practice[claim.practice_id].append(claim)

    remittances, lines = [], []
    for practice_id, claims in by_practice.items():
        remittance_id = uuid.uuid4()
        remittances.append(
            {
                "insurer_id": insurer_id,
                "id": remittance_id,
                "remittance_number": f"RSP-{now:%Y%m%d}-{secrets.token_hex(5).upper()}",
                "payment_run_id": run.id,
                "practice_id": practice_id,
                "paid_at": now,
                "claim_count": len(claims),
                "total_cents": sum(c.amount_cents for c in claims),
            }
        )
        lines += [
            {
                "insurer_id": insurer_id,
                "remittance_id": remittance_id,
                "claim_id": c.claim_id,
                "professional_id": c.professional_id,
                "amount_cents": c.amount_cents,
            }
            for c in claims
        ]
    if remittances:
        session.execute(insert(Remittance), remittances)
        session.execute(insert(RemittanceLine), lines)
    run.claim_count = len(paid)
    run.remittance_count = len(remittances)
    run.total_cents = sum(c.amount_cents for c in paid)
    session.flush()
    record_staff_access(
        session, staff=staff, operation=Operation.PAYMENT_RUN, outcome=Outcome.DISCLOSED, now=now, reference=run.id
    )
    session.commit()
    return run


def payment_runs(session: Session, *, staff: StaffPrincipal, limit: int = 50) -> Sequence[PaymentRun]:
    return payment_runs_page(session, staff=staff, limit=limit).items


def payment_runs_page(
    session: Session, *, staff: StaffPrincipal, limit: int = 50, cursor: Cursor | None = None
) -> Page[PaymentRun]:
    """The insurer's payment runs, newest first, a page at a time (after ``cursor``)."""
    bind_tenant(session, staff.insurer_id)
    statement = select(PaymentRun).where(PaymentRun.insurer_id == staff.insurer_id)
    if (past := after(cursor, PaymentRun.created_at, PaymentRun.id, descending=True)) is not None:
        statement = statement.where(past)
    rows = session.scalars(statement.order_by(PaymentRun.created_at.desc(), PaymentRun.id.desc()).limit(limit + 1))
    return page_of(rows.all(), limit, lambda run: Cursor(run.created_at, run.id))


def payment_run(session: Session, *, staff: StaffPrincipal, run_id: uuid.UUID) -> tuple[PaymentRun, list[Remittance]]:
    bind_tenant(session, staff.insurer_id)
    run = session.scalar(select(PaymentRun).where(PaymentRun.insurer_id == staff.insurer_id, PaymentRun.id == run_id))
    if run is None:
        raise PaymentRunNotFound("no payment run with this id")
    remittances = session.scalars(
        select(Remittance)
        .where(Remittance.insurer_id == staff.insurer_id, Remittance.payment_run_id == run.id)
        .order_by(Remittance.remittance_number)
    ).all()
    return run, list(remittances)


# -- the professional's side ---------------------------------------------------------------------


def practice_remittances(
    session: Session, *, caller: PracticePrincipal, limit: int = 100
) -> list[tuple[Remittance, str]]:
    """The first page of ``practice_remittances_page``."""
    return practice_remittances_page(session, caller=caller, limit=limit).items


def _practice_remittances(
    caller: PracticePrincipal, *, paid_from: datetime | None, paid_before: datetime | None
) -> Select[Remittance, str]:
    statement = (
        select(Remittance, Insurer.amc_number)
        .join(Insurer, Insurer.id == Remittance.insurer_id)
        .where(Remittance.practice_id == caller.practice_id)
    )
    if paid_from is not None:
        statement = statement.where(Remittance.paid_at >= paid_from)
    if paid_before is not None:
        statement = statement.where(Remittance.paid_at < paid_before)
    return statement


def practice_remittances_page(
    session: Session,
    *,
    caller: PracticePrincipal,
    limit: int = 100,
    cursor: Cursor | None = None,
    paid_from: datetime | None = None,
    paid_before: datetime | None = None,
) -> Page[tuple[Remittance, str]]:
    """The practice's remittances from every insurer, newest first, with the payer's AMC number, a
    page at a time (after ``cursor``), those paid from ``paid_from`` and before ``paid_before`` when
    given."""
    bind_practice(session, caller.practice_id)
    statement = _practice_remittances(caller, paid_from=paid_from, paid_before=paid_before)
    if (past := after(cursor, Remittance.paid_at, Remittance.id, descending=True)) is not None:
        statement = statement.where(past)
    rows = session.execute(statement.order_by(Remittance.paid_at.desc(), Remittance.id.desc()).limit(limit + 1)).all()
    return page_of([(remittance, amc) for remittance, amc in rows], limit, lambda r: Cursor(r[0].paid_at, r[0].id))


def count_practice_remittances(
    session: Session, *, caller: PracticePrincipal, paid_from: datetime | None, paid_before: datetime | None
) -> int:
    """How many remittances ``practice_remittances_page`` would list over all its pages."""
    bind_practice(session, caller.practice_id)
    listed = _practice_remittances(caller, paid_from=paid_from, paid_before=paid_before).subquery()
    return session.scalar(select(func.count()).select_from(listed)) or 0


def access_remittance(
    session: Session, *, caller: PracticePrincipal, remittance_id: uuid.UUID, now: datetime
) -> Remittance:
    """One of the practice's remittances with the claims it pays; each claim's patient is logged."""
    remittance = record_of(
        session,
        Remittance,
        remittance_id,
        practice_id=caller.practice_id,
        missing=RemittanceNotFound,
        what="remittance",
    )
    beneficiaries = session.execute(
        select(Claim.id, Claim.beneficiary_id)
        .join(
            RemittanceLine,
            (RemittanceLine.insurer_id == Claim.insurer_id) & (RemittanceLine.claim_id == Claim.id),
        )
        .where(RemittanceLine.insurer_id == remittance.insurer_id, RemittanceLine.remittance_id == remittance.id)
    ).all()
    for claim_id, beneficiary_id in beneficiaries:
        record_practice_access(
            session,
            caller=caller,
            operation=Operation.REMITTANCE_VIEW,
            outcome=Outcome.DISCLOSED,
            now=now,
            insurer_id=remittance.insurer_id,
            beneficiary_id=beneficiary_id,
            reference=claim_id,
        )
    remittance.lines  # noqa: B018  (load the lines now that the tenant wall lets them through)
    return remittance


def view_remittance(
    *, session: Session, caller: PracticePrincipal, remittance_id: uuid.UUID, now: datetime
) -> tuple[Remittance, str]:
    """One of the practice's remittances and its payer's AMC number, the accesses committed."""
    remittance = access_remittance(session, caller=caller, remittance_id=remittance_id, now=now)
    amc_number = payer_of(session, remittance)
    session.commit()
    return remittance, amc_number


def payer_of(session: Session, remittance: Remittance) -> str:
    amc: str = session.execute(select(Insurer.amc_number).where(Insurer.id == remittance.insurer_id)).scalar_one()
    return amc
