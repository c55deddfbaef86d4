"""Load a nomenclature file (checked whole before anything is written) and look codes up in the
version in force on a day of care: the quote and claim rules' source of truth for a line's base,
compulsory rate and 100 % Santé class, never the caller's word."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from rempart.errors import Conflict, ValidationFailed
from rempart.insurers.models import SANTE_100_DOMAINS, CareDomain
from rempart.reference.models import (
    Correction,
    DeviceKind,
    HearingClass,
    NomenclatureEntry,
    NomenclatureVersion,
    Sante100Class,
)

E = TypeVar("E", CareDomain, Sante100Class, DeviceKind, Correction, HearingClass)

SHIPPED = Path(__file__).parent / "data" / "nomenclature-2026-01.toml"

_CODE = re.compile(r"^[A-Z0-9]{1,20}$")
_VERSION = re.compile(r"^[A-Za-z0-9._-]{1,20}$")
_MAX_LABEL = 200
_MAX_PROBLEMS = 20  # a file wrong everywhere is refused with its first problems, not a wall of text
_KINDS = {CareDomain.OPTI: {DeviceKind.FRAME, DeviceKind.LENS}, CareDomain.AUDI: {DeviceKind.HEARING_AID}}
_FIELDS = frozenset(
    {
        "code",
        "domain",
        "label",
        "base_cents",
        "amo_rate_pct",
        "sante_100_class",
        "regulated_price_cents",
        "device_kind",
        "correction",
        "hearing_class",
        "note",
    }
)


@dataclass(frozen=True, slots=True)
class ReferenceAct:
    """A code as the version in force on a day of care sets it."""

    version: str
    effective_from: date
    care_domain: CareDomain
    code: str
    label: str
    base_cents: int  # per unit (BRSS)
    amo_rate_pct: int  # the compulsory scheme's regulated rate
    sante_100_class: Sante100Class | None = None
    regulated_price_cents: int | None = None  # PLV (devices) or HLF (dental fees), per unit
    device_kind: DeviceKind | None = None
    correction: Correction | None = None
    hearing_class: HearingClass | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Nomenclature:
    """A file read and checked whole, not yet loaded."""

    version: str
    effective_from: date
    source: str
    acts: tuple[ReferenceAct, ...]

    @property
    def digest(self) -> str:
        entries = [{k: v for k, v in asdict(a).items() if k not in {"version", "effective_from"}} for a in self.acts]
        document = {"effective_from": self.effective_from.isoformat(), "acts": entries}
        return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class LoadReport:
    version: str
    effective_from: date
    codes: int
    loaded: bool  # False: this version was already loaded with the same entries, nothing changed

    @property
    def message(self) -> str:
        if not self.loaded:
            return f"reference {self.version} is already loaded with these {self.codes} codes: nothing changed"
        return f"reference {self.version} loaded: {self.codes} codes, for care from {self.effective_from.isoformat()}"


# -- reading a file --------------------------------------------------------------------------------


def read_nomenclature(path: Path) -> Nomenclature:
    """The file's header and entries, or ``ValidationFailed`` naming every fault found (line and code)."""
    text = _text(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationFailed(f"{path.name} is not a TOML nomenclature file: {exc}") from None
    problems: list[str] = []
    version, effective_from, source = _header(document, problems)
    acts = _acts(document.get("act"), text, version=version, effective_from=effective_from, problems=problems)
    if problems:
        shown = "; ".join(problems[:_MAX_PROBLEMS])
        more = f" (and {len(problems) - _MAX_PROBLEMS} more)" if len(problems) > _MAX_PROBLEMS else ""
        raise ValidationFailed(f"{path.name} is refused, nothing was loaded: {shown}{more}")
    return Nomenclature(version=version, effective_from=effective_from, source=source, acts=tuple(acts))


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationFailed(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"{path.name} cannot be read: {exc.__class__.__name__}") from None


def _header(document: dict[str, Any], problems: list[str]) -> tuple[str, date, str]:
    version = document.get("version")
    if not (isinstance(version, str) and _VERSION.match(version)):
        problems.append("header: version must be a short name (letters, digits, '.', '_', '-'), e.g. \"2026-01\"")
        version = ""
    effective_from = document.get("effective_from")
    # TOML's datetimes are dates too: only a plain date says "from this day of care".
    if not isinstance(effective_from, date) or isinstance(effective_from, datetime):
        problems.append("header: effective_from must be a date, e.g. 2026-01-01")
        effective_from = date.min
    source = document.get("source", "")
    if not isinstance(source, str):
        problems.append("header: source must be text")
        source = ""
    return version, effective_from, source.strip()


def _acts(entries: object, text: str, *, version: str, effective_from: date, problems: list[str]) -> list[ReferenceAct]:
    if not (isinstance(entries, list) and entries):
        problems.append("the file has no [[act]] entries")
        return []
    # tomllib gives no positions: the n-th "[[act]]" line starts the n-th entry.
    starts = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip() == "[[act]]"]
    seen: dict[tuple[CareDomain, str], str] = {}
    acts: list[ReferenceAct] = []
    for index, entry in enumerate(entries):
        line = f"line {starts[index]}" if len(starts) == len(entries) else f"entry {index + 1}"
        if not isinstance(entry, dict):
            problems.append(f"{line}: an entry must be a table of fields")
            continue
        code = entry.get("code")
        where = f"{line} (code {code!r})" if isinstance(code, str) and code else line
        faults: list[str] = []
        act = _checked(entry, faults, version=version, effective_from=effective_from)
        problems.extend(f"{where}: {fault}" for fault in faults)
        if act is None:
            continue
        key = (act.care_domain, act.code)
        if key in seen:
            problems.append(f"{where}: {act.care_domain.value} {act.code} is already listed at {seen[key]}")
            continue
        seen[key] = line
        acts.append(act)
    return acts


def _checked(entry: dict[str, Any], faults: list[str], *, version: str, effective_from: date) -> ReferenceAct | None:
    """The entry as an act, or None with its faults added to ``faults``."""
    faults.extend(f"unknown field {key!r}" for key in entry if key not in _FIELDS)
    code, label, note = entry.get("code"), entry.get("label"), entry.get("note")
    if not (isinstance(code, str) and _CODE.match(code)):
        faults.append("code must be 1 to 20 capital letters or digits")
    if not (isinstance(label, str) and label.strip() and len(label) <= _MAX_LABEL):
        faults.append(f"label must be text of 1 to {_MAX_LABEL} characters")
    if note is not None and not isinstance(note, str):
        faults.append("note must be text")
    domain = _member(CareDomain, entry.get("domain"), "domain", faults, required=True)
    base = _whole(entry, "base_cents", faults, required=True, message="a whole number of cents, 0 or more")
    rate = _whole(entry, "amo_rate_pct", faults, required=True, top=100, message="a whole percentage, 0 to 100")
    price = _whole(entry, "regulated_price_cents", faults, message="a whole number of cents, 0 or more")
    act = ReferenceAct(
        version=version,
        effective_from=effective_from,
        care_domain=domain or CareDomain.PHAR,  # placeholder: an entry without a domain is refused
        code=code if isinstance(code, str) else "",
        label=label.strip() if isinstance(label, str) else "",
        base_cents=base or 0,
        amo_rate_pct=rate or 0,
        sante_100_class=_member(Sante100Class, entry.get("sante_100_class"), "sante_100_class", faults),
        regulated_price_cents=price,
        device_kind=_member(DeviceKind, entry.get("device_kind"), "device_kind", faults),
        correction=_member(Correction, entry.get("correction"), "correction", faults),
        hearing_class=_member(HearingClass, entry.get("hearing_class"), "hearing_class", faults),
        note=note if isinstance(note, str) else None,
    )
    if domain is not None:
        faults.extend(_rule_faults(act, entry))
    return None if faults else act


def _rule_faults(act: ReferenceAct, entry: dict[str, Any]) -> list[str]:
    """What the regulation's shape forbids: a class outside 100 % Santé, class A without its price..."""
    faults: list[str] = []
    domain, kind = act.care_domain, act.device_kind
    if act.sante_100_class is not None and domain not in SANTE_100_DOMAINS:
        faults.append(f"{domain.value} has no 100 % Santé class")
    if act.sante_100_class is Sante100Class.A and "regulated_price_cents" not in entry:
        faults.append("a class A code needs its regulated price (regulated_price_cents)")
    price = act.regulated_price_cents
    if price is not None and "base_cents" in entry and price < act.base_cents:
        faults.append("regulated_price_cents is below the base")
    kinds = _KINDS.get(domain, set())
    if kinds and "device_kind" not in entry:
        faults.append(f"{domain.value} needs device_kind ({', '.join(sorted(kinds))})")
    elif kind is not None and kind not in kinds:
        faults.append(f"device_kind {kind.value!r} is not one of {domain.value}")
    if (kind is DeviceKind.LENS) != ("correction" in entry):
        faults.append("a lens, and only a lens, has a correction (simple, complex, very_complex)")
    if (kind is DeviceKind.HEARING_AID) != ("hearing_class" in entry):
        faults.append("a hearing aid, and only a hearing aid, has a hearing_class (I or II)")
    return faults


def _whole(
    entry: dict[str, Any],
    field: str,
    faults: list[str],
    *,
    message: str,
    required: bool = False,
    top: int | None = None,
) -> int | None:
    value = entry.get(field)
    if value is None and not required:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0 and (top is None or value <= top):
        return value
    faults.append(f"{field} must be {message}")
    return None


def _member(enum: type[E], value: object, field: str, faults: list[str], *, required: bool = False) -> E | None:
    if value is None and not required:
        return None
    if isinstance(value, str) and value in enum._value2member_map_:
        return enum(value)
    faults.append(f"{field} {value!r} is not one of {', '.join(m.value for m in enum)}")
    return None


# -- loading ---------------------------------------------------------------------------------------


def load(*, session: Session, path: Path | None = None) -> LoadReport:
    """Load ``path`` (default: the shipped file) in the session's transaction.

    The whole file is checked first; a fault refuses it whole. The same version loaded again with
    the same entries changes nothing; with other entries, or on a day another version already
    starts, it is refused (a changed nomenclature is a new version).
    """
    nomenclature = read_nomenclature(path or SHIPPED)
    digest = nomenclature.digest
    report = LoadReport(nomenclature.version, nomenclature.effective_from, len(nomenclature.acts), loaded=True)
    existing = session.get(NomenclatureVersion, nomenclature.version)
    if existing is not None:
        if existing.digest == digest:
            return LoadReport(report.version, report.effective_from, report.codes, loaded=False)
        raise Conflict(
            f"reference {nomenclature.version} is already loaded with other entries: "
            "a changed nomenclature needs a new version"
        )
    same_day = session.scalars(
        select(NomenclatureVersion.version).where(NomenclatureVersion.effective_from == nomenclature.effective_from)
    ).first()
    if same_day is not None:
        raise Conflict(
            f"reference {same_day} already applies from {nomenclature.effective_from.isoformat()}: "
            "a newer version needs a later effective_from"
        )
    session.add(
        NomenclatureVersion(
            version=nomenclature.version,
            effective_from=nomenclature.effective_from,
            source=nomenclature.source,
            digest=digest,
        )
    )
    session.flush()
    session.execute(insert(NomenclatureEntry), [asdict(act) for act in nomenclature.acts])
    return report


# -- looking codes up ------------------------------------------------------------------------------


def _in_force(day: date) -> Any:
    return (
        select(func.max(NomenclatureVersion.effective_from))
        .where(NomenclatureVersion.effective_from <= day)
        .scalar_subquery()
    )


def _act(row: NomenclatureEntry) -> ReferenceAct:
    return ReferenceAct(
        version=row.version,
        effective_from=row.effective_from,
        care_domain=row.care_domain,
        code=row.code,
        label=row.label,
        base_cents=row.base_cents,
        amo_rate_pct=row.amo_rate_pct,
        sante_100_class=row.sante_100_class,
        regulated_price_cents=row.regulated_price_cents,
        device_kind=row.device_kind,
        correction=row.correction,
        hearing_class=row.hearing_class,
        note=row.note,
    )


def acts_on(
    *, session: Session, day: date, keys: Iterable[tuple[CareDomain, str]]
) -> dict[tuple[CareDomain, str], ReferenceAct]:
    """The codes ``keys`` (care domain, code) in the version in force on ``day``, in one query.

    A key missing from the answer is unknown that day: no version in force, or not in it.
    """
    wanted = set(keys)
    if not wanted:
        return {}
    rows = session.scalars(
        select(NomenclatureEntry).where(
            NomenclatureEntry.effective_from == _in_force(day),
            NomenclatureEntry.code.in_({code for _, code in wanted}),
            NomenclatureEntry.care_domain.in_({domain for domain, _ in wanted}),
        )
    )
    found = (_act(row) for row in rows)
    return {(act.care_domain, act.code): act for act in found if (act.care_domain, act.code) in wanted}


def act_on(*, session: Session, care_domain: CareDomain, code: str, day: date) -> ReferenceAct | None:
    """``code`` of ``care_domain`` as the version in force on ``day`` sets it, or None when unknown."""
    return acts_on(session=session, day=day, keys=[(care_domain, code)]).get((care_domain, code))


def acts_with_code(
    *, session: Session, code: str, day: date, care_domain: CareDomain | None = None
) -> list[ReferenceAct]:
    """Every domain's entry for ``code`` in the version in force on ``day`` (for ``reference show``)."""
    query = select(NomenclatureEntry).where(
        NomenclatureEntry.effective_from == _in_force(day), NomenclatureEntry.code == code
    )
    if care_domain is not None:
        query = query.where(NomenclatureEntry.care_domain == care_domain)
    return [_act(row) for row in session.scalars(query.order_by(NomenclatureEntry.care_domain))]


def version_on(*, session: Session, day: date) -> str | None:
    """The version in force on ``day``, if any."""
    return session.scalars(
        select(NomenclatureVersion.version).where(NomenclatureVersion.effective_from == _in_force(day))
    ).first()
