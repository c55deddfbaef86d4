"""Insurers and their guarantee products."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rempart.errors import Conflict, NotFound, ValidationFailed
from rempart.identity.events import record_event
from rempart.identity.models import SecurityEventKind
from rempart.insurers.models import APPROVAL_DOMAINS, SANTE_100_DOMAINS, CareDomain, Guarantee, Insurer, Product
from rempart.members.models import Contract
from rempart.pagination import Cursor, Page, keyset_page
from rempart.protection.service import KeyService
from rempart.tenancy import bind_tenant

# What a product code may be (ProductIn refuses any other); a path naming anything else names no product.
PRODUCT_CODE = re.compile(r"^[A-Z0-9_-]{1,32}$")


@dataclass(frozen=True)
class GuaranteeSpec:
    care_domain: CareDomain
    brss_rate_pct: int = 100
    flat_amount_cents: int = 0
    yearly_ceiling_cents: int | None = None
    sante_100_class_a: bool = False
    class_b_ceiling_cents: int | None = None
    third_party_payment: bool = True
    prior_approval_required: bool = False


def create_insurer(*, session: Session, keys: KeyService, amc_number: str, name: str) -> Insurer:
    if not (amc_number.isdigit() and 8 <= len(amc_number) <= 10):
        raise ValidationFailed("an AMC number has 8 to 10 digits")
    if session.scalar(select(Insurer.id).where(Insurer.amc_number == amc_number)) is not None:
        raise Conflict("an insurer with this AMC number exists")
    insurer = Insurer(id=uuid.uuid4(), amc_number=amc_number, name=name)
    session.add(insurer)
    session.flush()
    keys.create_insurer_keys(session, insurer.id)
    return insurer


def insurer_by_amc(session: Session, amc_number: str) -> Insurer:
    insurer = session.scalar(select(Insurer).where(Insurer.amc_number == amc_number))
    if insurer is None:
        raise NotFound("no insurer with this AMC number")
    return insurer


# The care domains' names in a refusal: a staff member reads it, not a code.
_DOMAIN_WORDS = {CareDomain.OPTI: "optics", CareDomain.AUDI: "hearing aids", CareDomain.DENT: "dental care"}


def class_a_missing(guarantees: Iterable[GuaranteeSpec]) -> list[CareDomain]:
    """The 100 % Santé domains a formula covers without class A in full: what a responsible
    product may not leave out (art. R.871-2 CSS). A domain it does not cover at all is no gap."""
    return [g.care_domain for g in guarantees if g.care_domain in SANTE_100_DOMAINS and not g.sante_100_class_a]


def _checked(guarantees: Iterable[GuaranteeSpec], *, responsible: bool = True) -> list[GuaranteeSpec]:
    specs = list(guarantees)
    # A product without a formula answers "no matching rights" to every member on it.
    if not specs:
        raise ValidationFailed("a product covers at least one care domain")
    if len({g.care_domain for g in specs}) != len(specs):
        raise ValidationFailed("a product has at most one formula per care domain")
    # Elsewhere no professional can ask for one, and every claim would be rejected "approval-missing".
    if any(g.prior_approval_required and g.care_domain not in APPROVAL_DOMAINS for g in specs):
        raise ValidationFailed(
            "prior approval applies to optics, hearing aids, dental care and hospital stays only "
            f"({', '.join(sorted(APPROVAL_DOMAINS))})"
        )
    if responsible and (missing := class_a_missing(specs)):
        raise ValidationFailed(
            "a responsible contract covers 100 % Santé class A in full: set sante_100_class_a on the "
            f"formula for {' and '.join(f'{_DOMAIN_WORDS[d]} ({d})' for d in missing)}, or make the product "
            "not responsible"
        )
    return specs


def create_product(
    *,
    session: Session,
    insurer_id: uuid.UUID,
    code: str,
    name: str,
    guarantees: Iterable[GuaranteeSpec],
    responsible: bool = True,
) -> Product:
    specs = _checked(guarantees, responsible=responsible)
    bind_tenant(session, insurer_id)
    exists = select(Product.id).where(Product.insurer_id == insurer_id, Product.code == code)
    if session.scalar(exists):
        raise Conflict("a product with this code exists")
    product = Product(id=uuid.uuid4(), insurer_id=insurer_id, code=code, name=name, responsible=responsible)
    product.guarantees = [Guarantee(insurer_id=insurer_id, **spec.__dict__) for spec in specs]
    try:
        with session.begin_nested():
            session.add(product)
            session.flush()
    except IntegrityError:
        # The same code created by another request between the check and the insert (a second tab,
        # a retry): the answer that request's twin would have got a moment later. Anything else
        # the insert broke goes on as the error it is.
        if session.scalar(exists):
            raise Conflict("a product with this code exists") from None
        raise
    return product


def products_by_code(session: Session, insurer_id: uuid.UUID) -> dict[str, Product]:
    bind_tenant(session, insurer_id)
    return {p.code: p for p in session.scalars(select(Product).where(Product.insurer_id == insurer_id))}


# -- products CRUD for the insurer API (added with the care flows) ---------------------------------


def product_by_code(session: Session, insurer_id: uuid.UUID, code: str) -> Product:
    if not PRODUCT_CODE.fullmatch(code):
        raise NotFound("no product with this code")
    product = session.scalar(select(Product).where(Product.insurer_id == insurer_id, Product.code == code))
    if product is None:
        raise NotFound("no product with this code")
    return product


def list_products(session: Session, insurer_id: uuid.UUID) -> list[Product]:
    return list(session.scalars(select(Product).where(Product.insurer_id == insurer_id).order_by(Product.code)))


def products_page(
    session: Session, insurer_id: uuid.UUID, *, limit: int = 100, cursor: Cursor | None = None
) -> Page[Product]:
    """The insurer's products, oldest first, a page at a time (after ``cursor``)."""
    statement = select(Product).where(Product.insurer_id == insurer_id)
    return keyset_page(
        session, statement, at=Product.created_at, row_id=Product.id, cursor=cursor, limit=limit, descending=False
    )


def update_product(
    *,
    session: Session,
    insurer_id: uuid.UUID,
    code: str,
    name: str,
    guarantees: Iterable[GuaranteeSpec],
    today: date,
    effective_on: date | None = None,
    responsible: bool | None = None,
) -> Product:
    """Rename a product and change its formulas for care given from ``effective_on`` (today when
    not given). Care given before that day stays under the formulas of its day: quotes, approvals
    and claims for it are priced as they were. A change scheduled for a later day is replaced by
    this one; the name and whether it is responsible (unchanged when ``None``) change at once:
    neither is versioned. The new formulas are checked against it (a change scheduled for a later
    day leaves today's formulas as they are, checked or not)."""
    # The formulas' own checks before the product is looked up, as ever; the responsible one once
    # its flag is known (unchanged when not given).
    specs = _checked(guarantees, responsible=bool(responsible))
    day = effective_on or today
    if day < today:
        raise ValidationFailed("a change takes effect today or on a later day: care already given keeps its formulas")
    product = product_by_code(session, insurer_id, code)
    if responsible is None:
        responsible = product.responsible
        _checked(specs, responsible=responsible)
    _end_versions_at(session, product, day)
    product.name = name
    product.responsible = responsible
    product.guarantees.extend(
        Guarantee(insurer_id=insurer_id, valid_from=day, valid_to=None, **spec.__dict__) for spec in specs
    )
    session.flush()
    return product


def _end_versions_at(session: Session, product: Product, day: date) -> None:
    """Drop the versions that would start on or after ``day`` and end the others there."""
    of_product = (Guarantee.insurer_id == product.insurer_id, Guarantee.product_id == product.id)
    session.execute(delete(Guarantee).where(*of_product, Guarantee.valid_from >= day))
    session.execute(
        update(Guarantee)
        .where(*of_product, (Guarantee.valid_to.is_(None)) | (Guarantee.valid_to > day))
        .values(valid_to=day)
    )
    session.expire(product, ["guarantees"])


def cancel_scheduled_change(*, session: Session, insurer_id: uuid.UUID, code: str, today: date) -> Product:
    """Withdraw the formulas scheduled after today: today's go on with no end."""
    product = product_by_code(session, insurer_id, code)
    scheduled = product.scheduled_after(today)
    if scheduled is None:
        raise Conflict("no change is scheduled for this product")
    of_product = (Guarantee.insurer_id == insurer_id, Guarantee.product_id == product.id)
    session.execute(delete(Guarantee).where(*of_product, Guarantee.valid_from > today))
    session.execute(update(Guarantee).where(*of_product, Guarantee.valid_to > today).values(valid_to=None))
    session.expire(product, ["guarantees"])
    session.flush()
    return product


def retire_product(
    *, session: Session, insurer_id: uuid.UUID, code: str, on: date, today: date, successor_code: str | None = None
) -> Product:
    """Close a product to new members from ``on`` (today or later): a members file may put no new
    contract on it from that day; the contracts already on it go on under its formulas until they
    end (none is moved to the successor). A product in use is retired only with a successor named:
    an open product of the same insurer, not itself, that the import's refusal points new members to."""
    if on < today:
        raise ValidationFailed("a product is retired from today or a later day")
    product = product_by_code(session, insurer_id, code)
    successor: Product | None = None
    if successor_code is not None:
        if successor_code == product.code:
            raise ValidationFailed("a product cannot be its own successor")
        successor = session.scalar(
            select(Product).where(Product.insurer_id == insurer_id, Product.code == successor_code)
        )
        if successor is None or not PRODUCT_CODE.fullmatch(successor_code):
            raise ValidationFailed("the successor is none of this insurer's products")
        if successor.retired_on is not None:
            raise ValidationFailed("the successor is retired: name an open product")
    elif _in_use(session, product):
        raise ValidationFailed(
            "contracts use this product: name its successor (successor_code), the product new members go on instead"
        )
    product.retired_on = on
    product.successor_id = successor.id if successor is not None else None
    session.flush()
    session.expire(product, ["successor"])
    return product


def _in_use(session: Session, product: Product) -> bool:
    in_use = select(Contract.id).where(Contract.insurer_id == product.insurer_id, Contract.product_id == product.id)
    return session.scalar(in_use.limit(1)) is not None


def reopen_product(*, session: Session, insurer_id: uuid.UUID, code: str) -> Product:
    """Open a retired product to new members again."""
    product = product_by_code(session, insurer_id, code)
    if product.retired_on is None:
        raise Conflict("this product is open to new members")
    product.retired_on = None
    product.successor_id = None
    session.flush()
    session.expire(product, ["successor"])
    return product


def delete_product(*, session: Session, insurer_id: uuid.UUID, code: str) -> None:
    """Delete a product no contract uses."""
    product = product_by_code(session, insurer_id, code)
    in_use = select(Contract.id).where(Contract.insurer_id == insurer_id, Contract.product_id == product.id).limit(1)
    if session.scalar(in_use) is not None:
        raise Conflict("contracts use this product: it cannot be deleted")
    names_it = select(Product.code).where(Product.insurer_id == insurer_id, Product.successor_id == product.id)
    if (predecessor := session.scalar(names_it.limit(1))) is not None:
        raise Conflict(f"the retired product {predecessor} names this one as its successor: it cannot be deleted")
    try:
        with session.begin_nested():
            session.delete(product)
            session.flush()
    except IntegrityError:
        # A members import put a contract on it between the check and the delete (the contract's
        # foreign key refused the delete). Anything else the delete broke goes on as it is.
        if session.scalar(in_use) is not None:
            raise Conflict("contracts use this product: it cannot be deleted") from None
        raise


# -- the insurer API's units of work -------------------------------------------------------------
# ``create_product`` and its siblings write in the caller's transaction (the demo and the seeds
# create an insurer and its products in one); a route calls these, which commit.


def do_create_product(
    *,
    session: Session,
    insurer_id: uuid.UUID,
    code: str,
    name: str,
    guarantees: Iterable[GuaranteeSpec],
    responsible: bool = True,
) -> Product:
    product = create_product(
        session=session, insurer_id=insurer_id, code=code, name=name, guarantees=guarantees, responsible=responsible
    )
    session.commit()
    return product


@dataclass(frozen=True)
class Actor:
    """Who changes a product: the staff member's account, from which address, when."""

    account_id: uuid.UUID
    at: datetime
    address: str | None = None


def _record(
    session: Session,
    actor: Actor,
    kind: SecurityEventKind,
    product: Product,
    *,
    change: str = "",
    on: date | None = None,
    successor: str | None = None,
) -> None:
    """The staff member's security event, in the change's transaction: ids, codes and days only."""
    record_event(
        session=session,
        kind=kind,
        at=actor.at,
        account_id=actor.account_id,
        address=actor.address,
        insurer_id=str(product.insurer_id),
        product=product.code,
        change=change,
        on=on.isoformat() if on else "",
        successor=successor or "",
    )


def do_update_product(
    *,
    session: Session,
    actor: Actor,
    insurer_id: uuid.UUID,
    code: str,
    name: str,
    guarantees: Iterable[GuaranteeSpec],
    today: date,
    effective_on: date | None = None,
    responsible: bool | None = None,
) -> Product:
    was_responsible = product_by_code(session, insurer_id, code).responsible
    product = update_product(
        session=session,
        insurer_id=insurer_id,
        code=code,
        name=name,
        guarantees=guarantees,
        today=today,
        effective_on=effective_on,
        responsible=responsible,
    )
    # Whether it is responsible changes its tax and the rules on its quotes: the event says so.
    flipped = ""
    if product.responsible != was_responsible:
        flipped = "+responsible" if product.responsible else "+not-responsible"
    _record(
        session,
        actor,
        SecurityEventKind.PRODUCT_CHANGED,
        product,
        change=f"formulas{flipped}",
        on=effective_on or today,
    )
    session.commit()
    return product


def do_cancel_scheduled_change(
    *, session: Session, actor: Actor, insurer_id: uuid.UUID, code: str, today: date
) -> Product:
    product = cancel_scheduled_change(session=session, insurer_id=insurer_id, code=code, today=today)
    _record(session, actor, SecurityEventKind.PRODUCT_CHANGED, product, change="scheduled-withdrawn")
    session.commit()
    return product


def do_retire_product(
    *,
    session: Session,
    actor: Actor,
    insurer_id: uuid.UUID,
    code: str,
    on: date,
    today: date,
    successor_code: str | None = None,
) -> Product:
    product = retire_product(
        session=session, insurer_id=insurer_id, code=code, on=on, today=today, successor_code=successor_code
    )
    _record(
        session,
        actor,
        SecurityEventKind.PRODUCT_RETIRED,
        product,
        change="retired",
        on=on,
        successor=successor_code,
    )
    session.commit()
    return product


def do_reopen_product(*, session: Session, actor: Actor, insurer_id: uuid.UUID, code: str) -> Product:
    product = reopen_product(session=session, insurer_id=insurer_id, code=code)
    _record(session, actor, SecurityEventKind.PRODUCT_CHANGED, product, change="reopened")
    session.commit()
    return product


def do_delete_product(*, session: Session, insurer_id: uuid.UUID, code: str) -> None:
    delete_product(session=session, insurer_id=insurer_id, code=code)
    session.commit()
