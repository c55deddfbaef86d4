"""Tiers payant cards: when they are valid, and their yearly renewal.

A contract's first card runs from the contract's start to the end of the year it is issued in; then
one card per calendar year, from the day after the previous one ends, never beyond the contract's
end. The rights check answers only for a day some card of the contract covers, so an insurer that
does not renew a contract's card for the new year (unpaid premiums, a member who left without the
file saying so yet) stops tiers payant on it from the 1st of January.

Renewal happens in two ways: every members import issues the current year's card of each contract
it confirms unchanged, and ``rempart members renew-cards`` (the yearly job, run in December for the
next year) issues them for every contract in force that year.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from rempart.db import bulk_insert, utcnow
from rempart.errors import ValidationFailed
from rempart.members.models import Card, Contract
from rempart.tenancy import bind_tenant


class RenewalYearRefused(ValidationFailed):
    title = "Cards cannot be issued for this year"


@dataclass(frozen=True)
class Terms:
    """A contract's dates, as its cards follow them."""

    start: date
    end: date | None


def first_card(terms: Terms, *, today: date) -> tuple[date, date]:
    """A new contract's first card: from its start to the end of this year (or of the year it
    starts, if later), never beyond its end."""
    year_end = date(max(today.year, terms.start.year), 12, 31)
    return terms.start, min(terms.end, year_end) if terms.end else year_end


def next_card(terms: Terms, *, latest_valid_to: date | None, year: int) -> tuple[date, date] | None:
    """The card that carries a contract through ``year``, from the day after its latest card ends;
    ``None`` when its cards already reach the end of the year or of the contract, or when it is not
    in force that year."""
    first_day = max(terms.start, date(year, 1, 1))
    if latest_valid_to is not None:
        first_day = max(first_day, latest_valid_to + timedelta(days=1))
    year_end = date(year, 12, 31)
    last_day = min(terms.end, year_end) if terms.end else year_end
    return (first_day, last_day) if first_day <= last_day else None


def issue_next_cards(
    session: Session, *, insurer_id: uuid.UUID, contracts: Mapping[uuid.UUID, tuple[str, Terms]], year: int
) -> int:
    """Issue, for each of ``contracts`` (id → member number and dates), the card that carries it
    through ``year`` if it lacks one. Returns how many cards were issued."""
    if not contracts:
        return 0
    latest = dict(
        session.execute(
            select(Card.contract_id, func.max(Card.valid_to))
            .where(Card.insurer_id == insurer_id, Card.contract_id.in_(list(contracts)))
            .group_by(Card.contract_id)
        ).all()
    )
    now = utcnow()
    cards: list[dict[str, Any]] = []
    for contract_id, (member_number, terms) in contracts.items():
        validity = next_card(terms, latest_valid_to=latest.get(contract_id), year=year)
        if validity is not None:
            cards.append(
                {
                    "insurer_id": insurer_id,
                    "id": uuid.uuid4(),
                    "contract_id": contract_id,
                    "member_number": member_number,
                    "valid_from": validity[0],
                    "valid_to": validity[1],
                    "issued_at": now,
                }
            )
    bulk_insert(session, Card, cards)
    return len(cards)


RENEWAL_BATCH = 2000


def renew_cards(session: Session, *, insurer_id: uuid.UUID, year: int, today: date) -> int:
    """The yearly job: issue ``year``'s card of every contract of the insurer in force that year.
    Only this year or the next (cards are printed and sent in December for the year to come; a card
    is never issued for a year already past, which would open care already given to tiers payant).
    Running it again issues nothing more."""
    if year not in (today.year, today.year + 1):
        raise RenewalYearRefused(f"cards are issued for {today.year} or {today.year + 1}, not for {year}")
    bind_tenant(session, insurer_id)
    in_force = select(Contract.id, Contract.member_number, Contract.start_date, Contract.end_date).where(
        Contract.insurer_id == insurer_id,
        Contract.start_date <= date(year, 12, 31),
        or_(Contract.end_date.is_(None), Contract.end_date >= date(year, 1, 1)),
    )
    rows = session.execute(in_force).all()  # read first: inserting while a cursor is open is not portable
    issued = 0
    for at in range(0, len(rows), RENEWAL_BATCH):
        batch = {row[0]: (row[1], Terms(row[2], row[3])) for row in rows[at : at + RENEWAL_BATCH]}
        issued += issue_next_cards(session, insurer_id=insurer_id, contracts=batch, year=year)
    return issued
