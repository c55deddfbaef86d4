"""The lines-of-care form the portal's quote, prior-approval and claim pages share: the patient's
rights check, one care domain and date, a few fixed rows (no script), amounts typed in euros as the
person writes them ("12,50" or "12.50"), each field's problem named so the page can show it next to
the field (``pricing/_lines.html`` draws it).

Pricing is the lowest layer of the care flow, so the form lives here: approvals and claims import it.

Error messages are English message ids, translated where the page shows them (through Jinja's
``_``, which %-formats: a literal percent sign is written ``%%``); none carries what was typed.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated

from fastapi import Depends, Request

from rempart.errors import RempartError, ValidationFailed
from rempart.fields import NotEuros, cents_to_euros, euros_to_cents
from rempart.identity.principal import PracticePrincipal
from rempart.insurers.models import SANTE_100_DOMAINS, CareDomain
from rempart.pricing.engine import (
    MAX_CARE_YEAR,
    MAX_QUANTITY,
    MAX_UNIT_PRICE_CENTS,
    MIN_CARE_YEAR,
    CareLine,
    Sante100Class,
)
from rempart.pricing.models import PricedLineColumns
from rempart.professionals.models import PROFESSION_DOMAINS
from rempart.web.i18n import _

# The care domains, as a person at the counter names them.
DOMAIN_WORDS: dict[CareDomain, str] = {
    CareDomain.PHAR: _("Pharmacy"),
    CareDomain.OPTI: _("Optics"),
    CareDomain.AUDI: _("Hearing aids"),
    CareDomain.DENT: _("Dental care"),
    CareDomain.HOSP: _("Hospital stay"),
    CareDomain.CONS: _("Consultations"),
    CareDomain.LABO: _("Lab tests"),
    CareDomain.AUXM: _("Paramedical care"),
    CareDomain.RADI: _("Imaging"),
    CareDomain.TRAN: _("Patient transport"),
}

ROWS = 4  # lines a form offers (a glasses quote is a frame and two lenses, plus one); a blank row is left out
ACT_CODE = re.compile(r"^[A-Z0-9.]{1,16}$")


class FormProblem(RempartError):
    """The form's fields are not valid; the page shows it again with what to correct."""

    status = 422
    slug = "validation-failed"
    title = "The form is not valid"


async def read_form(request: Request) -> dict[str, str]:
    """The posted form's text fields (already read by ``FORM_CSRF``: Starlette keeps it)."""
    form = await request.form()
    return {name: value for name, value in form.items() if isinstance(value, str)}


FormFields = Annotated[dict[str, str], Depends(read_form)]


def check_reference(check: str | None) -> str:
    """The check's reference from the address, when it is one (anything else is left for the person to type)."""
    try:
        return str(uuid.UUID(check)) if check else ""
    except ValueError:
        return ""


def profession_domains(caller: PracticePrincipal) -> list[CareDomain]:
    """The domains the professional's profession quotes and bills, in the menu's order."""
    allowed = PROFESSION_DOMAINS[caller.profession]
    return [d for d in CareDomain if d in allowed]


def domain_choices(domains: list[CareDomain]) -> list[tuple[str, str]]:
    """The care-domain menu: each domain's code and its words."""
    return [(d.value, DOMAIN_WORDS[d]) for d in domains]


@dataclass
class LinesForm:
    """What was typed (to show again) and, field by field, what is wrong with it."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    def text(self, name: str) -> str:
        return self.values.get(name, "").strip()

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def check_id(self) -> uuid.UUID | None:
        raw = self.text("check_id")
        if not raw:
            self.fail("check_id", _("Enter the reference of the patient's rights check."))
            return None
        try:
            return uuid.UUID(raw)
        except ValueError:
            self.fail("check_id", _("This is not a rights check reference: copy it from the rights check page."))
            return None

    def care_domain(self, allowed: list[CareDomain]) -> CareDomain | None:
        raw = self.text("care_domain")
        if raw not in {d.value for d in allowed}:
            self.fail("care_domain", _("Choose a care domain from the list."))
            return None
        return CareDomain(raw)

    def care_date(self) -> date | None:
        raw = self.text("care_date")
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            self.fail("care_date", _("Enter the date of care as day, month and year."))
            return None
        if not MIN_CARE_YEAR <= day.year <= MAX_CARE_YEAR:
            self.fail("care_date", _("This date of care is out of range: check the year."))
            return None
        return day

    def _amount(self, name: str, *, required: bool) -> int | None:
        raw = self.text(name)
        if not raw:
            if required:
                self.fail(name, _("Enter an amount in euros, for example 12,50."))
            return None
        try:
            cents = euros_to_cents(raw)
        except NotEuros:
            self.fail(name, _("Enter an amount in euros, for example 12,50."))
            return None
        if cents > MAX_UNIT_PRICE_CENTS:
            self.fail(name, _("This amount is too large for one unit of care."))
            return None
        return cents

    def _whole(self, name: str, low: int, high: int, message: str) -> int | None:
        raw = self.text(name)
        if not raw.isdigit() or not low <= int(raw) <= high:
            self.fail(name, message)
            return None
        return int(raw)

    def lines(self, domain: CareDomain | None, care_date: date | None) -> list[CareLine]:
        """The rows that were filled in, as lines of care; at least one."""
        lines: list[CareLine] = []
        for row in range(1, ROWS + 1):
            # The quantity and the AMO rate may come filled in (1, the page's usual rate): a row is
            # left out until its act or one of its prices is typed.
            names = [f"{stem}_{row}" for stem in ("act_code", "unit_price", "brss", "regulated_price")]
            if not any(self.text(name) for name in names):
                continue
            line = self._line(row, domain, care_date)
            if line is not None:
                lines.append(line)
        if not lines and not any(name.startswith(("act_code_", "unit_price_")) for name in self.errors):
            self.fail("act_code_1", _("Fill in at least one line of care."))
        return lines

    def _line(self, row: int, domain: CareDomain | None, care_date: date | None) -> CareLine | None:
        act_code = self.text(f"act_code_{row}").upper()
        if not ACT_CODE.match(act_code):
            self.fail(f"act_code_{row}", _("Enter the act code (letters, digits and dots, up to 16)."))
        quantity = self._whole(f"quantity_{row}", 1, MAX_QUANTITY, _("Enter a quantity between 1 and 999."))
        price = self._amount(f"unit_price_{row}", required=True)
        brss = self._amount(f"brss_{row}", required=True)
        rate = self._whole(f"amo_rate_{row}", 0, 100, _("Enter the AMO rate, a whole number between 0 and 100."))
        regulated = self._amount(f"regulated_price_{row}", required=False)
        sante = self._sante_class(row, domain, regulated)
        if quantity is None or price is None or brss is None or rate is None or domain is None or care_date is None:
            return None
        line = CareLine(
            care_domain=domain,
            act_code=act_code,
            care_date=care_date,
            quantity=quantity,
            unit_price_cents=price,
            brss_cents=brss,
            amo_rate_pct=rate,
            sante_100_class=sante,
            regulated_price_cents=regulated,
        )
        try:
            line.validate()  # what no one field says: quantity × unit price past what a line may cost
        except ValidationFailed:
            self.fail(f"unit_price_{row}", _("This line's amounts are out of range."))
            return None
        return line

    def _sante_class(self, row: int, domain: CareDomain | None, regulated: int | None) -> Sante100Class | None:
        raw = self.text(f"sante_100_class_{row}")
        if not raw:
            return None
        if raw not in {c.value for c in Sante100Class}:
            self.fail(f"sante_100_class_{row}", _("Choose class A, class B or none."))
            return None
        if domain not in SANTE_100_DOMAINS:
            self.fail(
                f"sante_100_class_{row}",
                _("A 100 %% Santé class applies to optics, hearing aids and dental care only."),
            )
            return None
        if raw == Sante100Class.A and regulated is None:
            self.fail(f"regulated_price_{row}", _("A class A line needs its regulated price."))
        return Sante100Class(raw)

    def raise_if_invalid(self) -> None:
        if self.errors:
            raise FormProblem("correct the fields shown")


def blank_values(*, care_date: date, care_domain: str = "", amo_rate: str = "") -> dict[str, str]:
    """A new form: the day's date, the first domain of the menu, one unit a row (and an AMO rate where
    the page has a usual one)."""
    values = {"care_date": care_date.isoformat(), "care_domain": care_domain}
    for row in range(1, ROWS + 1):
        values[f"quantity_{row}"] = "1"
        if amo_rate:
            values[f"amo_rate_{row}"] = amo_rate
    return values


def values_of_lines(lines: list[PricedLineColumns], language: str) -> dict[str, str]:
    """A form's rows filled from stored lines (a claim made from its prior approval)."""
    values: dict[str, str] = {}
    for row, line in enumerate(lines[:ROWS], start=1):
        values |= {
            f"act_code_{row}": line.act_code,
            f"quantity_{row}": str(line.quantity),
            f"unit_price_{row}": cents_to_euros(line.unit_price_cents, language),
            f"brss_{row}": cents_to_euros(line.brss_cents, language),
            f"amo_rate_{row}": str(line.amo_rate_pct),
            f"sante_100_class_{row}": line.sante_100_class.value if line.sante_100_class else "",
            f"regulated_price_{row}": cents_to_euros(line.regulated_price_cents, language),
        }
    return values
