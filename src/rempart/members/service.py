"""Writing members: contracts, their beneficiaries (encrypted) and tiers payant cards.

``write_members`` is the one mutation behind the CLI import, the insurer API import and the
synthetic population. It is idempotent: a beneficiary already on its contract is left as it is,
so importing the same file twice changes nothing.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.db import bulk_insert, utcnow
from rempart.insurers.models import Product
from rempart.members.cards import Terms, first_card, issue_next_cards
from rempart.members.models import Beneficiary, Card, Contract
from rempart.members.validation import MemberRecord
from rempart.protection.service import InsurerCipher, KeyService
from rempart.tenancy import bind_tenant


@dataclass
class WriteResult:
    contracts_created: int = 0
    beneficiaries_created: int = 0
    unchanged: int = 0
    cards_renewed: int = 0
    # member numbers refused because the contract exists with other terms
    conflicts: list[str] = field(default_factory=list)
    # member numbers refused because their new contract names a product closed to new members
    closed: list[str] = field(default_factory=list)


def encrypted_columns(cipher: InsurerCipher, row_id: uuid.UUID, record: MemberRecord) -> dict[str, bytes]:
    values = {
        "nir": record.nir,
        "last_name": record.last_name,
        "first_name": record.first_name,
        "birth_date": record.birth_date.isoformat(),
        "marital_status": record.marital_status.value,
    }
    return {
        f"{column}_enc": cipher.encrypt(value, table="beneficiaries", row_id=row_id, column=column)
        for column, value in values.items()
    }


def write_members(
    *,
    session: Session,
    keys: KeyService,
    insurer_id: uuid.UUID,
    records: Sequence[MemberRecord],
    product_ids: dict[str, uuid.UUID] | None = None,
    today: date | None = None,
    closed: frozenset[str] = frozenset(),
) -> WriteResult:
    """Write whole contracts (every record of a member number must be in ``records``). A new
    contract on a product of ``closed`` (retired: closed to new members) is refused; the contracts
    already on it go on."""
    bind_tenant(session, insurer_id)  # all of these rows are the insurer's (row-level security)
    today = today or utcnow().date()
    result = WriteResult()
    if not records:
        return result
    if product_ids is None:
        rows = session.execute(select(Product.code, Product.id).where(Product.insurer_id == insurer_id))
        product_ids = {row.code: row.id for row in rows}
    cipher = keys.cipher_for_write(session, insurer_id)  # usable until this transaction commits
    by_member: dict[str, list[MemberRecord]] = defaultdict(list)
    for record in records:
        by_member[record.member_number].append(record)

    existing = {
        c.member_number: c
        for c in session.scalars(
            select(Contract).where(Contract.insurer_id == insurer_id, Contract.member_number.in_(by_member))
        )
    }
    known_identities: set[tuple[uuid.UUID, bytes]] = set()
    if existing:
        known_identities = {
            (contract_id, bidx)
            for contract_id, bidx in session.execute(
                select(Beneficiary.contract_id, Beneficiary.identity_bidx).where(
                    Beneficiary.insurer_id == insurer_id,
                    Beneficiary.contract_id.in_([c.id for c in existing.values()]),
                )
            )
        }

    now = utcnow()
    contracts: list[dict[str, object]] = []
    cards: list[dict[str, object]] = []
    confirmed: dict[uuid.UUID, tuple[str, Terms]] = {}  # existing contracts the file confirms
    beneficiaries: list[dict[str, object]] = []
    for member_number, family in by_member.items():
        first = family[0]
        contract = existing.get(member_number)
        if contract is not None:
            terms = (contract.product_id, contract.kind, contract.start_date, contract.end_date)
            wanted = (product_ids[first.product_code], first.contract_kind, first.contract_start, first.contract_end)
            if terms != wanted:
                result.conflicts.append(member_number)
                continue
            contract_id = contract.id
            confirmed[contract_id] = (member_number, Terms(contract.start_date, contract.end_date))
        elif first.product_code in closed:
            result.closed.append(member_number)
            continue
        else:
            contract_id = uuid.uuid4()
            contracts.append(
                {
                    "insurer_id": insurer_id,
                    "id": contract_id,
                    "member_number": member_number,
                    "product_id": product_ids[first.product_code],
                    "kind": first.contract_kind,
                    "start_date": first.contract_start,
                    "end_date": first.contract_end,
                    "created_at": now,
                }
            )
            valid_from, valid_to = first_card(Terms(first.contract_start, first.contract_end), today=today)
            cards.append(
                {
                    "insurer_id": insurer_id,
                    "id": uuid.uuid4(),
                    "contract_id": contract_id,
                    "member_number": member_number,
                    "valid_from": valid_from,
                    "valid_to": valid_to,
                    "issued_at": now,
                }
            )
            result.contracts_created += 1
        for record in family:
            candidates = cipher.identity_index_candidates(record.nir, record.birth_date, record.birth_rank)
            if any((contract_id, c) in known_identities for c in candidates):
                result.unchanged += 1
                continue
            row_id = uuid.uuid4()
            beneficiaries.append(
                {
                    "insurer_id": insurer_id,
                    "id": row_id,
                    "contract_id": contract_id,
                    "role": record.role,
                    "birth_rank": record.birth_rank,
                    "identity_bidx": cipher.identity_index(record.nir, record.birth_date, record.birth_rank),
                    "index_key_version": cipher.active_index_version,
                    "data_key_version": cipher.active_data_version,
                    "created_at": now,
                    **encrypted_columns(cipher, row_id, record),
                }
            )
            result.beneficiaries_created += 1
    bulk_insert(session, Contract, contracts)
    bulk_insert(session, Card, cards)
    bulk_insert(session, Beneficiary, beneficiaries)
    # A contract the file confirms gets this year's card if it has none yet (its first card ended
    # last year): the insurer's nightly file renews cards as it goes.
    result.cards_renewed = issue_next_cards(session, insurer_id=insurer_id, contracts=confirmed, year=today.year)
    return result
