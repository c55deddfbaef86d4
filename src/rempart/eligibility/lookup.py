"""The rights check's lookups: a handful of statements built once, run as plain Core on the
session's connection. Building and coercing SQL expressions per request cost more than the queries
themselves, and ORM entity loading is not needed to read a formula."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, insert, or_, select, text
from sqlalchemy.orm import Session

from rempart.eligibility.models import RightsCheck
from rempart.insurers.models import CareDomain, Guarantee, Insurer, Product
from rempart.members.models import Beneficiary, Card, Contract
from rempart.pricing.engine import Formula
from rempart.pricing.models import CeilingUsage
from rempart.tenancy import TENANT_SETTING, bind_tenant, note_tenant

_insurers = cast(Table, Insurer.__table__)
_contracts = cast(Table, Contract.__table__)
_beneficiaries = cast(Table, Beneficiary.__table__)
_cards = cast(Table, Card.__table__)
_products = cast(Table, Product.__table__)
_guarantees = cast(Table, Guarantee.__table__)
_usage = cast(Table, CeilingUsage.__table__)

# What a product covers, as both the rights check and the quote read it: the product's code, then
# the guarantee's terms (``Terms``, in order), then this year's consumption (``_covers``).
_COVER_COLUMNS = (
    _products.c.code,
    _guarantees.c.care_domain,
    _guarantees.c.brss_rate_pct,
    _guarantees.c.flat_amount_cents,
    _guarantees.c.yearly_ceiling_cents,
    _guarantees.c.sante_100_class_a,
    _guarantees.c.class_b_ceiling_cents,
    _guarantees.c.third_party_payment,
    _guarantees.c.prior_approval_required,
    _usage.c.used_cents,
)
# How the cover columns join a guarantee: its product, and what the beneficiary consumed this year.
_PRODUCT_OF_GUARANTEE = and_(
    _products.c.insurer_id == _guarantees.c.insurer_id, _products.c.id == _guarantees.c.product_id
)
# The version of a formula that applies to care on ``day`` (an edit with an effective date ends one
# version where the next begins; ``valid_to`` is exclusive).
_FORMULA_ON_DAY = and_(
    _guarantees.c.valid_from <= bindparam("day"),
    or_(_guarantees.c.valid_to.is_(None), _guarantees.c.valid_to > bindparam("day")),
)


def _usage_of(beneficiary_id: Any) -> Any:
    return and_(
        _usage.c.insurer_id == _guarantees.c.insurer_id,
        _usage.c.beneficiary_id == beneficiary_id,
        _usage.c.care_domain == _guarantees.c.care_domain,
        _usage.c.year == bindparam("year"),
    )


_INSURER_BY_AMC = select(_insurers.c.id).where(_insurers.c.amc_number == bindparam("amc"))
# The card issued for the day of care: a contract's cards follow one another without overlap (the
# first from the contract's start, then one per calendar year), so at most one row joins. Found by
# the card's number (the unique index on insurer, number and start), then checked to be this
# contract's.
_CARD_ON_DAY = and_(
    _cards.c.insurer_id == _contracts.c.insurer_id,
    _cards.c.member_number == _contracts.c.member_number,
    _cards.c.contract_id == _contracts.c.id,
    _cards.c.valid_from <= bindparam("day"),
    _cards.c.valid_to >= bindparam("day"),
)
# The card, the person on it and, when that person is covered on the day of care by a contract in
# force and a card valid that day, the product's guarantees with this year's ceiling consumption:
# one statement, one row per guarantee (or one row without guarantees, or none for an unknown card).
# A miss of any kind reads no guarantee.
_HIT = and_(
    _beneficiaries.c.id.is_not(None),
    _cards.c.id.is_not(None),
    _contracts.c.start_date <= bindparam("day"),
    or_(_contracts.c.end_date.is_(None), _contracts.c.end_date >= bindparam("day")),
)
_CHECK = (
    select(
        _contracts.c.id,
        _contracts.c.product_id,
        _contracts.c.start_date,
        _contracts.c.end_date,
        _beneficiaries.c.id,
        _cards.c.id,
        *_COVER_COLUMNS,
    )
    .select_from(_contracts)
    .outerjoin(
        _beneficiaries,
        and_(
            _beneficiaries.c.insurer_id == _contracts.c.insurer_id,
            _beneficiaries.c.contract_id == _contracts.c.id,
            _beneficiaries.c.identity_bidx.in_(bindparam("candidates", expanding=True)),
        ),
    )
    .outerjoin(_cards, _CARD_ON_DAY)
    .outerjoin(
        _guarantees,
        and_(
            _guarantees.c.insurer_id == _contracts.c.insurer_id,
            _guarantees.c.product_id == _contracts.c.product_id,
            _HIT,
            _FORMULA_ON_DAY,
        ),
    )
    .outerjoin(_products, _PRODUCT_OF_GUARANTEE)
    .outerjoin(_usage, _usage_of(_beneficiaries.c.id))
    # No ORDER BY: one contract per card and one person per contract and identity (unique indexes);
    # ordering made SQLite walk the primary key of every beneficiary of the insurer instead.
    .where(_contracts.c.insurer_id == bindparam("insurer_id"), _contracts.c.member_number == bindparam("member"))
)
_COVERAGE = (
    select(
        *_COVER_COLUMNS,
    )
    .join(_products, _PRODUCT_OF_GUARANTEE)
    .outerjoin(_usage, _usage_of(bindparam("beneficiary_id")))
    .where(
        _guarantees.c.insurer_id == bindparam("insurer_id"),
        _guarantees.c.product_id == bindparam("product_id"),
        _FORMULA_ON_DAY,
    )
)
INSERT_CHECK = insert(cast(Table, RightsCheck.__table__))


def insurer_id_of(session: Session, amc_number: str) -> uuid.UUID | None:
    found: uuid.UUID | None = session.connection().execute(_INSURER_BY_AMC, {"amc": amc_number}).scalar()
    return found


# PostgreSQL: the insurer's id, and the transaction bound to it (row-level security) in the same
# round trip; to ``decoy`` when no insurer has this AMC number, so that a miss runs what a hit runs.
_INSURER_AND_TENANT = text(
    f"SELECT found.id, set_config('{TENANT_SETTING}', COALESCE(found.id::text, :decoy), true)"  # noqa: S608
    " FROM (SELECT (SELECT id FROM insurers WHERE amc_number = :amc) AS id) AS found"
)


def insurer_for_check(session: Session, amc_number: str, *, decoy: uuid.UUID) -> uuid.UUID | None:
    """The insurer with this AMC number (``None`` if there is none), the session bound to it, or
    to ``decoy`` when there is none."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        found = insurer_id_of(session, amc_number)
        bind_tenant(session, found or decoy)
        return found
    insurer_id: uuid.UUID | None = connection.execute(
        _INSURER_AND_TENANT, {"amc": amc_number, "decoy": str(decoy)}
    ).scalar()
    note_tenant(session, insurer_id or decoy)
    return insurer_id


@dataclass(frozen=True)
class Terms:
    """A guarantee's formula for one care domain, as read by the rights check (no ORM object)."""

    care_domain: CareDomain
    brss_rate_pct: int
    flat_amount_cents: int
    yearly_ceiling_cents: int | None
    sante_100_class_a: bool
    class_b_ceiling_cents: int | None
    third_party_payment: bool
    prior_approval_required: bool


@dataclass(frozen=True)
class Cover:
    """A product's formula for one domain, and what the beneficiary consumed of its ceiling."""

    guarantee: Terms
    used_cents: int

    @property
    def formula(self) -> Formula:
        return Formula.of(self.guarantee)

    @property
    def remaining_cents(self) -> int | None:
        ceiling = self.guarantee.yearly_ceiling_cents
        return None if ceiling is None else max(0, ceiling - self.used_cents)


def coverage(
    session: Session, *, insurer_id: uuid.UUID, product_id: uuid.UUID, beneficiary_id: uuid.UUID, day: date
) -> tuple[str | None, dict[CareDomain, Cover]]:
    """The product's code and, per care domain, the formula that applies to care on ``day`` and that
    year's ceiling consumption."""
    rows = (
        session.connection()
        .execute(
            _COVERAGE,
            {
                "insurer_id": insurer_id,
                "product_id": product_id,
                "beneficiary_id": beneficiary_id,
                "day": day,
                "year": day.year,
            },
        )
        .all()
    )
    return _covers([tuple(row) for row in rows])


@dataclass(frozen=True)
class Match:
    """The card's contract, if the identity matched one person on it that person, and whether a
    card of the contract is valid on the day of care."""

    contract_id: uuid.UUID
    product_id: uuid.UUID
    start: date
    end: date | None
    beneficiary_id: uuid.UUID | None
    card_valid: bool


def match_and_cover(
    session: Session, *, insurer_id: uuid.UUID, member_number: str, candidates: list[bytes], day: date
) -> tuple[Match | None, str | None, dict[CareDomain, Cover]]:
    """The card's contract and person (``None`` for an unknown card) and, when the person is covered
    on ``day``, the product's code and per care domain its formula and this year's consumption."""
    rows = (
        session.connection()
        .execute(
            _CHECK,
            {
                "insurer_id": insurer_id,
                "member": member_number,
                "candidates": candidates,
                "day": day,
                "year": day.year,
            },
        )
        .all()
    )
    if not rows:
        return None, None, {}
    first = rows[0]
    found = Match(first[0], first[1], first[2], first[3], first[4], first[5] is not None)
    code, covers = _covers([tuple(row[6:]) for row in rows if row[7] is not None])
    return found, code, covers


def _covers(rows: list[tuple[Any, ...]]) -> tuple[str | None, dict[CareDomain, Cover]]:
    """The product's code and its covers, from rows of ``_COVER_COLUMNS``."""
    code = rows[0][0] if rows else None
    return code, {row[1]: Cover(Terms(*row[1:9]), row[9] or 0) for row in rows}
