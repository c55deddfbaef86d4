"""Validation of member rows, one contract (a member number and its beneficiaries) at a time.

Reasons name the field and what is wrong with it, never the value: the report of a rejected file
may be read by people who must not see the NIRs in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.fr import nir as nir_number

from rempart.members.models import BeneficiaryRole, ContractKind, MaritalStatus

COLUMNS = (
    "member_number",
    "product_code",
    "contract_kind",
    "contract_start",
    "contract_end",
    "role",
    "nir",
    "sex",
    "birth_date",
    "birth_rank",
    "last_name",
    "first_name",
    "marital_status",
)
OPTIONAL_COLUMNS = frozenset({"contract_end", "birth_rank"})
MAX_NAME = 100
EARLIEST_BIRTH = date(1900, 1, 1)
# NIR month codes that do not name a month (unknown, or assigned administratively).
E = TypeVar("E", ContractKind, BeneficiaryRole, MaritalStatus)
_UNNAMED_MONTHS = frozenset({20, *range(30, 43), *range(50, 100)})


@dataclass(frozen=True)
class MemberRecord:
    """One beneficiary of one contract, validated."""

    member_number: str
    product_code: str
    contract_kind: ContractKind
    contract_start: date
    contract_end: date | None
    role: BeneficiaryRole
    nir: str
    sex: str
    birth_date: date
    birth_rank: int
    last_name: str
    first_name: str
    marital_status: MaritalStatus

    @property
    def contract_terms(self) -> tuple[str, ContractKind, date, date | None]:
        return (self.product_code, self.contract_kind, self.contract_start, self.contract_end)


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    reason: str


class RowInvalid(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def _text(row: Mapping[str, object], field: str, *, max_length: int = MAX_NAME) -> str:
    value = row.get(field)
    text = "" if value is None else str(value).strip()
    if not text:
        raise RowInvalid(field, "is missing")
    if len(text) > max_length:
        raise RowInvalid(field, f"is longer than {max_length} characters")
    if not text.isprintable():
        raise RowInvalid(field, "contains control characters")
    return text


def _date(row: Mapping[str, object], field: str, *, optional: bool = False) -> date | None:
    value = row.get(field)
    text = "" if value is None else str(value).strip()
    if not text:
        if optional:
            return None
        raise RowInvalid(field, "is missing")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RowInvalid(field, "is not a date in the form YYYY-MM-DD") from None


def _choice(row: Mapping[str, object], field: str, enum: type[E]) -> E:
    text = _text(row, field, max_length=20).lower()
    try:
        return enum(text)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise RowInvalid(field, f"must be one of: {allowed}") from None


def parse_row(row: Mapping[str, object], *, product_codes: frozenset[str], today: date) -> MemberRecord:
    """Check one row on its own; raises ``RowInvalid`` naming the first bad field."""
    member_number = _text(row, "member_number", max_length=20)
    if not member_number.isalnum():
        raise RowInvalid("member_number", "must contain only letters and digits")
    product_code = _text(row, "product_code", max_length=32)
    if product_code not in product_codes:
        raise RowInvalid("product_code", "names no product of this insurer")
    kind = _choice(row, "contract_kind", ContractKind)
    start = _date(row, "contract_start")
    end = _date(row, "contract_end", optional=True)
    assert start is not None
    if end is not None and end < start:
        raise RowInvalid("contract_end", "is before contract_start")
    role = _choice(row, "role", BeneficiaryRole)
    try:
        nir = nir_number.validate(_text(row, "nir", max_length=25))
    except InvalidChecksum:
        raise RowInvalid("nir", "has a wrong key (97 - number mod 97)") from None
    except ValidationError:
        raise RowInvalid("nir", "is not a NIR (15 characters: 13 digits, Corsica 2A/2B, and a 2-digit key)") from None
    sex = _text(row, "sex", max_length=1).upper()
    if sex not in ("M", "F"):
        raise RowInvalid("sex", "must be M or F")
    birth_date = _date(row, "birth_date")
    assert birth_date is not None
    if not EARLIEST_BIRTH <= birth_date <= today:
        raise RowInvalid("birth_date", "is in the future or before 1900")
    # Only a missing rank (no column, an empty CSV cell, JSON null or "") means the first born: an
    # NDJSON 0 or false is a value, refused as CSV's "0" is. ASCII digits only: "²" is a digit to
    # str.isdigit() that int() refuses.
    rank = row.get("birth_rank")
    rank_text = "1" if rank is None or rank == "" else str(rank).strip()
    if not (rank_text.isascii() and rank_text.isdigit()) or not 1 <= int(rank_text) <= 9:
        raise RowInvalid("birth_rank", "must be a number from 1 to 9")
    return MemberRecord(
        member_number=member_number,
        product_code=product_code,
        contract_kind=kind,
        contract_start=start,
        contract_end=end,
        role=role,
        nir=nir,
        sex=sex,
        birth_date=birth_date,
        birth_rank=int(rank_text),
        last_name=_text(row, "last_name"),
        first_name=_text(row, "first_name"),
        marital_status=_choice(row, "marital_status", MaritalStatus),
    )


def nir_matches_person(nir: str, *, sex: str, birth_date: date) -> str | None:
    """Why the NIR cannot be this person's own (sex, birth year, birth month), or None."""
    sex_digit = int(nir[0])
    if (sex_digit % 2 == 1) != (sex == "M"):
        return "does not match the sex (first digit: 1 for men, 2 for women)"
    if int(nir[1:3]) != birth_date.year % 100:
        return "does not match the year of birth (digits 2-3)"
    month = int(nir[3:5])
    if month not in _UNNAMED_MONTHS and month != birth_date.month:
        return "does not match the month of birth (digits 4-5)"
    return None


def check_contract(records: list[tuple[int, MemberRecord]]) -> list[RowError]:
    """Rules that span a contract's rows: one holder, one set of terms, NIRs of children."""
    errors: list[RowError] = []
    holders = [line for line, r in records if r.role is BeneficiaryRole.HOLDER]
    if len(holders) != 1:
        first = records[0][0]
        reason = "has no holder" if not holders else "has more than one holder"
        errors.append(RowError(first if not holders else holders[1], "role", f"the contract {reason}"))
    terms = records[0][1].contract_terms
    adult_nirs = {r.nir for _, r in records if r.role is not BeneficiaryRole.CHILD}
    seen: set[tuple[str, date, int]] = set()
    for line, record in records:
        if record.contract_terms != terms:
            errors.append(RowError(line, "contract", "product, kind or dates differ from the contract's first row"))
        identity = (record.nir, record.birth_date, record.birth_rank)
        if identity in seen:
            errors.append(RowError(line, "nir", "the same person (NIR, birth date, rank) appears twice"))
        seen.add(identity)
        mismatch = nir_matches_person(record.nir, sex=record.sex, birth_date=record.birth_date)
        # A child may be covered under a parent's NIR ("ayant droit" on the parent's number).
        if mismatch and not (record.role is BeneficiaryRole.CHILD and record.nir in adult_nirs):
            errors.append(RowError(line, "nir", mismatch))
    return errors
