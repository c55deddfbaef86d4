"""Quotes in the portal: lines of care for a checked patient (``/quotes/new?check=<id>``) and, per line,
the insurer's share, the patient's remainder and the yearly ceilings after (``POST /quotes``).

The same service as the API's ``/api/v1/quotes`` (``quote_for_check``: the check must be the practice's
own and still citable; the access event is committed before the answer). A quote is a simulation:
nothing of the ceilings is consumed. The form has a fixed number of line rows, so it needs no script.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from rempart.detection.deps import GuardedPracticeCaller
from rempart.eligibility.service import RightsCheckExpired, RightsCheckNotFound, care_day
from rempart.errors import ValidationFailed
from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, PracticeCaller, requires
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.identity.principal import PracticePrincipal
from rempart.insurers.models import SANTE_100_DOMAINS, CareDomain
from rempart.pricing.engine import CareLine, Sante100Class
from rempart.pricing.schemas import CareLineIn, QuoteOut
from rempart.pricing.service import quote_for_check
from rempart.professionals.models import PROFESSION_DOMAINS
from rempart.web.deps import SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, render

router = PageRouter()

QUOTE = [requires(Permission.CARE_QUOTE_CREATE)]
POSTED = [FORM_CSRF, requires(Permission.CARE_QUOTE_CREATE)]

LINE_ROWS = 4  # a glasses quote is a frame and two lenses, plus one more line
DEFAULT_AMO_RATE = "60"  # optics, hearing aids and dental prostheses: 60 % of the BRSS

FIELD_ERRORS: dict[str, str] = {
    "check_id": _("Enter the check reference given by the rights check."),
    "care_date": _("Enter the date of care as a date."),
    "care_domain": _("Choose a care domain of your profession."),
    "act_code": _("The act code is 1 to 16 capital letters, digits or dots (CCAM, NGAP, LPP)."),
    "quantity": _("The quantity is a whole number from 1 to 999."),
    "unit_price": _("Enter the unit price in euros, for example 120,50."),
    "brss": _("Enter the BRSS in euros, for example 12,20."),
    "amo_rate": _("The AMO rate is a percentage from 0 to 100."),
    "sante_100_class": _("A 100 %% Santé class applies to optics, hearing aids and dental care only."),
    "regulated_price": _("Enter the regulated price in euros, for example 30,00."),
}
CLASS_A_NEEDS_PRICE = _("A class A line needs its regulated price.")
LINE_OUT_OF_RANGE = _("This line's amounts are out of range.")
CHECK_UNUSABLE = _(
    "No rights check of your practice has this reference, or it is too old to cite: check the patient's rights again."
)
NO_LINE = _("Fill in at least one line: its act code and its prices.")

# The schema's field names, as the form names them.
_FORM_NAME = {
    "unit_price_cents": "unit_price",
    "brss_cents": "brss",
    "amo_rate_pct": "amo_rate",
    "regulated_price_cents": "regulated_price",
}
_LINE_FIELDS = (
    "care_domain",
    "act_code",
    "quantity",
    "unit_price",
    "brss",
    "amo_rate",
    "sante_100_class",
    "regulated_price",
)


async def posted_form(request: Request) -> AsyncIterator[FormData]:
    """The form as posted (``FORM_CSRF`` read the same cached form); uploaded files closed after."""
    form = await request.form()
    try:
        yield form
    finally:
        await form.close()


FormDep = Annotated[FormData, Depends(posted_form)]


def cents_of(text: str) -> int:
    """``120,50`` or ``120.50 €`` → 12050; refuses anything that is not a non-negative amount."""
    cleaned = "".join(text.replace("€", "").replace(",", ".").split())
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError("not an amount") from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise ValueError("not an amount in euros and cents")
    return int(amount * 100)


@dataclass
class QuoteForm:
    """The form as typed (every value is shown back as typed: a quote carries no identity)."""

    check_id: str = ""
    care_date: str = ""
    rows: list[dict[str, str]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def blank(cls, *, check_id: str, today: date, domains: list[CareDomain]) -> QuoteForm:
        first = domains[0].value if domains else ""
        row = dict.fromkeys(_LINE_FIELDS, "") | {"care_domain": first, "quantity": "1", "amo_rate": DEFAULT_AMO_RATE}
        return cls(check_id=check_id, care_date=today.isoformat(), rows=[dict(row) for _i in range(LINE_ROWS)])

    @classmethod
    def posted(cls, form: FormData) -> QuoteForm:
        def text(name: str) -> str:
            value = form.get(name)
            return value.strip() if isinstance(value, str) else ""

        rows = [{name: text(f"line-{i}-{name}") for name in _LINE_FIELDS} for i in range(LINE_ROWS)]
        return cls(check_id=text("check_id"), care_date=text("care_date"), rows=rows)

    def read(self, domains: list[CareDomain]) -> tuple[uuid.UUID | None, list[CareLine]]:
        """The check and the lines of care in ``domains`` (the profession's), or ``(None, [])`` with
        ``errors`` filled in."""
        errors: dict[str, str] = {}
        try:
            check_id: uuid.UUID | None = uuid.UUID(self.check_id)
        except ValueError:
            check_id = None
            errors["check_id"] = FIELD_ERRORS["check_id"]
        try:
            care_date: date | None = date.fromisoformat(self.care_date)
        except ValueError:
            care_date = None
            errors["care_date"] = FIELD_ERRORS["care_date"]
        lines: list[CareLine] = []
        for i, row in enumerate(self.rows):
            if not any(row[name] for name in ("act_code", "unit_price", "brss", "regulated_price")):
                continue
            if row["care_domain"] not in domains:
                errors[f"line-{i}-care_domain"] = FIELD_ERRORS["care_domain"]
                continue
            line = _read_line(row, care_date or date.min, errors, prefix=f"line-{i}-")
            if line is not None:
                lines.append(line)
        if not errors and not lines:
            errors["line-0-act_code"] = NO_LINE
        self.errors = errors
        if errors or check_id is None:
            return None, []
        return check_id, lines


def _read_line(row: dict[str, str], care_date: date, errors: dict[str, str], *, prefix: str) -> CareLine | None:
    data: dict[str, Any] = {
        "care_domain": row["care_domain"],
        "act_code": row["act_code"].upper(),
        "care_date": care_date,
    }
    found: dict[str, str] = {}
    for name, key in (
        ("unit_price", "unit_price_cents"),
        ("brss", "brss_cents"),
        ("regulated_price", "regulated_price_cents"),
    ):
        if row[name] or name != "regulated_price":
            try:
                data[key] = cents_of(row[name])
            except ValueError:
                found[name] = FIELD_ERRORS[name]
    data["quantity"] = row["quantity"] or "1"
    data["amo_rate_pct"] = row["amo_rate"]
    if row["sante_100_class"]:
        data["sante_100_class"] = row["sante_100_class"]
    try:
        line = CareLineIn.model_validate(data).care_line()
    except ValidationError as invalid:
        for error in invalid.errors():
            name = _FORM_NAME.get(str(error["loc"][0]), str(error["loc"][0])) if error["loc"] else "act_code"
            found.setdefault(name, FIELD_ERRORS.get(name, LINE_OUT_OF_RANGE))
        line = None
    if line is not None and not found:
        if line.sante_100_class is not None and line.care_domain not in SANTE_100_DOMAINS:
            found["sante_100_class"] = FIELD_ERRORS["sante_100_class"]
        elif line.sante_100_class is Sante100Class.A and line.regulated_price_cents is None:
            found["regulated_price"] = CLASS_A_NEEDS_PRICE
        else:
            try:
                line.validate()
            except ValidationFailed:
                found["unit_price"] = LINE_OUT_OF_RANGE
    errors.update({prefix + name: message for name, message in found.items()})
    return None if found else line


def _domains(caller: PracticePrincipal) -> list[CareDomain]:
    allowed = PROFESSION_DOMAINS[caller.profession]
    return [d for d in CareDomain if d in allowed]


def _form_page(
    request: Request, viewer: Any, caller: PracticePrincipal, form: QuoteForm, *, status: int = 200
) -> HTMLResponse:
    return render(
        request,
        "pricing/quote_form.html",
        viewer=viewer,
        form=form,
        domains=[d.value for d in _domains(caller)],
        sante_domains=sorted(d.value for d in SANTE_100_DOMAINS),
        status=status,
    )


@router.page("/quotes/new", dependencies=QUOTE)
def new_quote(
    request: Request, viewer: ViewerDep, caller: PracticeCaller, identity: IdentityDep, check: str = ""
) -> HTMLResponse:
    """The quote form for the patient of a rights check (its reference comes from the coverage card)."""
    today = care_day(identity.clock())
    form = QuoteForm.blank(check_id=check.strip()[:64], today=today, domains=_domains(caller))
    return _form_page(request, viewer, caller, form)


@router.post("/quotes", dependencies=POSTED, response_class=HTMLResponse)
def make_quote(
    *,
    request: Request,
    viewer: ViewerDep,
    posted: FormDep,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> HTMLResponse:
    """Per line: the AMO's share, the complementary's share and what is left for the patient."""
    form = QuoteForm.posted(posted)
    check_id, lines = form.read(_domains(caller))
    if check_id is None:
        return _form_page(request, viewer, caller, form, status=422)
    try:
        result = quote_for_check(session=session, caller=caller, check_id=check_id, lines=lines, now=identity.clock())
    except (RightsCheckNotFound, RightsCheckExpired) as unusable:
        # Another practice's check reads like a missing one (the service sees to it).
        form.errors["check_id"] = CHECK_UNUSABLE
        return _form_page(request, viewer, caller, form, status=unusable.status)
    return render(request, "pricing/quote.html", viewer=viewer, quote=QuoteOut.of(result, lines))
