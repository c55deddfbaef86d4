"""The member view of the insurer's back office: a contract found by its member number, its product,
its cards and its beneficiaries, their identities in clear.

Staff see their own insurer's members only: another insurer's member number reads exactly like a
missing one ("not found"). Each beneficiary shown is an access event (``BACKOFFICE_MEMBER_VIEW``,
channel ``backoffice``) written in the transaction that decrypts them and committed before the view
is returned, so the person finds it in their own access log and no identity leaves unrecorded.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.audit.disclosures import Operation
from rempart.audit.models import ActorKind, Channel, Outcome
from rempart.audit.service import Actor, record_access
from rempart.errors import NotFound
from rempart.identity.errors import PermissionDenied
from rempart.identity.permissions import Permission
from rempart.identity.principal import StaffPrincipal
from rempart.insurers.models import Product
from rempart.members.models import Beneficiary, BeneficiaryRole, Card, Contract, ContractKind
from rempart.protection.service import KeyService
from rempart.tenancy import bind_tenant

# What a member number may be (as printed on a card); anything else names no contract.
MEMBER_NUMBER = re.compile(r"^[A-Za-z0-9]{1,20}$")
_ROLE_ORDER = {BeneficiaryRole.HOLDER: 0, BeneficiaryRole.SPOUSE: 1, BeneficiaryRole.CHILD: 2}


@dataclass(frozen=True)
class BeneficiaryView:
    beneficiary_id: uuid.UUID
    role: BeneficiaryRole
    birth_rank: int
    nir: str
    last_name: str
    first_name: str
    birth_date: date
    marital_status: str


@dataclass(frozen=True)
class CardView:
    valid_from: date
    valid_to: date


@dataclass(frozen=True)
class MemberView:
    contract_id: uuid.UUID
    member_number: str
    kind: ContractKind
    start_date: date
    end_date: date | None
    product: Product
    cards: list[CardView]
    beneficiaries: list[BeneficiaryView]


def _contract(session: Session, insurer_id: uuid.UUID, member_number: str) -> Contract:
    """The insurer's contract with this member number; "not found" for a missing one and for
    another insurer's alike."""
    if not MEMBER_NUMBER.fullmatch(member_number):
        raise NotFound("no member with this number")
    bind_tenant(session, insurer_id)
    contract = session.scalar(
        select(Contract).where(Contract.insurer_id == insurer_id, Contract.member_number == member_number)
    )
    if contract is None:
        raise NotFound("no member with this number")
    return contract


def view_member(
    session: Session,
    *,
    keys: KeyService,
    staff: StaffPrincipal,
    member_number: str,
    now: datetime,
) -> MemberView:
    """The contract and its beneficiaries in clear, each beneficiary's view recorded (in the
    caller's transaction: ``do_view_member`` commits it). Only staff holding the member-read
    permission get identities decrypted, whatever route calls this."""
    if not staff.can(Permission.INSURER_MEMBER_READ):
        raise PermissionDenied("only staff who may read members see their identities")
    contract = _contract(session, staff.insurer_id, member_number)
    product = session.get_one(Product, (staff.insurer_id, contract.product_id))
    cards = session.scalars(
        select(Card)
        .where(Card.insurer_id == staff.insurer_id, Card.contract_id == contract.id)
        .order_by(Card.valid_from.desc())
    ).all()
    rows = session.scalars(
        select(Beneficiary).where(Beneficiary.insurer_id == staff.insurer_id, Beneficiary.contract_id == contract.id)
    ).all()
    cipher = keys.cipher(session, staff.insurer_id)
    actor = Actor(ActorKind.INSURER_STAFF, id=staff.account_id)
    shown: list[BeneficiaryView] = []
    for row in sorted(rows, key=lambda b: (_ROLE_ORDER.get(b.role, 9), b.birth_rank, b.created_at)):

        def clear(column: str, row: Beneficiary = row) -> str:
            blob: bytes = getattr(row, f"{column}_enc")
            return cipher.decrypt(blob, table="beneficiaries", row_id=row.id, column=column)

        shown.append(
            BeneficiaryView(
                beneficiary_id=row.id,
                role=row.role,
                birth_rank=row.birth_rank,
                nir=clear("nir"),
                last_name=clear("last_name"),
                first_name=clear("first_name"),
                birth_date=date.fromisoformat(clear("birth_date")),
                marital_status=clear("marital_status"),
            )
        )
        # Recorded before anything leaves: the caller's commit carries it, or nothing is shown.
        record_access(
            session,
            operation=Operation.BACKOFFICE_MEMBER_VIEW,
            actor=actor,
            channel=Channel.BACKOFFICE,
            outcome=Outcome.DISCLOSED,
            insurer_id=staff.insurer_id,
            beneficiary_id=row.id,
            device=staff.credential_ref,
            address=staff.address,
            reference=str(contract.id),
            occurred_at=now,
        )
    return MemberView(
        contract_id=contract.id,
        member_number=contract.member_number,
        kind=contract.kind,
        start_date=contract.start_date,
        end_date=contract.end_date,
        product=product,
        cards=[CardView(c.valid_from, c.valid_to) for c in cards],
        beneficiaries=shown,
    )


def do_view_member(
    session: Session, *, keys: KeyService, staff: StaffPrincipal, member_number: str, now: datetime
) -> MemberView:
    """``view_member``, committed: every view is in the access log before the identities leave."""
    found = view_member(session, keys=keys, staff=staff, member_number=member_number, now=now)
    session.commit()
    return found
