"""The insurer's back office: its products and formulas (``/insurer/products``).

The same services as the insurer API's product routes (``insurers.api``), for the staff member's own
insurer: the session's insurer is the tenant, no path names it. A product's formula per care domain
is typed in euros and percentages, read into cents and whole percents here; a form with bad input
comes back with its fields marked (422) and nothing written. A product no contract uses may be
deleted; one in use may not (the service says so, and the page repeats it).

Each product says whether it is a "contrat responsable" (a box ticked unless the staff member
unticks it); a responsible one covers 100 % Santé class A in full wherever it covers optics, hearing
aids or dental care, and the form says so next to the box to tick. The flag changes at once, with
the name, whatever day the new formulas apply from.

A change of formulas takes effect on a day the staff member chooses (today or later): care given
before it keeps the formulas of its day, and a change scheduled for later is shown, and may be
withdrawn, until it applies. A product is retired from a day: closed to new members from then, its
contracts going on until they end (none is moved); one in use is retired with a successor named, the
open product the members import points new members to.

Changing, withdrawing a change, retiring and reopening ask for a passkey confirmed within the last
minutes (step-up), and each is a security event of the staff member's account.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from rempart.detection.deps import GuardedStaffCaller
from rempart.errors import Conflict, ValidationFailed
from rempart.fields import paris_day
from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, RECENT_PASSKEY, requires
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.insurers.models import APPROVAL_DOMAINS, SANTE_100_DOMAINS, CareDomain, Product
from rempart.insurers.schemas import MAX_CENTS
from rempart.insurers.service import (
    PRODUCT_CODE,
    Actor,
    GuaranteeSpec,
    do_cancel_scheduled_change,
    do_create_product,
    do_delete_product,
    do_reopen_product,
    do_retire_product,
    do_update_product,
    list_products,
    product_by_code,
)
from rempart.web.deps import SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, render, see_other

router = PageRouter()

READ = [requires(Permission.INSURER_PRODUCT_READ)]
MANAGE = [FORM_CSRF, requires(Permission.INSURER_PRODUCT_MANAGE)]
MANAGE_PAGE = [requires(Permission.INSURER_PRODUCT_MANAGE)]
CHANGE = [*MANAGE, RECENT_PASSKEY]  # a change to a product in use: step-up

DOMAINS = tuple(CareDomain)
MAX_RATE = 1000  # % of the BRSS: GuaranteeIn's bound

# What the list says after a form went through (``?done=...``): known words only, never an echo.
DONE = {
    "created": _("The product was created."),
    "updated": _("The product was saved. Contracts on it follow it from the next rights check."),
    "deleted": _("The product was deleted."),
    "scheduled": _(
        "The change was saved. It applies to care given from the day you chose; earlier care keeps "
        "the formulas of its day."
    ),
    "withdrawn": _("The scheduled change was withdrawn: today's formulas go on."),
    "retired": _("The product was retired: from the day you chose, no new member may be put on it."),
    "reopened": _("The product is open to new members again."),
}
ERRORS = {
    "code": _("A product code is 1 to 32 capital letters, digits, dashes or underscores."),
    "code-taken": _("A product with this code exists: choose another code."),
    "name": _("Give the product a name of 1 to 200 characters, on one line."),
    "rate": _("A rate is a whole percentage of the BRSS, from 0 to 1000."),
    "amount": _("An amount is in euros, like 150 or 150,50, up to 1 000 000 €."),
    "approval": _("Prior approval applies to optics, hearing aids, dental care and hospital stays only."),
    "domains": _("Cover at least one care domain."),
    "class-a": _(
        "A responsible contract covers 100 %% Santé class A in full: tick class A for this care domain, "
        "or untick “Responsible contract”."
    ),
    "effective_on": _("Give a day, today or later, like 2027-01-01 or 01/01/2027."),
    "retired_on": _("Give a day, today or later, like 2027-01-01 or 01/01/2027."),
    "successor-needed": _(
        "Contracts use this product: choose the product new members go on instead. "
        "Its contracts stay on it until they end."
    ),
    "successor": _("Choose one of your open products, other than this one."),
}


async def posted_form(request: Request) -> AsyncIterator[FormData]:
    """The form as posted (``FORM_CSRF`` read the same cached form); uploaded files closed after."""
    form = await request.form()
    try:
        yield form
    finally:
        await form.close()


FormDep = Annotated[FormData, Depends(posted_form)]


# -- the form --------------------------------------------------------------------------------------


@dataclass
class DomainForm:
    """One care domain's fields, as typed (strings), and their errors (field name → message id)."""

    domain: CareDomain
    covered: bool = False
    rate: str = "100"
    flat: str = ""
    ceiling: str = ""
    class_a: bool = False
    class_b: str = ""
    third_party: bool = True
    approval: bool = False

    @property
    def key(self) -> str:
        return self.domain.value.lower()

    @property
    def sante_100(self) -> bool:
        return self.domain in SANTE_100_DOMAINS

    @property
    def approvals(self) -> bool:
        return self.domain in APPROVAL_DOMAINS


@dataclass
class ProductForm:
    code: str = ""
    name: str = ""
    domains: list[DomainForm] = field(default_factory=lambda: [DomainForm(d) for d in DOMAINS])
    effective_on: str = ""  # for a change: the first day of care the new formulas apply to
    responsible: bool = True  # a "contrat responsable", as almost every product is
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    @classmethod
    def of(cls, product: Product, today: date) -> ProductForm:
        """The product's formulas as they will stand: a scheduled change, else today's."""
        scheduled = product.scheduled_after(today)
        day = scheduled[0] if scheduled else today
        form = cls(code=product.code, name=product.name, effective_on=day.isoformat(), responsible=product.responsible)
        for domain in form.domains:
            guarantee = product.guarantee(domain.domain, day)
            if guarantee is None:
                continue
            domain.covered = True
            domain.rate = str(guarantee.brss_rate_pct)
            domain.flat = _euros_typed(guarantee.flat_amount_cents) if guarantee.flat_amount_cents else ""
            domain.ceiling = _euros_typed(guarantee.yearly_ceiling_cents)
            domain.class_a = guarantee.sante_100_class_a
            domain.class_b = _euros_typed(guarantee.class_b_ceiling_cents)
            domain.third_party = guarantee.third_party_payment
            domain.approval = guarantee.prior_approval_required
        return form


def _euros_typed(cents: int | None) -> str:
    """Cents as a person types euros: ``15000`` → ``150``, ``15050`` → ``150,50``."""
    if cents is None:
        return ""
    whole, part = divmod(cents, 100)
    return f"{whole},{part:02d}" if part else str(whole)


def read_cents(text: str) -> int | None:
    """Euros as typed (``150``, ``150,50``, ``1 500.00 €``) in cents; ``ValueError`` if not."""
    cleaned = text.replace("€", "").replace("\u202f", "").replace("\xa0", "").replace(" ", "").replace(",", ".")
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(text) from None
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")):
        raise ValueError(text)
    cents = int(value * 100)
    if cents > MAX_CENTS:
        raise ValueError(text)
    return cents


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def read_day(text: str) -> date:
    """A day as a browser's date field sends it (``2027-01-01``) or as a person types it
    (``01/01/2027``); ``ValueError`` if neither."""
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern).date()  # noqa: DTZ007 (a calendar day, no time)
        except ValueError:
            continue
    raise ValueError(text)


def _day_at_least(form: FormData, name: str, today: date) -> date | None:
    """The form's day ``name`` (today when blank), or ``None`` when it is unreadable or past."""
    typed = _text(form, name)
    if not typed:
        return today
    try:
        day = read_day(typed)
    except ValueError:
        return None
    return day if day >= today else None


def read_product(form: FormData, *, code: str | None = None) -> tuple[ProductForm, list[GuaranteeSpec]]:
    """The form as typed and, when its ``errors`` are empty, the formulas to save."""
    shown = ProductForm(
        code=code if code is not None else _text(form, "code"),
        name=_text(form, "name"),
        responsible=form.get("responsible") == "on",
    )
    if code is None and not PRODUCT_CODE.fullmatch(shown.code):
        shown.add("code", ERRORS["code"])
    if not shown.name or len(shown.name) > 200 or any(c in shown.name for c in "\r\n\x00"):
        shown.add("name", ERRORS["name"])
    specs: list[GuaranteeSpec] = []
    for domain in shown.domains:
        key = domain.key
        domain.covered = form.get(f"{key}_covered") == "on"
        domain.rate = _text(form, f"{key}_rate")
        domain.flat = _text(form, f"{key}_flat")
        domain.ceiling = _text(form, f"{key}_ceiling")
        domain.class_a = domain.sante_100 and form.get(f"{key}_class_a") == "on"
        domain.class_b = _text(form, f"{key}_class_b") if domain.sante_100 else ""
        domain.third_party = form.get(f"{key}_third_party") == "on"
        domain.approval = form.get(f"{key}_approval") == "on"
        if not domain.covered:
            continue
        amounts: dict[str, int | None] = {}
        for name in ("flat", "ceiling", "class_b"):
            try:
                amounts[name] = read_cents(getattr(domain, name))
            except ValueError:
                shown.add(f"{key}_{name}", ERRORS["amount"])
        rate = int(domain.rate) if domain.rate.isdigit() else -1
        if not 0 <= rate <= MAX_RATE:
            shown.add(f"{key}_rate", ERRORS["rate"])
        if domain.approval and not domain.approvals:
            shown.add(f"{key}_approval", ERRORS["approval"])
        # What the service refuses too, said here next to the box to tick.
        if shown.responsible and domain.sante_100 and not domain.class_a:
            shown.add(f"{key}_class_a", ERRORS["class-a"])
        if not shown.errors:
            specs.append(
                GuaranteeSpec(
                    care_domain=domain.domain,
                    brss_rate_pct=rate,
                    flat_amount_cents=amounts.get("flat") or 0,
                    yearly_ceiling_cents=amounts.get("ceiling"),
                    sante_100_class_a=domain.class_a,
                    class_b_ceiling_cents=amounts.get("class_b"),
                    third_party_payment=domain.third_party,
                    prior_approval_required=domain.approval,
                )
            )
    if not shown.errors and not specs:
        shown.add("domains", ERRORS["domains"])
    return shown, specs


def _form_page(
    request: Request,
    viewer: Any,
    form: ProductForm,
    *,
    today: date,
    product: Product | None = None,
    status: int = 200,
    in_use: bool = False,
    retire_error: str = "",
    successors: list[Product] | None = None,
) -> HTMLResponse:
    """The product form (those who may manage products only reach it), with its scheduled change
    and its retirement when it exists."""
    return render(
        request,
        "backoffice/products_form.html",
        viewer=viewer,
        form=form,
        product=product,
        status=status,
        in_use=in_use,
        today=today,
        scheduled=product.scheduled_after(today) if product else None,
        retire_error=retire_error,
        successors=successors or [],
    )


# -- the pages -------------------------------------------------------------------------------------


@router.page("/insurer/products", dependencies=READ)
def products(
    *,
    request: Request,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    done: str | None = None,
) -> HTMLResponse:
    """The insurer's products, each with what it pays per care domain in words, today and from a
    scheduled change."""
    shown = list_products(session, staff.insurer_id)
    return _list_page(request, viewer=viewer, staff=staff, shown=shown, identity=identity, done=done)


def _list_page(
    request: Request,
    *,
    viewer: Any,
    staff: GuardedStaffCaller,
    shown: list[Product],
    identity: IdentityDep,
    done: str | None = None,
) -> HTMLResponse:
    return render(
        request,
        "backoffice/products_list.html",
        viewer=viewer,
        products=shown,
        today=paris_day(identity.clock()),
        done=DONE.get(done or ""),
        can_manage=Permission.INSURER_PRODUCT_MANAGE in staff.permissions,
    )


@router.page("/insurer/products/new", dependencies=MANAGE_PAGE)
def new_product_form(
    request: Request, viewer: ViewerDep, staff: GuardedStaffCaller, identity: IdentityDep
) -> HTMLResponse:
    return _form_page(request, viewer, ProductForm(), today=paris_day(identity.clock()))


@router.post("/insurer/products/new", dependencies=MANAGE, response_class=HTMLResponse)
def create_product(
    *,
    request: Request,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    form: FormDep,
    identity: IdentityDep,
) -> Response:
    shown, specs = read_product(form)
    if not shown.errors:
        try:
            do_create_product(
                session=session,
                insurer_id=staff.insurer_id,
                code=shown.code,
                name=shown.name,
                guarantees=specs,
                responsible=shown.responsible,
            )
        except Conflict:
            shown.add("code", ERRORS["code-taken"])
        except ValidationFailed:
            shown.add("domains", ERRORS["approval"])
        else:
            return see_other(f"/insurer/products?done=created#product-{shown.code}")
    return _form_page(request, viewer, shown, today=paris_day(identity.clock()), status=422)


@router.page("/insurer/products/{code}", dependencies=READ)
def product_page(
    *,
    request: Request,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    code: str,
) -> HTMLResponse:
    """A product's formulas, as a form for those who may change them."""
    product = product_by_code(session, staff.insurer_id, code)
    if Permission.INSURER_PRODUCT_MANAGE not in staff.permissions:
        return _list_page(request, viewer=viewer, staff=staff, shown=[product], identity=identity)
    today = paris_day(identity.clock())
    return _form_page(
        request,
        viewer,
        ProductForm.of(product, today),
        today=today,
        product=product,
        successors=_successors(session, staff, product),
    )


@router.post("/insurer/products/{code}", dependencies=CHANGE, response_class=HTMLResponse)
def update_product(
    *,
    request: Request,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    form: FormDep,
    identity: IdentityDep,
    code: str,
) -> Response:
    product = product_by_code(session, staff.insurer_id, code)  # not found before anything is read
    today = paris_day(identity.clock())
    shown, specs = read_product(form, code=product.code)
    shown.effective_on = _text(form, "effective_on")
    effective_on = _day_at_least(form, "effective_on", today)
    if effective_on is None:
        shown.add("effective_on", ERRORS["effective_on"])
    if not shown.errors and effective_on is not None:
        try:
            do_update_product(
                session=session,
                actor=_actor(staff, identity),
                insurer_id=staff.insurer_id,
                code=product.code,
                name=shown.name,
                guarantees=specs,
                today=today,
                effective_on=effective_on,
                responsible=shown.responsible,
            )
        except ValidationFailed:
            shown.add("domains", ERRORS["approval"])
        else:
            done = "updated" if effective_on == today else "scheduled"
            return see_other(f"/insurer/products?done={done}#product-{product.code}")
    successors = _successors(session, staff, product)
    return _form_page(request, viewer, shown, today=today, product=product, status=422, successors=successors)


@router.post("/insurer/products/{code}/scheduled/withdraw", dependencies=CHANGE, response_class=HTMLResponse)
def withdraw_scheduled_change(
    request: Request, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep, code: str
) -> Response:
    product = product_by_code(session, staff.insurer_id, code)
    # Withdrawn meanwhile (another tab), or applied since the page was shown: the same answer.
    with suppress(Conflict):
        do_cancel_scheduled_change(
            session=session,
            actor=_actor(staff, identity),
            insurer_id=staff.insurer_id,
            code=product.code,
            today=paris_day(identity.clock()),
        )
    return see_other(f"/insurer/products?done=withdrawn#product-{product.code}")


@router.post("/insurer/products/{code}/retire", dependencies=CHANGE, response_class=HTMLResponse)
def retire_product(
    *,
    request: Request,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    form: FormDep,
    identity: IdentityDep,
    code: str,
) -> Response:
    product = product_by_code(session, staff.insurer_id, code)
    today = paris_day(identity.clock())
    on = _day_at_least(form, "retired_on", today)
    successor = _text(form, "successor_code") or None
    error = "" if on is not None else ERRORS["retired_on"]
    if on is not None:
        try:
            do_retire_product(
                session=session,
                actor=_actor(staff, identity),
                insurer_id=staff.insurer_id,
                code=product.code,
                on=on,
                today=today,
                successor_code=successor,
            )
        except ValidationFailed:
            # The service said why (in use without a successor, or not an open product of this insurer).
            error = ERRORS["successor"] if successor else ERRORS["successor-needed"]
        else:
            return see_other(f"/insurer/products?done=retired#product-{product.code}")
    return _form_page(
        request,
        viewer,
        ProductForm.of(product, today),
        today=today,
        product=product,
        status=422,
        retire_error=error,
        successors=_successors(session, staff, product),
    )


def _successors(session: SessionDep, staff: GuardedStaffCaller, product: Product) -> list[Product]:
    """The products a retired one may name as successor: this insurer's open ones, not itself."""
    return [p for p in list_products(session, staff.insurer_id) if p.id != product.id and p.retired_on is None]


def _actor(staff: GuardedStaffCaller, identity: IdentityDep) -> Actor:
    return Actor(account_id=staff.account_id, at=identity.clock(), address=staff.address)


@router.post("/insurer/products/{code}/reopen", dependencies=CHANGE, response_class=HTMLResponse)
def reopen_product(
    request: Request, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep, code: str
) -> Response:
    product = product_by_code(session, staff.insurer_id, code)
    with suppress(Conflict):  # reopened meanwhile (another tab): the same answer
        do_reopen_product(
            session=session, actor=_actor(staff, identity), insurer_id=staff.insurer_id, code=product.code
        )
    return see_other(f"/insurer/products?done=reopened#product-{product.code}")


@router.post("/insurer/products/{code}/delete", dependencies=MANAGE, response_class=HTMLResponse)
def delete_product(
    *,
    request: Request,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    code: str,
) -> Response:
    product = product_by_code(session, staff.insurer_id, code)
    try:
        do_delete_product(session=session, insurer_id=staff.insurer_id, code=product.code)
    except Conflict:
        today = paris_day(identity.clock())
        form = ProductForm.of(product, today)
        successors = _successors(session, staff, product)
        return _form_page(
            request, viewer, form, today=today, product=product, status=409, in_use=True, successors=successors
        )
    return see_other("/insurer/products?done=deleted")
