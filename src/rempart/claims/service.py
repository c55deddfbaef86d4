"""Claims: submission (once per Idempotency-Key), automatic adjudication, corrections, cancellation,
and the insurer's review of the claims left pending.

Adjudication answers with stable reason codes. An accepted claim consumes the patient's yearly
ceilings (locked rows, see ``rempart.pricing.service``) and uses its prior approval; cancelling or
correcting it gives both back. Every state change is a conditional ``UPDATE ... WHERE status IN``
so that a payment run, a cancellation and a review racing on one claim cannot both win.
"""

from __future__ import annotations

import hashlib
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Select, case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rempart.approvals.models import PriorApproval
from rempart.attestations.models import Attestation
from rempart.audit.care import record_practice_access, record_staff_access
from rempart.audit.disclosures import Operation
from rempart.audit.models import Outcome
from rempart.claims.adjudication import (
    REVIEW_THRESHOLD_CENTS,
    Decision,
    adjudicate,
    apply_decision,
    release,
)
from rempart.claims.models import OPEN_CLAIM, Claim, ClaimReason, ClaimStatus, ReviewReason
from rempart.claims.offline import AttestedCheck, attested_check, attested_cover, insurer_of_attestation
from rempart.eligibility.models import RightsCheck
from rempart.eligibility.service import access_check, domains_for, refuse_future_care
from rempart.errors import Conflict, NotFound, ValidationFailed
from rempart.idempotency import check_replay, digest, once
from rempart.identity.principal import PracticePrincipal, StaffPrincipal
from rempart.pagination import Cursor, Page, after, page_of
from rempart.pricing.engine import CareLine, quote
from rempart.pricing.service import (
    ceiling_keys,
    checked_cover,
    usage,
)
from rempart.protection.service import KeyService
from rempart.tenancy import bind_practice, bind_tenant, record_of

MAX_LINES = 99


class ClaimNotFound(NotFound):
    slug = "claim-not-found"
    title = "Claim not found"


class ClaimClosed(Conflict):
    slug = "claim-closed"
    title = "This claim can no longer change"


class ClaimNotPending(Conflict):
    slug = "claim-not-pending-review"
    title = "This claim is not waiting for review"


class ReviewNoteInvalid(ValidationFailed):
    """A decision's reason or comment is refused: ``problems`` maps each field (``reason``,
    ``comment``) to a stable code, so that a page can mark the fields in its own words."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {code}" for field, code in problems.items()), extra={"fields": problems})
        self.problems = problems


@dataclass(frozen=True)
class ClaimRequest:
    """A claim cites the rights check of its patient, or, made while the platform was off, the
    patient's signed offline attestation (``attestation``, its text as read from the QR code)."""

    check_id: uuid.UUID | None
    lines: tuple[CareLine, ...]
    approval_number: str | None = None
    attestation: str | None = None

    def payload(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "check_id": str(self.check_id) if self.check_id else None,
            "approval_number": self.approval_number,
            "lines": [asdict(line) for line in self.lines],
        }
        if self.attestation is not None:  # absent otherwise: digests of earlier claims stay the same
            payload["attestation"] = self.attestation
        return payload


@dataclass(frozen=True)
class ClaimOutcome:
    claim: Claim
    replayed: bool  # the same Idempotency-Key came back: this is the first result


def _validate(request: ClaimRequest, caller: PracticePrincipal) -> None:
    if (request.check_id is None) == (request.attestation is None):
        raise ValidationFailed("a claim cites either a rights check or an offline attestation")
    if not 1 <= len(request.lines) <= MAX_LINES:
        raise ValidationFailed(f"a claim has 1 to {MAX_LINES} lines")
    for line in request.lines:
        line.validate()
    domains_for(caller, sorted({line.care_domain for line in request.lines}))


def fingerprint(practice_id: uuid.UUID, beneficiary_id: uuid.UUID, lines: Sequence[CareLine]) -> str:
    """The same care for the same patient by the same practice: a second claim for it is a duplicate."""
    items = sorted(
        f"{line.care_domain}|{line.act_code}|{line.care_date.isoformat()}|{line.quantity}|{line.unit_price_cents}"
        for line in lines
    )
    return hashlib.sha256("\n".join([str(practice_id), str(beneficiary_id), *items]).encode()).hexdigest()


def _by_key(session: Session, *, insurer_id: uuid.UUID, practice_id: uuid.UUID, key: str) -> Claim | None:
    return session.scalar(
        select(Claim).where(
            Claim.insurer_id == insurer_id, Claim.practice_id == practice_id, Claim.idempotency_key == key
        )
    )


# -- submission ----------------------------------------------------------------------------------


def _submit(
    session: Session,
    *,
    caller: PracticePrincipal,
    check: RightsCheck,
    request: ClaimRequest,
    idempotency_key: str,
    request_digest: str,
    now: datetime,
    replaces: Claim | None = None,
    review_threshold_cents: int = REVIEW_THRESHOLD_CENTS,
    attested: AttestedCheck | None = None,
) -> ClaimOutcome:
    lines = request.lines
    price = sum(line.price_cents for line in lines)
    claim = Claim(
        insurer_id=check.insurer_id,
        id=uuid.uuid4(),
        check_id=check.id,
        beneficiary_id=check.beneficiary_id,
        contract_id=check.contract_id,
        practice_id=caller.practice_id,
        professional_id=caller.professional_id,
        replaces_id=replaces.id if replaces else None,
        attestation_id=attested.attestation.id if attested else None,
        status=ClaimStatus.RECEIVED,
        first_care_date=min(line.care_date for line in lines),
        price_cents=price,
        amo_cents=0,
        insurer_cents=0,
        remainder_cents=price,
        fingerprint=fingerprint(caller.practice_id, check.beneficiary_id, lines),
        idempotency_key=idempotency_key,
        request_digest=request_digest,
        created_at=now,
    )
    session.add(claim)
    # The row carrying the key goes first: a concurrent twin fails here, before any other write.
    session.flush()
    if replaces is not None:
        _close(session, claim=replaces, status=ClaimStatus.SUPERSEDED, now=now)
    cover = attested.cover if attested else checked_cover(session, check=check)
    decision = adjudicate(
        session,
        claim=claim,
        cover=cover,
        lines=lines,
        approval_number=request.approval_number,
        review_threshold=review_threshold_cents,
        refused=attested.refusal if attested else None,
    )
    apply_decision(session, claim=claim, cover=cover, lines=lines, decision=decision, now=now)
    return ClaimOutcome(claim, replayed=False)


def submit_claim(
    *,
    session: Session,
    caller: PracticePrincipal,
    request: ClaimRequest,
    idempotency_key: str,
    now: datetime,
    review_threshold_cents: int = REVIEW_THRESHOLD_CENTS,
) -> ClaimOutcome:
    """Store and adjudicate a claim, once per Idempotency-Key, and commit it with its access event.
    Care dated after today is refused at submission (``care-date-in-future``): nothing is stored."""
    _validate(request, caller)
    refuse_future_care((line.care_date for line in request.lines), now)
    request_digest = digest(request.payload())
    if request.attestation is not None:
        outcome = _submit_attested(
            session,
            caller=caller,
            request=request,
            token=request.attestation,
            idempotency_key=idempotency_key,
            request_digest=request_digest,
            now=now,
            review_threshold_cents=review_threshold_cents,
        )
    else:
        assert request.check_id is not None  # _validate
        check = access_check(session, caller=caller, check_id=request.check_id, now=now)
        replay = _replayer(
            session, caller=caller, insurer_id=check.insurer_id, key=idempotency_key, digest=request_digest
        )
        outcome = replay() or once(
            session,
            lambda: _submit(
                session,
                caller=caller,
                check=check,
                request=request,
                idempotency_key=idempotency_key,
                request_digest=request_digest,
                now=now,
                review_threshold_cents=review_threshold_cents,
            ),
            replay,
        )
    record_claim_access(session, caller=caller, claim=outcome.claim, operation=Operation.CLAIM_SUBMIT, now=now)
    session.commit()
    return outcome


def _submit_attested(
    session: Session,
    *,
    caller: PracticePrincipal,
    request: ClaimRequest,
    token: str,
    idempotency_key: str,
    request_digest: str,
    now: datetime,
    review_threshold_cents: int,
) -> ClaimOutcome:
    """A claim under attestation: queued by practice software while the platform was off, sent again
    (same Idempotency-Key) until it lands. The replay is looked for before the attestation is
    checked again, so a claim that landed answers the same even once its attestation has expired."""
    insurer_id = insurer_of_attestation(session, token)
    replay = _replayer(session, caller=caller, insurer_id=insurer_id, key=idempotency_key, digest=request_digest)
    if (found := replay()) is not None:
        return found

    def submit() -> ClaimOutcome:
        attested = attested_check(session, caller=caller, token=token, lines=request.lines, now=now)
        return _submit(
            session,
            caller=caller,
            check=attested.check,
            request=request,
            idempotency_key=idempotency_key,
            request_digest=request_digest,
            now=now,
            review_threshold_cents=review_threshold_cents,
            attested=attested,
        )

    return once(session, submit, replay)


def record_claim_access(
    session: Session, *, caller: PracticePrincipal, claim: Claim, operation: Operation, now: datetime
) -> None:
    record_practice_access(
        session,
        caller=caller,
        operation=operation,
        outcome=Outcome.DISCLOSED,
        now=now,
        insurer_id=claim.insurer_id,
        beneficiary_id=claim.beneficiary_id,
        reference=claim.id,
    )


def _replayer(
    session: Session, *, caller: PracticePrincipal, insurer_id: uuid.UUID, key: str, digest: str
) -> Callable[[], ClaimOutcome | None]:
    def replay() -> ClaimOutcome | None:
        bind_tenant(session, insurer_id)
        found = _by_key(session, insurer_id=insurer_id, practice_id=caller.practice_id, key=key)
        if found is None:
            return None
        check_replay(found.request_digest, digest)
        return ClaimOutcome(found, replayed=True)

    return replay


def access_claim(session: Session, *, caller: PracticePrincipal, claim_id: uuid.UUID) -> Claim:
    """The caller's practice's own claim; another practice's answers like a missing one."""
    return record_of(session, Claim, claim_id, practice_id=caller.practice_id, missing=ClaimNotFound, what="claim")


def correct_claim(
    *,
    session: Session,
    caller: PracticePrincipal,
    claim_id: uuid.UUID,
    request: ClaimRequest,
    idempotency_key: str,
    now: datetime,
) -> ClaimOutcome:
    """A corrected resubmission: a new claim that supersedes an unpaid one; committed."""
    _validate(request, caller)
    request_digest = digest({**request.payload(), "corrects": str(claim_id)})
    original = access_claim(session, caller=caller, claim_id=claim_id)
    replay = _replayer(
        session, caller=caller, insurer_id=original.insurer_id, key=idempotency_key, digest=request_digest
    )
    outcome = replay() or _correct(
        session,
        caller=caller,
        original=original,
        request=request,
        idempotency_key=idempotency_key,
        request_digest=request_digest,
        replay=replay,
        now=now,
    )
    record_claim_access(session, caller=caller, claim=outcome.claim, operation=Operation.CLAIM_CORRECT, now=now)
    session.commit()
    return outcome


def _correct(
    session: Session,
    *,
    caller: PracticePrincipal,
    original: Claim,
    request: ClaimRequest,
    idempotency_key: str,
    request_digest: str,
    replay: Callable[[], ClaimOutcome | None],
    now: datetime,
) -> ClaimOutcome:
    if original.status not in OPEN_CLAIM:
        raise ClaimClosed(f"a {original.status.value} claim cannot be corrected")
    if request.check_id is None:  # corrections are made with the platform on: the patient is checked again
        raise ValidationFailed("a correction cites a rights check of the patient, not an attestation")
    check = access_check(session, caller=caller, check_id=request.check_id, now=now)
    if check.insurer_id != original.insurer_id or check.beneficiary_id != original.beneficiary_id:
        raise ValidationFailed("a correction bills the same patient with the same insurer")
    try:
        return once(
            session,
            lambda: _submit(
                session,
                caller=caller,
                check=check,
                request=request,
                idempotency_key=idempotency_key,
                request_digest=request_digest,
                now=now,
                replaces=session.get_one(Claim, (original.insurer_id, original.id)),
            ),
            replay,
        )
    except IntegrityError:
        # A claim is corrected once: another correction, under another key, got there first.
        session.refresh(original)
        if original.status not in OPEN_CLAIM:
            raise ClaimClosed(f"this claim is {original.status.value}: it can no longer be changed") from None
        raise


def _close(session: Session, *, claim: Claim, status: ClaimStatus, now: datetime) -> None:
    """Cancel or supersede an open claim, atomically against a payment run or a review."""
    was = claim.status
    if was not in OPEN_CLAIM:
        raise ClaimClosed(f"this claim is {was.value}: it can no longer be changed")
    done = session.execute(
        update(Claim)
        .where(Claim.insurer_id == claim.insurer_id, Claim.id == claim.id, Claim.status == was)
        .values(status=status, closed_at=now)
        .execution_options(synchronize_session=False)
    )
    # Zero rows: a payment run or a review got there first.
    if done.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(claim)
        raise ClaimClosed(f"this claim is {claim.status.value}: it can no longer be changed")
    if was is ClaimStatus.ACCEPTED:
        release(session, claim=claim)
    session.refresh(claim)


def cancel_claim(*, session: Session, caller: PracticePrincipal, claim_id: uuid.UUID, now: datetime) -> Claim:
    """Cancel an unpaid claim, and commit. Cancelling twice is harmless."""
    claim = access_claim(session, caller=caller, claim_id=claim_id)
    record_claim_access(session, caller=caller, claim=claim, operation=Operation.CLAIM_CANCEL, now=now)
    if claim.status is not ClaimStatus.CANCELLED:
        claim.lines  # noqa: B018  (what an accepted claim consumed is given back)
        _close(session, claim=claim, status=ClaimStatus.CANCELLED, now=now)
    session.commit()
    return claim


def view_claim(*, session: Session, caller: PracticePrincipal, claim_id: uuid.UUID, now: datetime) -> Claim:
    claim = access_claim(session, caller=caller, claim_id=claim_id)
    claim.lines  # noqa: B018  (loaded under the insurer's tenant binding)
    record_claim_access(session, caller=caller, claim=claim, operation=Operation.CLAIM_VIEW, now=now)
    session.commit()
    return claim


def practice_claims(
    session: Session,
    *,
    caller: PracticePrincipal,
    now: datetime,
    status: ClaimStatus | None = None,
    limit: int = 100,
) -> Sequence[Claim]:
    """The first page of ``practice_claims_page``."""
    return practice_claims_page(session, caller=caller, now=now, status=status, limit=limit).items


def practice_claims_page(
    session: Session,
    *,
    caller: PracticePrincipal,
    now: datetime,
    status: ClaimStatus | None = None,
    limit: int = 100,
    cursor: Cursor | None = None,
) -> Page[Claim]:
    """The practice's claims with every insurer, newest first, without their lines, a page at a time
    (after ``cursor``); each one shown is logged (committed)."""
    bind_practice(session, caller.practice_id)
    statement = select(Claim).where(Claim.practice_id == caller.practice_id)
    if status is not None:
        statement = statement.where(Claim.status == status)
    if (past := after(cursor, Claim.created_at, Claim.id, descending=True)) is not None:
        statement = statement.where(past)
    rows = session.scalars(statement.order_by(Claim.created_at.desc(), Claim.id.desc()).limit(limit + 1)).all()
    page = page_of(rows, limit, _claim_cursor)
    for claim in page.items:
        record_claim_access(session, caller=caller, claim=claim, operation=Operation.CLAIM_VIEW, now=now)
    session.commit()
    return page


def _claim_cursor(claim: Claim) -> Cursor:
    return Cursor(claim.created_at, claim.id)


# -- the insurer's review --------------------------------------------------------------------------

COMMENT_LIMIT = 500
REVIEW_COMMENT = "review_comment"  # the column, as the ciphertext is bound to it
OTHER_COMMENT_MIN = 10  # "other" says nothing by itself: the comment does
# Control, format (bidi overrides, zero-width), surrogate, private and unassigned characters, and
# line or paragraph separators: a comment is one paragraph of plain text.
_UNWRITTEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


@dataclass(frozen=True)
class ReviewNote:
    """What a rejection carries: why (counted), and the agent's words for the practice (health data)."""

    reason: ReviewReason
    comment: str | None


def review_note(*, accept: bool, reason: ReviewReason | None, comment: str | None) -> ReviewNote | None:
    """The reason and comment of a decision, checked: none on an acceptance; on a rejection a reason,
    and a comment of at most 500 characters in one paragraph, of 10 at least when the reason is
    ``other``. Raises ``ReviewNoteInvalid`` naming every field at fault."""
    text = (comment or "").strip()
    problems: dict[str, str] = {}
    if accept:
        if reason is not None:
            problems["reason"] = "reason-on-accept"
        if text:
            problems["comment"] = "comment-on-accept"
        if problems:
            raise ReviewNoteInvalid(problems)
        return None
    if reason is None:
        problems["reason"] = "reason-missing"
    if "\n" in text or "\r" in text:
        problems["comment"] = "comment-not-one-paragraph"
    elif any(unicodedata.category(c) in _UNWRITTEN for c in text):
        problems["comment"] = "comment-control-characters"
    elif len(text) > COMMENT_LIMIT:
        problems["comment"] = "comment-too-long"
    elif reason is ReviewReason.OTHER and len(text) < OTHER_COMMENT_MIN:
        problems["comment"] = "comment-needed"
    if problems:
        raise ReviewNoteInvalid(problems)
    assert reason is not None
    return ReviewNote(reason, text or None)


def _insurer_claims(
    session: Session,
    *,
    staff: StaffPrincipal,
    now: datetime,
    statement: Select[Claim],
    limit: int,
) -> Sequence[Claim]:
    """The claims of ``statement`` (already ordered and filtered to the staff's insurer), each one
    read logged, committed."""
    claims = session.scalars(statement.limit(limit)).all()
    for claim in claims:
        record_staff_access(
            session,
            staff=staff,
            operation=Operation.CLAIM_REVIEW,
            outcome=Outcome.DISCLOSED,
            now=now,
            beneficiary_id=claim.beneficiary_id,
            reference=claim.id,
        )
    session.commit()
    return claims


def _insurer_statement(
    staff: StaffPrincipal, *, status: ClaimStatus | None, under_attestation: bool | None
) -> Select[Claim]:
    statement = select(Claim).where(Claim.insurer_id == staff.insurer_id)
    if status is not None:
        statement = statement.where(Claim.status == status)
    if under_attestation is not None:
        attested = Claim.attestation_id.is_not(None)
        statement = statement.where(attested if under_attestation else ~attested)
    return statement


def insurer_claims(
    session: Session,
    *,
    staff: StaffPrincipal,
    now: datetime,
    status: ClaimStatus | None = None,
    under_attestation: bool | None = None,
    limit: int = 100,
) -> Sequence[Claim]:
    """The first page of ``insurer_claims_page``."""
    return insurer_claims_page(
        session, staff=staff, now=now, status=status, under_attestation=under_attestation, limit=limit
    ).items


def insurer_claims_page(
    session: Session,
    *,
    staff: StaffPrincipal,
    now: datetime,
    status: ClaimStatus | None = None,
    under_attestation: bool | None = None,
    limit: int = 100,
    cursor: Cursor | None = None,
) -> Page[Claim]:
    """The insurer's claims, oldest first, a page at a time (after ``cursor``)."""
    bind_tenant(session, staff.insurer_id)
    statement = _insurer_statement(staff, status=status, under_attestation=under_attestation)
    if (past := after(cursor, Claim.created_at, Claim.id, descending=False)) is not None:
        statement = statement.where(past)
    # One more than shown, unlogged, says whether a next page exists.
    probe = session.scalars(
        statement.with_only_columns(Claim.created_at, Claim.id)
        .order_by(Claim.created_at, Claim.id)
        .offset(limit)
        .limit(1)
    ).first()
    claims = _insurer_claims(
        session, staff=staff, now=now, statement=statement.order_by(Claim.created_at, Claim.id), limit=limit
    )
    more = probe is not None and bool(claims)
    return Page(list(claims), _claim_cursor(claims[-1]) if more else None)


@dataclass(frozen=True)
class QueueQuery:
    """The review queue's filters; ``None`` filters nothing. Amounts are the insurer's share, in cents."""

    status: ClaimStatus | None = ClaimStatus.PENDING_REVIEW
    under_attestation: bool | None = None
    reason: ClaimReason | None = None
    practice_id: uuid.UUID | None = None
    min_cents: int | None = None
    max_cents: int | None = None


def review_queue_claims(
    session: Session, *, staff: StaffPrincipal, now: datetime, query: QueueQuery, limit: int
) -> Sequence[Claim]:
    """The back office's queue: the claims matching every filter, those waiting for a person first,
    then the oldest; filtered in the database, so that only the claims shown are read and logged
    (committed)."""
    bind_tenant(session, staff.insurer_id)
    statement = _insurer_statement(staff, status=query.status, under_attestation=query.under_attestation)
    if query.reason is not None:
        statement = statement.where(Claim.reason_code == query.reason)
    if query.practice_id is not None:
        statement = statement.where(Claim.practice_id == query.practice_id)
    if query.min_cents is not None:
        statement = statement.where(Claim.insurer_cents >= query.min_cents)
    if query.max_cents is not None:
        statement = statement.where(Claim.insurer_cents <= query.max_cents)
    waiting_first = case((Claim.status == ClaimStatus.PENDING_REVIEW, 0), else_=1)
    ordered = statement.order_by(waiting_first, Claim.created_at, Claim.id)
    return _insurer_claims(session, staff=staff, now=now, statement=ordered, limit=limit)


def queue_practices(
    session: Session, *, staff: StaffPrincipal, status: ClaimStatus | None, under_attestation: bool | None
) -> list[uuid.UUID]:
    """The practices that billed the insurer claims of this status (the queue's practice filter):
    ids of professionals' practices, no patient's data, so no access is logged."""
    bind_tenant(session, staff.insurer_id)
    claims = _insurer_statement(staff, status=status, under_attestation=under_attestation).subquery()
    return list(session.scalars(select(claims.c.practice_id).distinct()).all())


def insurer_claim(session: Session, *, staff: StaffPrincipal, claim_id: uuid.UUID, now: datetime) -> Claim:
    """One of the insurer's claims for its staff, the access committed."""
    claim = _insurer_claim(session, staff=staff, claim_id=claim_id, now=now)
    session.commit()
    return claim


def _insurer_claim(session: Session, *, staff: StaffPrincipal, claim_id: uuid.UUID, now: datetime) -> Claim:
    bind_tenant(session, staff.insurer_id)
    claim = session.scalar(select(Claim).where(Claim.insurer_id == staff.insurer_id, Claim.id == claim_id))
    if claim is None:
        raise ClaimNotFound("no claim with this id")
    claim.lines  # noqa: B018
    record_staff_access(
        session,
        staff=staff,
        operation=Operation.CLAIM_REVIEW,
        outcome=Outcome.DISCLOSED,
        now=now,
        beneficiary_id=claim.beneficiary_id,
        reference=claim.id,
    )
    return claim


def review_claim(
    *,
    session: Session,
    keys: KeyService,
    staff: StaffPrincipal,
    claim_id: uuid.UUID,
    accept: bool,
    now: datetime,
    reason: ReviewReason | None = None,
    comment: str | None = None,
) -> Claim:
    """A claims agent decides a pending claim, and commits. Accepting re-prices it against today's
    ceilings; rejecting stores why (``review_note``) and the agent's comment, encrypted under the
    insurer's key, with the decision. A claim decided already answers ``ClaimNotPending`` before
    its reason and comment are looked at; a refused reason or comment writes nothing."""
    claim = _insurer_claim(session, staff=staff, claim_id=claim_id, now=now)
    try:
        if claim.status is not ClaimStatus.PENDING_REVIEW:
            raise ClaimNotPending(f"this claim is {claim.status.value}")
        note = review_note(accept=accept, reason=reason, comment=comment)
    except (ClaimNotPending, ReviewNoteInvalid):
        session.rollback()  # nothing of a refused decision is kept, not even its read of the claim
        raise
    lines = [line.care_line() for line in claim.lines]
    check = session.get_one(RightsCheck, (claim.insurer_id, claim.check_id))
    if claim.attestation_id is not None:
        attestation = session.get_one(Attestation, (claim.insurer_id, claim.attestation_id))
        cover = attested_cover(session, check=check, attestation=attestation)
    else:
        cover = checked_cover(session, check=check)
    approval_number = None
    if claim.approval_id is not None:
        approval = session.get_one(PriorApproval, (claim.insurer_id, claim.approval_id))
        approval_number = approval.approval_number
    # Claim the decision first, so that two agents deciding at once cannot both win.
    done = session.execute(
        update(Claim)
        .where(Claim.insurer_id == claim.insurer_id, Claim.id == claim.id, Claim.status == ClaimStatus.PENDING_REVIEW)
        .values(status=ClaimStatus.RECEIVED)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise ClaimNotPending("another agent decided this claim meanwhile")
    session.refresh(claim)
    if accept:
        decision = adjudicate(
            session, claim=claim, cover=cover, lines=lines, approval_number=approval_number, review_threshold=2**62
        )
    else:
        before = usage(
            session, insurer_id=claim.insurer_id, beneficiary_id=claim.beneficiary_id, keys=ceiling_keys(lines, cover)
        )
        priced = quote(lines, cover.formulas, consumed=before, in_force=cover.in_force)
        decision = Decision(ClaimStatus.REJECTED, ClaimReason.REJECTED_BY_INSURER, priced)
    apply_decision(session, claim=claim, cover=cover, lines=lines, decision=decision, now=now)
    claim.decided_by = staff.account_id
    if note is not None:
        claim.review_reason = note.reason
        if note.comment is not None:
            # Keys held until this transaction commits, so that a rotation cannot destroy them under it.
            cipher = keys.cipher_for_write(session, claim.insurer_id)
            claim.review_comment_enc = cipher.encrypt(
                note.comment, table="claims", row_id=claim.id, column=REVIEW_COMMENT
            )
    session.commit()
    return claim


def review_comment(session: Session, *, keys: KeyService, claim: Claim) -> str | None:
    """The claims agent's comment on a claim they rejected, in clear; for a claim already read
    through ``insurer_claim`` or ``view_claim`` (whose access is logged and committed)."""
    if claim.review_comment_enc is None:
        return None
    cipher = keys.cipher(session, claim.insurer_id)
    return cipher.decrypt(claim.review_comment_enc, table="claims", row_id=claim.id, column=REVIEW_COMMENT)
