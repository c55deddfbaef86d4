"""Issuing offline attestations: one per beneficiary, signed by the insurer's key, each recorded.

An attestation says what a rights check would say at the counter — this card, this person, these
care domains with third-party payment, these needing prior approval — for a few days or weeks,
so that care and billing go on while the platform is switched off (DESIGN.md, invariant 9). It
carries no identity in clear: only a salted argon2id digest of the NIR and date of birth, which
lets practice software confirm the patient in front of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rempart.attestations.card import CardFace
from rempart.attestations.keys import signing_key
from rempart.attestations.models import Attestation, IssueReason
from rempart.audit.disclosures import Operation
from rempart.audit.models import ActorKind, Channel, Outcome
from rempart.audit.service import SYSTEM_ACTOR, Actor, record_access
from rempart.errors import NotFound
from rempart.insurers.models import Insurer, Product
from rempart.members.models import Beneficiary, Contract
from rempart.protection.service import KeyService
from rempart.tenancy import tenant
from rempart_verifier import Attestation as Signed
from rempart_verifier import new_digest, sign
from rempart_verifier.attestation import domains_to_mask

PARIS = ZoneInfo("Europe/Paris")
# Mailing and renewal commit this many attestations at a time.
BATCH = 20


class NoRightsToAttest(NotFound):
    slug = "no-rights-to-attest"
    title = "No rights to attest"

    def __init__(self) -> None:
        super().__init__("The contract is not in force today: there are no rights to attest.")


@dataclass(frozen=True)
class Issued:
    """An attestation as signed, with what its printed card shows (never an identity)."""

    record: Attestation
    token: str
    insurer_name: str
    amc_number: str
    member_number: str
    birth_rank: int
    third_party_payment: frozenset[str]
    prior_approval: frozenset[str]


def face(issued: Issued) -> CardFace:
    """What the printed card and the portal's card show of an attestation (never an identity)."""
    return CardFace(
        insurer_name=issued.insurer_name,
        amc_number=issued.amc_number,
        member_number=issued.member_number,
        birth_rank=issued.birth_rank,
        valid_from=issued.record.valid_from,
        valid_to=issued.record.valid_to,
        third_party_payment=issued.third_party_payment,
        prior_approval=issued.prior_approval,
        token=issued.token,
    )


def _validity(contract: Contract, product: Product, today: date) -> tuple[date, date]:
    if not contract.valid_on(today):
        raise NoRightsToAttest
    valid_to = today + timedelta(days=product.attestation_days - 1)
    return today, min(valid_to, contract.end_date) if contract.end_date else valid_to


def _issue(
    session: Session,
    *,
    keys: KeyService,
    insurer: Insurer,
    contract: Contract,
    product: Product,
    beneficiary: Beneficiary,
    reason: IssueReason,
    now: datetime,
) -> Issued:
    """Sign and record one attestation, in the caller's transaction (its tenant bound)."""
    valid_from, valid_to = _validity(contract, product, now.astimezone(PARIS).date())
    cipher = keys.cipher(session, insurer.id)
    nir = cipher.decrypt(beneficiary.nir_enc, table="beneficiaries", row_id=beneficiary.id, column="nir")
    birth = cipher.decrypt(
        beneficiary.birth_date_enc, table="beneficiaries", row_id=beneficiary.id, column="birth_date"
    )
    guarantees = product.formulas_on(valid_from)  # the formulas of the day it starts
    third_party = frozenset(g.care_domain.value for g in guarantees if g.third_party_payment)
    approval = frozenset(g.care_domain.value for g in guarantees if g.prior_approval_required)
    key = signing_key(session, keks=keys.keks, insurer_id=insurer.id)
    signed = Signed(
        attestation_id=uuid.uuid4(),
        amc_number=insurer.amc_number,
        member_number=contract.member_number,
        birth_rank=beneficiary.birth_rank,
        valid_from=valid_from,
        valid_to=valid_to,
        issued_at=now.replace(microsecond=0),
        kid=key.kid,
        third_party_payment=third_party,
        prior_approval=approval,
        digest=new_digest(nir, date.fromisoformat(birth)),
    )
    del nir, birth
    token = sign(signed, private_key=key.private_key)
    record = Attestation(
        insurer_id=insurer.id,
        id=signed.attestation_id,
        beneficiary_id=beneficiary.id,
        contract_id=contract.id,
        kid=key.kid,
        reason=reason,
        issued_at=signed.issued_at,
        valid_from=valid_from,
        valid_to=valid_to,
        third_party_payment=domains_to_mask(third_party),
        prior_approval=domains_to_mask(approval),
    )
    session.add(record)
    return Issued(
        record,
        token,
        insurer.name,
        insurer.amc_number,
        contract.member_number,
        beneficiary.birth_rank,
        third_party,
        approval,
    )


def _parts(
    session: Session, insurer_id: uuid.UUID, beneficiary_id: uuid.UUID
) -> tuple[Insurer, Contract, Product, Beneficiary]:
    beneficiary = session.scalar(
        select(Beneficiary).where(Beneficiary.insurer_id == insurer_id, Beneficiary.id == beneficiary_id)
    )
    if beneficiary is None:
        raise NotFound("no such beneficiary")
    contract = session.get_one(Contract, (insurer_id, beneficiary.contract_id))
    product = session.get_one(Product, (insurer_id, contract.product_id))
    return session.get_one(Insurer, insurer_id), contract, product, beneficiary


def do_issue_own_attestation(
    session: Session,
    *,
    keys: KeyService,
    insurer_id: uuid.UUID,
    beneficiary_id: uuid.UUID,
    account_id: uuid.UUID | None,
    device: str | None,
    address: str | None,
    now: datetime,
) -> Issued:
    """The insured person's own attestation, issued afresh and recorded in their access log."""
    with tenant(session, insurer_id):
        insurer, contract, product, beneficiary = _parts(session, insurer_id, beneficiary_id)
        issued = _issue(
            session,
            keys=keys,
            insurer=insurer,
            contract=contract,
            product=product,
            beneficiary=beneficiary,
            reason=IssueReason.BENEFICIARY,
            now=now,
        )
        record_access(
            session,
            operation=Operation.ATTESTATION_ISSUE,
            actor=Actor(ActorKind.BENEFICIARY, id=account_id),
            channel=Channel.BENEFICIARY_PORTAL,
            outcome=Outcome.DISCLOSED,
            insurer_id=insurer_id,
            beneficiary_id=beneficiary_id,
            device=device,
            address=address,
            reference=str(issued.record.id),
            occurred_at=now,
        )
        session.commit()
    return issued


@dataclass(frozen=True)
class ContractCards:
    """A contract's attestations, one per beneficiary in force: what one mailed card holds."""

    member_number: str
    issued: list[Issued]


def contracts_due(
    session: Session, *, insurer_id: uuid.UUID, now: datetime, renew_within_days: int | None = None
) -> list[uuid.UUID]:
    """The contracts in force today, or only those with a beneficiary whose latest attestation
    ends within ``renew_within_days`` (or who has none): automatic renewal before expiry."""
    today = now.astimezone(PARIS).date()
    with tenant(session, insurer_id):
        in_force = select(Contract.id).where(
            Contract.insurer_id == insurer_id,
            Contract.start_date <= today,
            (Contract.end_date.is_(None)) | (Contract.end_date >= today),
        )
        if renew_within_days is None:
            return list(session.scalars(in_force.order_by(Contract.member_number)))
        latest = (
            select(Attestation.beneficiary_id, func.max(Attestation.valid_to).label("valid_to"))
            .where(Attestation.insurer_id == insurer_id)
            .group_by(Attestation.beneficiary_id)
            .subquery()
        )
        horizon = today + timedelta(days=renew_within_days)
        due = (
            select(Beneficiary.contract_id)
            .outerjoin(latest, latest.c.beneficiary_id == Beneficiary.id)
            .where(
                Beneficiary.insurer_id == insurer_id,
                Beneficiary.contract_id.in_(in_force),
                (latest.c.valid_to.is_(None)) | (latest.c.valid_to <= horizon),
            )
            .distinct()
        )
        numbers = dict(session.execute(select(Contract.id, Contract.member_number).where(Contract.id.in_(due))).all())
        return sorted(numbers, key=numbers.__getitem__)


def do_issue_for_mailing(
    session: Session,
    *,
    keys: KeyService,
    insurer_id: uuid.UUID,
    contract_ids: Sequence[uuid.UUID],
    reason: IssueReason,
    now: datetime,
) -> Iterator[ContractCards]:
    """Issue the attestations of these contracts' beneficiaries for card mailing, ``BATCH``
    contracts at a time: each batch is committed with its access events before it is handed out,
    so that no card is printed whose attestation a later claim could not find."""
    with tenant(session, insurer_id):
        insurer = session.get_one(Insurer, insurer_id)
        products: dict[uuid.UUID, Product] = {}
        batch: list[ContractCards] = []
        for contract_id in contract_ids:
            contract = session.get_one(Contract, (insurer_id, contract_id))
            product = products.get(contract.product_id) or session.get_one(Product, (insurer_id, contract.product_id))
            products[product.id] = product
            people = session.scalars(
                select(Beneficiary)
                .where(Beneficiary.insurer_id == insurer_id, Beneficiary.contract_id == contract_id)
                .order_by(Beneficiary.birth_rank, Beneficiary.created_at, Beneficiary.id)
            ).all()
            cards = ContractCards(contract.member_number, [])
            for person in people:
                issued = _issue(
                    session,
                    keys=keys,
                    insurer=insurer,
                    contract=contract,
                    product=product,
                    beneficiary=person,
                    reason=reason,
                    now=now,
                )
                record_access(
                    session,
                    operation=Operation.ATTESTATION_MAILING,
                    actor=SYSTEM_ACTOR,
                    channel=Channel.BATCH,
                    outcome=Outcome.DISCLOSED,
                    insurer_id=insurer_id,
                    beneficiary_id=person.id,
                    reference=str(issued.record.id),
                    occurred_at=now,
                )
                cards.issued.append(issued)
            batch.append(cards)
            if len(batch) == BATCH:
                session.commit()
                yield from batch
                batch = []
        session.commit()
        yield from batch


def attestation_by_id(session: Session, *, insurer_id: uuid.UUID, attestation_id: uuid.UUID) -> Attestation | None:
    with tenant(session, insurer_id):
        return session.scalar(
            select(Attestation).where(Attestation.insurer_id == insurer_id, Attestation.id == attestation_id)
        )
