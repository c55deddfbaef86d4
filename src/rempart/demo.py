"""``rempart demo``: a working Rempart on a laptop, with a synthetic population to try.

Creates the database and keys, three insurers with their products, N synthetic members imported
through the same importer an insurer uses, and ``var/demo.json`` with patients a professional can
check (card, NIR, date of birth) and whatever other domains contribute (practice-software client
credentials, enrolment links).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from itertools import islice
from typing import Any

from sqlalchemy import select

from rempart.db import utcnow
from rempart.insurers.models import CareDomain, Insurer
from rempart.insurers.service import GuaranteeSpec, create_insurer, create_product, products_by_code
from rempart.members.importer import ImportReport, import_members
from rempart.members.models import BeneficiaryRole
from rempart.members.synth import synth_members, write_members_file
from rempart.protection.kek import write_private
from rempart.reference.service import load as load_reference
from rempart.runtime import Runtime


@dataclass(frozen=True)
class DemoInsurer:
    amc_number: str
    name: str
    share: float  # of the demo's members


DEMO_INSURERS = (
    DemoInsurer("88450101", "Mutuelle des Remparts", 0.5),
    DemoInsurer("77120345", "Prévoyance Vauban", 0.3),
    DemoInsurer("66310988", "Assurance Bastide", 0.2),
)

# Three levels of cover, as French guarantee tables write them (total AMO + AMC as % of BRSS).
PRODUCTS: dict[str, tuple[str, int, int, int]] = {
    # code: (name, % BRSS, optics/hearing flat amount in cents, yearly optics ceiling in cents)
    "ESSENTIEL": ("Essentiel (contrat responsable)", 100, 0, 10_000),
    "CONFORT": ("Confort", 200, 15_000, 30_000),
    "PREMIUM": ("Premium", 300, 30_000, 60_000),
}
# And one low-cost product that is not a "contrat responsable" (taxed more, no 100 % Santé class A
# in full), per insurer. Apart from PRODUCTS, which the tests' factories create and draw members on.
NON_RESPONSIBLE_PRODUCTS: dict[str, tuple[str, int, int, int]] = {
    "ESSENTIEL-NR": ("Essentiel NR (non responsable)", 100, 0, 5_000),
}
# The codes the demo's synthetic members are drawn on.
DEMO_PRODUCT_CODES = [*PRODUCTS, *NON_RESPONSIBLE_PRODUCTS]


def product_guarantees(rate: int, flat: int, optics_ceiling: int, *, responsible: bool = True) -> list[GuaranteeSpec]:
    """A demo product's formulas; a responsible one covers 100 % Santé class A in optics, hearing
    aids and dental care, a non-responsible one leaves class A to the formula's rate and ceiling."""
    specs = []
    for domain in CareDomain:
        if domain in (CareDomain.OPTI, CareDomain.AUDI):
            specs.append(
                GuaranteeSpec(
                    domain,
                    brss_rate_pct=rate,
                    flat_amount_cents=flat,
                    yearly_ceiling_cents=optics_ceiling if domain is CareDomain.OPTI else optics_ceiling * 3,
                    sante_100_class_a=responsible,
                    class_b_ceiling_cents=optics_ceiling,
                    prior_approval_required=True,
                )
            )
        elif domain in (CareDomain.DENT, CareDomain.HOSP):
            specs.append(
                GuaranteeSpec(
                    domain,
                    brss_rate_pct=rate,
                    yearly_ceiling_cents=optics_ceiling * 2,
                    sante_100_class_a=responsible and domain is CareDomain.DENT,
                    prior_approval_required=True,
                )
            )
        else:
            specs.append(GuaranteeSpec(domain, brss_rate_pct=100 if domain is CareDomain.PHAR else rate))
    return specs


def seed_insurers(runtime: Runtime) -> list[Insurer]:
    """The demo's insurers and products; existing ones are kept as they are, and a product the demo
    added since (the non-responsible one) is added to an insurer of an earlier demo."""
    insurers = []
    tables = [(PRODUCTS, True), (NON_RESPONSIBLE_PRODUCTS, False)]
    with runtime.sessions.begin() as session:
        for spec in DEMO_INSURERS:
            insurer = session.scalar(select(Insurer).where(Insurer.amc_number == spec.amc_number))
            if insurer is None:
                insurer = create_insurer(session=session, keys=runtime.keys, amc_number=spec.amc_number, name=spec.name)
            existing = products_by_code(session, insurer.id)
            for table, responsible in tables:
                for code, (name, rate, flat, ceiling) in table.items():
                    if code in existing:
                        continue
                    create_product(
                        session=session,
                        insurer_id=insurer.id,
                        code=code,
                        name=name,
                        guarantees=product_guarantees(rate, flat, ceiling, responsible=responsible),
                        responsible=responsible,
                    )
            insurers.append(insurer)
    return insurers


# Other domains add to var/demo.json: each contributor receives the runtime and the document.
DemoContributor = Callable[[Runtime, dict[str, Any]], None]
CONTRIBUTORS: list[DemoContributor] = []


def _identity(runtime: Runtime, doc: dict[str, Any]) -> None:
    from rempart.identity.demo import contribute  # loaded when the demo runs, not with every command

    contribute(runtime, doc)


CONTRIBUTORS.append(_identity)


def build_demo(
    *,
    runtime: Runtime,
    members: int,
    seed: int = 2024,
    on_import: Callable[[str, ImportReport], None] | None = None,
) -> dict[str, Any]:
    var = runtime.settings.var_dir
    seed_insurers(runtime)
    with runtime.sessions.begin() as session:
        load_reference(session=session)  # the shipped nomenclature: quotes and claims check codes against it
    today = utcnow().date()
    doc: dict[str, Any] = {"url": runtime.settings.public_origin, "insurers": [], "patients": []}
    first = 1
    for index, spec in enumerate(DEMO_INSURERS):
        count = max(1, round(members * spec.share)) if index < len(DEMO_INSURERS) - 1 else max(1, members - first + 1)
        path = var / "demo" / f"members-{spec.amc_number}.csv"
        write_members_file(
            path,
            synth_members(
                count=count, seed=seed + index, product_codes=DEMO_PRODUCT_CODES, today=today, first_number=first
            ),
        )
        report = import_members(runtime=runtime, path=path, amc_number=spec.amc_number)
        if on_import:
            on_import(spec.amc_number, report)
        doc["insurers"].append({"amc_number": spec.amc_number, "name": spec.name, "members": count})
        doc["patients"].extend(
            _sample_patients(spec.amc_number, seed + index, today=today, first_number=first, count=count)
        )
        first += count
    for contribute in CONTRIBUTORS:
        contribute(runtime, doc)
    write_private(var / "demo.json", json.dumps(doc, indent=2, ensure_ascii=False))
    return doc


def _sample_patients(amc: str, seed: int, *, today: date, first_number: int, count: int) -> list[dict[str, Any]]:
    """A few patients of each kind a professional meets: adults, a child on a parent's NIR, twins."""
    picked: list[dict[str, Any]] = []
    kinds_seen: set[str] = set()
    records = synth_members(
        count=min(count, 300), seed=seed, product_codes=DEMO_PRODUCT_CODES, today=today, first_number=first_number
    )
    for record in islice(records, 5000):
        if record.contract_end is not None and record.contract_end < today:
            continue
        kind = record.role.value
        if record.role is BeneficiaryRole.CHILD and record.birth_rank == 2:
            kind = "twin"
        elif record.role is BeneficiaryRole.CHILD and record.nir[1:3] != f"{record.birth_date.year % 100:02d}":
            kind = "child-on-parent-nir"
        if kind in kinds_seen and len(picked) >= 3:
            continue
        kinds_seen.add(kind)
        picked.append(
            {
                "kind": kind,
                "card": {"amc_number": amc, "member_number": record.member_number},
                "nir": record.nir,
                "birth_date": record.birth_date.isoformat(),
                "birth_rank": record.birth_rank,
            }
        )
        if len(kinds_seen) >= 5:
            break
    return picked
