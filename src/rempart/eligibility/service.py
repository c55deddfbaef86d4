"""Rights checks (ROC "IDB"): is this patient covered on the day of care, for which domains, and how.

The patient hands over their card (AMC number + member number), NIR and date of birth. The match
goes through the insurer's blind index only; nothing is decrypted. The answer carries coverage and
a ``check_id``, never an identity. Every miss — unknown insurer, unknown card, wrong NIR or date of
birth, contract not in force on the day — answers the same ``no-matching-rights`` problem after the
same statements: an insurer lookup, the tenant binding, one match query and one coverage query,
with a decoy key and decoy ids standing in for whatever was not found.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from hashlib import sha256
from typing import Protocol

from sqlalchemy.orm import Session

from rempart.audit.care import record_practice_access
from rempart.audit.disclosures import Operation
from rempart.audit.models import Outcome
from rempart.audit.service import AccessLogUnavailable
from rempart.eligibility.lookup import INSERT_CHECK, insurer_for_check, match_and_cover
from rempart.eligibility.models import RightsCheck
from rempart.errors import Conflict, Forbidden, NotFound, RempartError, ValidationFailed
from rempart.fields import paris_day
from rempart.identity.principal import PracticePrincipal
from rempart.insurers.models import CareDomain
from rempart.pricing.engine import Formula
from rempart.professionals.models import PROFESSION_DOMAINS
from rempart.protection.service import KeyService, normalise_nir
from rempart.tenancy import record_of

# How long quotes, approvals and claims may cite a check (optical equipment is delivered weeks later).
CHECK_VALIDITY = timedelta(days=90)
MAX_BATCH = 50
# Index keys live at once during a rotation; the match always sends this many candidates.
INDEX_CANDIDATES = 2
# How far from today a date of care may be.
MAX_DAYS_BACK = 2 * 365
MAX_DAYS_AHEAD = 365


class NoMatchingRights(RempartError):
    """The only answer to every kind of miss: byte for byte the same body."""

    status = 404
    slug = "no-matching-rights"
    title = "No matching rights"

    def __init__(self) -> None:
        super().__init__("No rights match this card, NIR and date of birth on the date of care.")


class CareDomainOutsideProfession(Forbidden):
    slug = "care-domain-outside-profession"
    title = "Care domain outside the profession"


class RightsCheckNotFound(NotFound):
    slug = "rights-check-not-found"
    title = "Rights check not found"


class RightsCheckExpired(Conflict):
    slug = "rights-check-expired"
    title = "Rights check expired"


class MissKind(StrEnum):
    """Why a check missed: for the access log and detection only, never for the caller."""

    UNKNOWN_INSURER = "unknown-insurer"
    UNKNOWN_CARD = "unknown-card"
    IDENTITY_MISMATCH = "identity-mismatch"  # wrong NIR, date of birth or birth rank
    NOT_IN_FORCE = "not-in-force"  # contract ended, or not started, on the date of care
    NO_VALID_CARD = "no-valid-card"  # contract in force, but no card was issued for the date of care


@dataclass(frozen=True)
class RightsQuery:
    amc_number: str
    member_number: str
    nir: str
    birth_date: date
    birth_rank: int = 1
    care_date: date | None = None
    care_domains: tuple[CareDomain, ...] = ()


@dataclass(frozen=True)
class DomainRights:
    care_domain: CareDomain
    covered: bool
    formula: Formula | None = None
    remaining_ceiling_cents: int | None = None
    third_party_payment: bool = False
    prior_approval_required: bool = False


@dataclass(frozen=True)
class RightsAnswer:
    check_id: uuid.UUID
    insurer_id: uuid.UUID
    beneficiary_id: uuid.UUID  # internal: for the access log, never sent to the caller
    contract_id: uuid.UUID
    practice_id: uuid.UUID
    professional_id: uuid.UUID
    created_at: datetime
    amc_number: str
    product_code: str
    care_date: date
    valid_from: date
    valid_to: date | None
    domains: tuple[DomainRights, ...]
    expires_at: datetime

    @property
    def covered(self) -> bool:
        return any(d.covered for d in self.domains)


@dataclass(frozen=True)
class RightsMiss:
    kind: MissKind
    insurer_id: uuid.UUID | None  # known when the AMC number was (the insurer's log shows the probe)
    beneficiary_id: uuid.UUID | None  # known when only the date was wrong (contract not in force)

    @property
    def error(self) -> NoMatchingRights:
        return NoMatchingRights()


RightsOutcome = RightsAnswer | RightsMiss


def care_day(now: datetime) -> date:
    """Today, as a French professional's calendar has it."""
    return paris_day(now)


# A practice's clock a few minutes ahead of ours at midnight (Paris) bills "tomorrow's" care that
# was given today: that much, and no more, is read as clock skew. Care is billed or quoted on or
# after its day, never before: a later day is refused, whatever the validity of the approval.
CLOCK_SKEW = timedelta(minutes=5)


class CareDateInFuture(ValidationFailed):
    slug = "care-date-in-future"
    title = "The date of care is after today"


def refuse_future_care(days: Iterable[date], now: datetime) -> None:
    """Care is quoted and billed once given: a date of care after today (Paris, give or take
    ``CLOCK_SKEW``) is refused (422 ``care-date-in-future``), before anything is read or stored."""
    latest = care_day(now + CLOCK_SKEW)
    if any(day > latest for day in days):
        raise CareDateInFuture(f"a date of care is after today ({latest.isoformat()}): bill or quote care once given")


def domains_for(caller: PracticePrincipal, wanted: Sequence[CareDomain]) -> tuple[CareDomain, ...]:
    """The domains a check answers for: those asked, which must be the profession's, or all of them.

    Minimal disclosure: a pharmacist learns pharmacy cover, not the patient's dental ceilings.
    """
    allowed = PROFESSION_DOMAINS[caller.profession]
    if not wanted:
        return tuple(d for d in CareDomain if d in allowed)
    outside = [d for d in wanted if d not in allowed]
    if outside:
        raise CareDomainOutsideProfession(
            f"a {caller.profession.value} checks rights for {', '.join(sorted(allowed))} only"
        )
    return tuple(dict.fromkeys(wanted))


# Decoys for the miss paths: a process-wide index key and ids that match nothing.
_DECOY_INDEX_KEY = secrets.token_bytes(32)
_DECOY_ID = uuid.UUID(int=0)


def _identity_message(nir: str, birth_date: date, birth_rank: int) -> bytes:
    # The exact message ``InsurerCipher`` hashes; only used under the decoy key.
    return f"identity|{normalise_nir(nir)}|{birth_date.isoformat()}|{birth_rank}".encode()


class Admission(Protocol):
    """Detection as the rights check sees it: it sees each outcome before anything of it is written
    in the request's session (SQLite has one writer), and refuses it by raising a ``RempartError``."""

    def admit(self, query: RightsQuery, outcome: RightsOutcome) -> None: ...


def _store(session: Session, answers: Sequence[RightsAnswer]) -> None:
    """The checks that are answered, so that quotes, approvals and claims can cite them.

    Written last, next to their access events: on SQLite the write lock is held only for these
    inserts and the commit that follows, not while detection decides.
    """
    if answers:
        session.connection().execute(
            INSERT_CHECK,
            [
                {
                    "insurer_id": a.insurer_id,
                    "id": a.check_id,
                    "beneficiary_id": a.beneficiary_id,
                    "contract_id": a.contract_id,
                    "practice_id": a.practice_id,
                    "professional_id": a.professional_id,
                    "care_date": a.care_date,
                    "created_at": a.created_at,
                    "expires_at": a.expires_at,
                }
                for a in answers
            ],
        )


def _record(
    session: Session, *, caller: PracticePrincipal, outcome: RightsOutcome, operation: Operation, now: datetime
) -> None:
    if isinstance(outcome, RightsMiss):
        record_practice_access(
            session,
            caller=caller,
            operation=operation,
            outcome=Outcome.MISS,
            now=now,
            insurer_id=outcome.insurer_id,
            beneficiary_id=outcome.beneficiary_id,
            reference=outcome.kind.value,
        )
    else:
        record_practice_access(
            session,
            caller=caller,
            operation=operation,
            outcome=Outcome.DISCLOSED,
            now=now,
            insurer_id=outcome.insurer_id,
            beneficiary_id=outcome.beneficiary_id,
            reference=outcome.check_id,
        )


def _record_refused(
    session: Session, *, caller: PracticePrincipal, outcome: RightsOutcome, operation: Operation, now: datetime
) -> None:
    """Detection stopped the answer: nothing was disclosed, but the attempt is on record."""
    record_practice_access(
        session,
        caller=caller,
        operation=operation,
        outcome=Outcome.REFUSED,
        now=now,
        insurer_id=outcome.insurer_id,
        beneficiary_id=outcome.beneficiary_id,
        reference="refused-by-detection",
    )


def check_rights(
    *,
    session: Session,
    keys: KeyService,
    caller: PracticePrincipal,
    query: RightsQuery,
    now: datetime,
    operation: Operation = Operation.RIGHTS_CHECK,
    admission: Admission | None = None,
) -> RightsOutcome:
    """Match the patient, describe their cover, record the access, hit or miss, and commit.

    ``admission`` (detection) sees the outcome before it is recorded and may refuse it by raising;
    the refusal is recorded and committed instead. The access event, hit or miss, is committed
    before this returns; the caller answers a ``RightsMiss`` with its ``error``.
    """
    with _committed_even_if_refused(session):
        outcome = _check(session=session, keys=keys, caller=caller, query=query, now=now)
        if admission is not None:
            try:
                admission.admit(query, outcome)
            except RempartError:
                _record_refused(session, caller=caller, outcome=outcome, operation=operation, now=now)
                raise
        if isinstance(outcome, RightsAnswer):
            _store(session, [outcome])
        _record(session, caller=caller, outcome=outcome, operation=operation, now=now)
    return outcome


def check_rights_batch(
    *,
    session: Session,
    keys: KeyService,
    caller: PracticePrincipal,
    queries: Sequence[RightsQuery],
    now: datetime,
    admission: Admission | None = None,
) -> list[RightsOutcome]:
    """A day's appointments at once; each counts as one check for detection and the access log.

    When detection refuses one, no answer of the batch leaves: every check made so far is recorded
    as refused (and committed). Otherwise every access event is committed before this returns.
    """
    if not 1 <= len(queries) <= MAX_BATCH:
        raise ValidationFailed(f"a batch has 1 to {MAX_BATCH} rights checks")
    for query in queries:
        domains_for(caller, query.care_domains)  # refuse the whole batch before any lookup
    operation = Operation.RIGHTS_CHECK_BATCH
    outcomes: list[RightsOutcome] = []
    with _committed_even_if_refused(session):
        for query in queries:
            outcome = _check(session=session, keys=keys, caller=caller, query=query, now=now)
            outcomes.append(outcome)
            if admission is not None:
                try:
                    admission.admit(query, outcome)
                except RempartError:
                    for made in outcomes:
                        _record_refused(session, caller=caller, outcome=made, operation=operation, now=now)
                    raise
        _store(session, [o for o in outcomes if isinstance(o, RightsAnswer)])
        for outcome in outcomes:
            _record(session, caller=caller, outcome=outcome, operation=operation, now=now)
    return outcomes


@contextmanager
def _committed_even_if_refused(session: Session) -> Iterator[None]:
    """The unit of work of a rights check: committed when answered, and when refused too (a refusal
    by detection is on record), but not when the access log itself failed: then nothing may be
    kept, nor answered, without its access event."""
    try:
        yield
    except AccessLogUnavailable:
        raise
    except RempartError:
        session.commit()
        raise
    session.commit()


def _check(
    *, session: Session, keys: KeyService, caller: PracticePrincipal, query: RightsQuery, now: datetime
) -> RightsOutcome:
    wanted = domains_for(caller, query.care_domains)
    today = care_day(now)
    day = query.care_date or today
    if not today - timedelta(days=MAX_DAYS_BACK) <= day <= today + timedelta(days=MAX_DAYS_AHEAD):
        raise ValidationFailed(
            f"the date of care must be within {MAX_DAYS_BACK} days before and {MAX_DAYS_AHEAD} days after today"
        )

    insurer_id = insurer_for_check(session, query.amc_number, decoy=_DECOY_ID)
    if insurer_id is not None:
        candidates = keys.cipher(session, insurer_id).identity_index_candidates(
            query.nir, query.birth_date, query.birth_rank
        )
    else:
        message = _identity_message(query.nir, query.birth_date, query.birth_rank)
        candidates = [hmac.new(_DECOY_INDEX_KEY, message, sha256).digest()]
    candidates += [secrets.token_bytes(32) for _ in range(INDEX_CANDIDATES - len(candidates))]

    found, product_code, covers = match_and_cover(
        session, insurer_id=insurer_id or _DECOY_ID, member_number=query.member_number, candidates=candidates, day=day
    )
    contract_id, start, end, beneficiary_id = (
        (found.contract_id, found.start, found.end, found.beneficiary_id) if found else (_DECOY_ID, day, None, None)
    )
    in_force = start <= day and (end is None or day <= end)
    hit = insurer_id is not None and found is not None and beneficiary_id is not None and in_force and found.card_valid

    if not hit or beneficiary_id is None or insurer_id is None or product_code is None:
        if insurer_id is None:
            kind = MissKind.UNKNOWN_INSURER
        elif found is None:
            kind = MissKind.UNKNOWN_CARD
        elif beneficiary_id is None:
            kind = MissKind.IDENTITY_MISMATCH
        elif not in_force:
            kind = MissKind.NOT_IN_FORCE
        else:
            kind = MissKind.NO_VALID_CARD
        return RightsMiss(kind=kind, insurer_id=insurer_id, beneficiary_id=beneficiary_id)

    check_id = uuid.uuid4()
    expires_at = now + CHECK_VALIDITY
    domains = []
    for domain in wanted:
        cover = covers.get(domain)
        if cover is None:
            domains.append(DomainRights(domain, covered=False))
            continue
        domains.append(
            DomainRights(
                domain,
                covered=True,
                formula=cover.formula,
                remaining_ceiling_cents=cover.remaining_cents,
                third_party_payment=cover.guarantee.third_party_payment,
                prior_approval_required=cover.guarantee.prior_approval_required,
            )
        )
    return RightsAnswer(
        check_id=check_id,
        insurer_id=insurer_id,
        beneficiary_id=beneficiary_id,
        contract_id=contract_id,
        practice_id=caller.practice_id,
        professional_id=caller.professional_id,
        created_at=now,
        amc_number=query.amc_number,
        product_code=product_code,
        care_date=day,
        valid_from=start,
        valid_to=end,
        domains=tuple(domains),
        expires_at=expires_at,
    )


# -- citing a check later ---------------------------------------------------------------------


def access_check(session: Session, *, caller: PracticePrincipal, check_id: uuid.UUID, now: datetime) -> RightsCheck:
    """The caller's practice's own rights check, with the session bound to its insurer.

    Another practice's check answers exactly like a missing one.
    """
    check = record_of(
        session, RightsCheck, check_id, practice_id=caller.practice_id, missing=RightsCheckNotFound, what="rights check"
    )
    if check.expires_at <= now:
        raise RightsCheckExpired("this rights check has expired: check the patient's rights again")
    return check
