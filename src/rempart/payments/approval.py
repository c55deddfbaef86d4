"""Payment runs from the back office: a preview first, then the run; above ``SECOND_APPROVAL_CENTS``
the run waits for a second staff member's approval (four eyes: whoever asked never approves, in
Python and as a database constraint), and it runs once, whoever clicks twice.

The approver approves what the requester previewed: if the accepted claims up to the cut-off day
changed meanwhile (a claim accepted since), the request lapses and must be asked again, so nobody
pays more than two people saw.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from rempart.audit.care import record_staff_access
from rempart.audit.disclosures import Operation
from rempart.audit.models import Channel, Outcome
from rempart.claims.models import Claim, ClaimStatus
from rempart.errors import Conflict, NotFound
from rempart.idempotency import check_replay, digest, once
from rempart.identity.errors import PermissionDenied
from rempart.identity.models import Account
from rempart.identity.principal import StaffPrincipal
from rempart.payments.approval_models import PaymentRunRequest, RunRequestStatus
from rempart.payments.models import PaymentRun, Remittance, RemittanceLine
from rempart.payments.service import NothingDue, payment_run, run_payments
from rempart.professionals.models import Practice
from rempart.tenancy import bind_tenant

# A run paying this much or more needs a second staff member's approval: 50,000 €.
SECOND_APPROVAL_CENTS = 5_000_000


class RunRequestNotFound(NotFound):
    slug = "not-found"
    title = "Payment run request not found"


class RunRequestDecided(Conflict):
    slug = "conflict"
    title = "This payment run request was already decided"


class RunRequestLapsed(Conflict):
    slug = "conflict"
    title = "The claims to pay changed since the request"


class OwnRunRequest(PermissionDenied):
    """The person who asked for a run cannot approve it: a second person must."""


@dataclass(frozen=True)
class PracticeTotal:
    practice_id: uuid.UUID
    practice_name: str
    claim_count: int
    total_cents: int


@dataclass(frozen=True)
class PreviewClaim:
    claim_id: uuid.UUID
    practice_id: uuid.UUID
    practice_name: str
    first_care_date: date
    amount_cents: int


@dataclass(frozen=True)
class RunPreview:
    cutoff: date
    practices: tuple[PracticeTotal, ...]
    claims: tuple[PreviewClaim, ...]
    claim_count: int
    total_cents: int

    @property
    def needs_second_approval(self) -> bool:
        return self.total_cents >= SECOND_APPROVAL_CENTS


@dataclass(frozen=True)
class RunAsked:
    """What asking for a run did: ran it (``run``), or left it waiting for a second person (``request``)."""

    run: PaymentRun | None = None
    request: PaymentRunRequest | None = None
    replayed: bool = False  # the same Idempotency-Key came back: this is the first answer


def _payable(session: Session, staff: StaffPrincipal, cutoff: date) -> list[PreviewClaim]:
    bind_tenant(session, staff.insurer_id)
    rows = session.execute(
        select(Claim.id, Claim.practice_id, Practice.name, Claim.first_care_date, Claim.insurer_cents)
        .join(Practice, Practice.id == Claim.practice_id)
        .where(
            Claim.insurer_id == staff.insurer_id,
            Claim.status == ClaimStatus.ACCEPTED,
            Claim.first_care_date <= cutoff,
        )
        .order_by(Practice.name, Claim.first_care_date, Claim.id)
    ).all()
    return [PreviewClaim(*row) for row in rows]


def preview_run(session: Session, *, staff: StaffPrincipal, cutoff: date, now: datetime) -> RunPreview:
    """What a run up to ``cutoff`` would pay, per practice and per claim (amounts only, no patient);
    the look is recorded like a run's (committed)."""
    claims = _payable(session, staff, cutoff)
    by_practice: dict[uuid.UUID, list[PreviewClaim]] = {}
    for claim in claims:
        by_practice.setdefault(claim.practice_id, []).append(claim)
    practices = tuple(
        PracticeTotal(practice_id, items[0].practice_name, len(items), sum(c.amount_cents for c in items))
        for practice_id, items in by_practice.items()
    )
    record_staff_access(
        session,
        staff=staff,
        operation=Operation.PAYMENT_RUN,
        outcome=Outcome.DISCLOSED,
        now=now,
        reference=f"preview:{cutoff.isoformat()}",
        channel=Channel.BACKOFFICE,
    )
    session.commit()
    return RunPreview(
        cutoff=cutoff,
        practices=practices,
        claims=tuple(claims),
        claim_count=len(claims),
        total_cents=sum(c.amount_cents for c in claims),
    )


def _totals(session: Session, staff: StaffPrincipal, cutoff: date) -> tuple[int, int]:
    bind_tenant(session, staff.insurer_id)
    count, total = session.execute(
        select(func.count(Claim.id), func.coalesce(func.sum(Claim.insurer_cents), 0)).where(
            Claim.insurer_id == staff.insurer_id,
            Claim.status == ClaimStatus.ACCEPTED,
            Claim.first_care_date <= cutoff,
        )
    ).one()
    return int(count), int(total)


def _replay(session: Session, staff: StaffPrincipal, key: str, request_digest: str) -> RunAsked | None:
    """The run or the request this key already made (``None`` if none): the same answer again."""
    bind_tenant(session, staff.insurer_id)
    run = session.scalar(
        select(PaymentRun).where(PaymentRun.insurer_id == staff.insurer_id, PaymentRun.idempotency_key == key)
    )
    if run is not None:
        check_replay(run.request_digest or "", request_digest)
        return RunAsked(run=run, replayed=True)
    request = session.scalar(
        select(PaymentRunRequest).where(
            PaymentRunRequest.insurer_id == staff.insurer_id, PaymentRunRequest.idempotency_key == key
        )
    )
    if request is not None:
        check_replay(request.request_digest or "", request_digest)
        return RunAsked(request=request, replayed=True)
    return None


def do_ask_for_run(
    session: Session, *, staff: StaffPrincipal, cutoff: date, now: datetime, idempotency_key: str | None = None
) -> RunAsked:
    """Run now below the threshold; above it, a request waiting for a second staff member (committed).
    With an ``idempotency_key``, the same key again answers with what the first asking made (even
    once everything is paid); a key used for another cut-off day is refused (422)."""
    request_digest = digest({"cutoff_date": cutoff.isoformat()})
    if idempotency_key is None:
        return _ask(session, staff=staff, cutoff=cutoff, now=now, key=None, request_digest=request_digest)
    key = idempotency_key
    replayed = _replay(session, staff, key, request_digest)
    if replayed is not None:
        return replayed
    return once(
        session,
        lambda: _ask(session, staff=staff, cutoff=cutoff, now=now, key=key, request_digest=request_digest),
        lambda: _replay(session, staff, key, request_digest),
    )


def _ask(
    session: Session, *, staff: StaffPrincipal, cutoff: date, now: datetime, key: str | None, request_digest: str
) -> RunAsked:
    count, total = _totals(session, staff, cutoff)
    if count == 0:
        session.rollback()
        raise NothingDue(f"no accepted claim with care up to {cutoff.isoformat()} is waiting to be paid")
    if total < SECOND_APPROVAL_CENTS:
        run = run_payments(
            session=session, staff=staff, cutoff=cutoff, now=now, idempotency_key=key, request_digest=request_digest
        )
        return RunAsked(run=run)
    request = PaymentRunRequest(
        insurer_id=staff.insurer_id,
        id=uuid.uuid4(),
        cutoff_date=cutoff,
        claim_count=count,
        total_cents=total,
        status=RunRequestStatus.WAITING,
        requested_by=staff.account_id,
        requested_at=now,
        idempotency_key=key,
        request_digest=request_digest,
    )
    session.add(request)
    session.commit()
    return RunAsked(request=request)


def run_requests(session: Session, *, staff: StaffPrincipal, limit: int = 50) -> Sequence[PaymentRunRequest]:
    """The insurer's run requests, those waiting first, then the newest."""
    bind_tenant(session, staff.insurer_id)
    waiting_first = (PaymentRunRequest.status != RunRequestStatus.WAITING).asc()
    return session.scalars(
        select(PaymentRunRequest)
        .where(PaymentRunRequest.insurer_id == staff.insurer_id)
        .order_by(waiting_first, PaymentRunRequest.requested_at.desc())
        .limit(limit)
    ).all()


def run_request(session: Session, *, staff: StaffPrincipal, request_id: uuid.UUID) -> PaymentRunRequest:
    bind_tenant(session, staff.insurer_id)
    found = session.scalar(
        select(PaymentRunRequest).where(
            PaymentRunRequest.insurer_id == staff.insurer_id, PaymentRunRequest.id == request_id
        )
    )
    if found is None:
        raise RunRequestNotFound("no payment run request with this id")
    return found


def _decide(
    session: Session, *, staff: StaffPrincipal, request_id: uuid.UUID, status: RunRequestStatus, now: datetime
) -> PaymentRunRequest:
    """Claim the decision with a conditional update: of two people deciding at once, one wins."""
    request = run_request(session, staff=staff, request_id=request_id)
    if request.status is not RunRequestStatus.WAITING:
        raise RunRequestDecided(f"this request is {request.status.value}")
    if request.requested_by == staff.account_id:
        raise OwnRunRequest("a second staff member must decide a payment run you asked for")
    done = session.execute(
        update(PaymentRunRequest)
        .where(
            PaymentRunRequest.insurer_id == staff.insurer_id,
            PaymentRunRequest.id == request.id,
            PaymentRunRequest.status == RunRequestStatus.WAITING,
            PaymentRunRequest.requested_by != staff.account_id,
        )
        .values(status=status, decided_by=staff.account_id, decided_at=now)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise RunRequestDecided("another staff member decided this request meanwhile")
    return request


def do_refuse_run(session: Session, *, staff: StaffPrincipal, request_id: uuid.UUID, now: datetime) -> None:
    _decide(session, staff=staff, request_id=request_id, status=RunRequestStatus.REFUSED, now=now)
    session.commit()


def do_approve_run(session: Session, *, staff: StaffPrincipal, request_id: uuid.UUID, now: datetime) -> PaymentRun:
    """A second staff member approves a waiting request: the run is made, in the same transaction
    as the approval, for exactly the claims the requester previewed (else the request lapses)."""
    request = run_request(session, staff=staff, request_id=request_id)
    waiting = request.status is RunRequestStatus.WAITING and request.requested_by != staff.account_id
    if waiting and _totals(session, staff, request.cutoff_date) != (request.claim_count, request.total_cents):
        _decide(session, staff=staff, request_id=request_id, status=RunRequestStatus.LAPSED, now=now)
        session.commit()
        raise RunRequestLapsed("the claims to pay changed since the request: ask for the run again")
    _decide(session, staff=staff, request_id=request_id, status=RunRequestStatus.APPROVED, now=now)
    # run_payments commits: the approval and the run are one transaction; the run's id is noted on
    # the request right after (a crash between the two leaves an approved request without its link,
    # never a run without its approval nor a second run).
    run = run_payments(session=session, staff=staff, cutoff=request.cutoff_date, now=now)
    session.execute(
        update(PaymentRunRequest)
        .where(PaymentRunRequest.insurer_id == staff.insurer_id, PaymentRunRequest.id == request.id)
        .values(run_id=run.id)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    session.refresh(request)
    return run


@dataclass(frozen=True)
class RunRemittance:
    remittance: Remittance
    practice_name: str


def run_remittances(
    session: Session, *, staff: StaffPrincipal, run_id: uuid.UUID
) -> tuple[PaymentRun, list[RunRemittance]]:
    """One of the insurer's runs and its remittances, each with its practice's name."""
    run, remittances = payment_run(session, staff=staff, run_id=run_id)
    names = dict(
        session.execute(
            select(Practice.id, Practice.name).where(Practice.id.in_([r.practice_id for r in remittances]))
        ).all()
    )
    return run, [RunRemittance(r, names.get(r.practice_id, "")) for r in remittances]


def remittances_csv(session: Session, *, staff: StaffPrincipal, run_id: uuid.UUID) -> tuple[str, str]:
    """The run's remittances as CSV, one row per claim paid (amounts and references only, no
    patient): the file's name and its text."""
    run, remittances = run_remittances(session, staff=staff, run_id=run_id)
    lines = session.execute(
        select(RemittanceLine.remittance_id, RemittanceLine.claim_id, RemittanceLine.amount_cents)
        .join(
            Remittance,
            (Remittance.insurer_id == RemittanceLine.insurer_id) & (Remittance.id == RemittanceLine.remittance_id),
        )
        .where(RemittanceLine.insurer_id == staff.insurer_id, Remittance.payment_run_id == run.id)
        .order_by(RemittanceLine.remittance_id, RemittanceLine.claim_id)
    ).all()
    by_id = {r.remittance.id: r for r in remittances}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["remittance_number", "practice", "paid_at", "claim_id", "amount_eur"])
    for remittance_id, claim_id, amount_cents in lines:
        paid = by_id[remittance_id]
        writer.writerow(
            [
                paid.remittance.remittance_number,
                _plain(paid.practice_name),
                paid.remittance.paid_at.isoformat(),
                str(claim_id),
                f"{amount_cents // 100}.{amount_cents % 100:02d}",
            ]
        )
    return f"remittances-{run.created_at:%Y%m%d}-{str(run.id)[:8]}.csv", out.getvalue()


def _plain(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def staff_logins(session: Session, *, staff: StaffPrincipal, account_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The logins of the insurer's staff who asked for or decided runs, as the page names them."""
    if not account_ids:
        return {}
    rows = session.execute(
        select(Account.id, Account.login).where(Account.id.in_(account_ids), Account.insurer_id == staff.insurer_id)
    ).all()
    return {account_id: str(login) for account_id, login in rows}
