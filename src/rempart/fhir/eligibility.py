"""Rights checks in FHIR R4: ``POST /fhir/CoverageEligibilityRequest`` answers a
``CoverageEligibilityResponse``, through the very service of ``POST /api/v1/rights-checks``.

What the patient hands over at the counter travels in resources contained in the request: the NIR
(``Patient.identifier`` under the INS system), the date of birth and birth rank
(``Patient.birthDate``, ``Patient.multipleBirthInteger``) in the Patient that ``patient`` points to;
the card (member number, AMC number) in the Coverage that ``insurance[0].coverage`` points to. The
care domains are ``item[].category`` codes of Rempart's care-domain code system; no item means every
domain of the professional's profession, as on the native API.

The answer carries coverage only, as the native one does: no identifier of the patient, no name, no
date of birth, not even the member number the request sent. The patient and the cover are named by
``display`` only; the plan (the product code), the validity period and the AMC number are in a
contained Coverage that names nobody. Every miss is the native ``no-matching-rights`` problem, as an
OperationOutcome: the same status and the same bytes whichever field was wrong.

How the native answer reads in FHIR, per care domain (``insurance[0].item[]``):

- ``category``: the domain; ``excluded``: the product does not cover it;
- ``benefit``: ``brss-rate`` (``allowedUnsignedInt``: AMO + AMC as a percentage of the BRSS),
  ``flat-amount`` (``allowedMoney``), HL7's ``benefit`` for the yearly ceiling (``allowedMoney`` the
  ceiling, ``usedMoney`` what is spent of it: the remainder is their difference), ``class-b-ceiling``
  (``allowedMoney``, 100 % Santé free-price equipment, per line);
- ``authorizationRequired``: a prior approval is needed;
- extensions: whether third-party payment applies, and whether 100 % Santé class A is covered;
- ``description``: the formula in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Response
from fhir.resources.R4B.coverageeligibilityrequest import CoverageEligibilityRequest
from fhir.resources.R4B.coverageeligibilityresponse import CoverageEligibilityResponse
from pydantic import ValidationError

from rempart.detection.deps import DetectionDep, GuardedPracticeCaller
from rempart.eligibility.admission import DetectionAdmission, detection_actor
from rempart.eligibility.schemas import RightsCheckIn
from rempart.eligibility.service import DomainRights, RightsAnswer, RightsMiss, RightsQuery, check_rights
from rempart.fhir.codes import BENEFIT_TYPES, CARE_DOMAINS
from rempart.fhir.identifiers import AMC_NUMBER, INS_NIR, MEMBER_NUMBER, RIGHTS_CHECK
from rempart.fhir.parse import FHIR_ROUTER_DEPENDENCIES, FhirResourceInvalid, fhir_body, read_resource
from rempart.identity.context import IdentityDep
from rempart.identity.deps import requires
from rempart.identity.permissions import Permission
from rempart.insurers.models import CareDomain
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.fhir_wire import fhir_response

router = APIRouter(prefix="/fhir", tags=["FHIR"], dependencies=FHIR_ROUTER_DEPENDENCIES)

REQUEST = "CoverageEligibilityRequest"
HL7_BENEFIT_TYPES = "http://terminology.hl7.org/CodeSystem/benefit-type"
EXTENSIONS = "https://rempart.example/fhir/StructureDefinition/"
THIRD_PARTY_PAYMENT = EXTENSIONS + "third-party-payment"
SANTE_100_CLASS_A = EXTENSIONS + "sante-100-class-a"

# The purposes answered: a check of the cover (validation) and of what it pays (benefits); which
# care needs a prior approval comes with them. "discovery" asks to find a patient's cover: Rempart
# never searches, the card is required.
ANSWERED_PURPOSES = frozenset({"benefits", "validation"})
ACCEPTED_PURPOSES = ANSWERED_PURPOSES | {"auth-requirements"}

# Where each field of the native check comes from, for the errors its validation names.
_NATIVE_FIELD_PATHS = {
    "amc_number": "Coverage.payor[0]",
    "member_number": "Coverage.identifier",
    "nir": "Patient.identifier",
    "birth_date": "Patient.birthDate",
    "birth_rank": "Patient.multipleBirthInteger",
    "care_date": f"{REQUEST}.servicedDate",
    "care_domains": f"{REQUEST}.item",
}


# -- reading the request --------------------------------------------------------------------------


@dataclass
class _Reading:
    """A request being read into the native check's fields: what was found, where it came from (for
    the errors the native validation names), and the elements at fault, never the values sent."""

    request: CoverageEligibilityRequest
    fields: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=lambda: dict(_NATIVE_FIELD_PATHS))
    errors: list[dict[str, str]] = field(default_factory=list)

    def fault(self, path: str, reason: str) -> None:
        self.errors.append({"field": path, "reason": reason})

    def found(self, name: str, value: Any, path: str) -> None:
        self.fields[name], self.paths[name] = value, path

    def raise_if_faulty(self) -> None:
        if self.errors:
            raise FhirResourceInvalid(f"{len(self.errors)} element(s) are not valid", extra={"errors": self.errors})

    def contained(self, reference: Any, kind: str) -> tuple[str, Any] | None:
        """The contained resource of type ``kind`` a ``#id`` reference points to, with its path."""
        target = getattr(reference, "reference", None) if reference is not None else None
        if not target or not target.startswith("#"):
            return None
        for index, resource in enumerate(self.request.contained or []):
            if resource.get_resource_type() == kind and resource.id == target[1:]:
                return f"{REQUEST}.contained[{index}]", resource
        return None

    def amc_number(self, reference: Any) -> str | None:
        """The AMC number a reference to the insurer gives: its identifier, or a contained
        Organization's."""
        if reference is None:
            return None
        if reference.identifier is not None and reference.identifier.system == AMC_NUMBER:
            return str(reference.identifier.value or "")
        organization = self.contained(reference, "Organization")
        if organization is not None:
            hit = _identifier(organization[1].identifier, AMC_NUMBER)
            return hit[1] if hit else None
        return None

    def purpose(self) -> None:
        purposes = {str(p) for p in self.request.purpose or []}
        if not purposes & ANSWERED_PURPOSES or purposes - ACCEPTED_PURPOSES:
            self.fault(f"{REQUEST}.purpose", "benefits or validation (Rempart never searches: no discovery)")

    def patient(self) -> None:
        patient = self.contained(self.request.patient, "Patient")
        if patient is None:
            self.fault(f"{REQUEST}.patient", "a reference (#id) to a Patient contained in the request")
            return
        here, resource = patient
        nir = _identifier(resource.identifier, INS_NIR)
        if nir is None:
            self.fault(f"{here}.identifier", f"the NIR under {INS_NIR}")
        else:
            self.found("nir", nir[1], f"{here}.identifier[{nir[0]}].value")
        if not isinstance(resource.birthDate, date):
            self.fault(f"{here}.birthDate", "the full date of birth (YYYY-MM-DD)")
        else:
            self.found("birth_date", resource.birthDate, f"{here}.birthDate")
        if resource.multipleBirthInteger is not None:
            self.found("birth_rank", resource.multipleBirthInteger, f"{here}.multipleBirthInteger")

    def coverage(self) -> None:
        insurance = self.request.insurance or []
        coverage = self.contained(insurance[0].coverage, "Coverage") if len(insurance) == 1 else None
        if coverage is None:
            self.fault(f"{REQUEST}.insurance", "one insurance, its coverage a reference (#id) to a contained Coverage")
            return
        here, resource = coverage
        member = _identifier(resource.identifier, MEMBER_NUMBER)
        if member is not None:
            self.found("member_number", member[1], f"{here}.identifier[{member[0]}].value")
        elif resource.subscriberId:
            self.found("member_number", resource.subscriberId, f"{here}.subscriberId")
        else:
            self.fault(f"{here}.identifier", f"the member number under {MEMBER_NUMBER} (or subscriberId)")
        amc = self.amc_number(resource.payor[0] if resource.payor else None)
        named = self.amc_number(self.request.insurer)
        if amc is None and named is None:
            self.fault(f"{here}.payor[0]", f"the insurer's AMC number under {AMC_NUMBER}")
        elif amc is not None and named is not None and named != amc:
            self.fault(f"{REQUEST}.insurer", "the same insurer as the coverage's payor")
        elif amc is not None:
            self.found("amc_number", amc, f"{here}.payor[0]")
        else:
            self.found("amc_number", named, f"{REQUEST}.insurer")

    def care(self) -> None:
        if self.request.servicedPeriod is not None:
            self.fault(f"{REQUEST}.servicedPeriod", "send the day of care as servicedDate")
        if self.request.servicedDate is not None:
            self.fields["care_date"] = self.request.servicedDate
        domains: list[CareDomain] = []
        for index, item in enumerate(self.request.item or []):
            codings = (item.category.coding or []) if item.category else []
            codes = [str(c.code) for c in codings if c.system == CARE_DOMAINS]
            if len(codes) != 1 or codes[0] not in CareDomain.__members__:
                self.fault(f"{REQUEST}.item[{index}].category", f"one code of {CARE_DOMAINS}")
            else:
                domains.append(CareDomain(codes[0]))
        self.fields["care_domains"] = domains


def _identifier(identifiers: list[Any] | None, system: str) -> tuple[int, str] | None:
    for index, identifier in enumerate(identifiers or []):
        if identifier.system == system and identifier.value:
            return index, str(identifier.value)
    return None


def rights_query(request: CoverageEligibilityRequest) -> RightsQuery:
    """The native rights check a CoverageEligibilityRequest asks for, validated as the native API
    validates it (``RightsCheckIn``), or the 422 that names every element at fault."""
    reading = _Reading(request)
    reading.purpose()
    reading.patient()
    reading.coverage()
    reading.care()
    reading.raise_if_faulty()
    try:
        native = RightsCheckIn.model_validate(reading.fields)
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else ""
            reading.fault(reading.paths.get(name, REQUEST), _native_reason(name, str(error.get("type", ""))))
        reading.raise_if_faulty()
        raise  # pragma: no cover - every error above names a path
    return native.query()


def _native_reason(name: str, kind: str) -> str:
    # What is wrong, never pydantic's message (it can quote the value).
    return {
        "nir": "not a valid NIR (13 characters and a 2-digit key)",
        "amc_number": "an AMC number is 8 to 10 digits",
        "member_number": "a member number is 1 to 20 letters and digits",
        "birth_rank": "a birth rank is 1 to 9",
    }.get(name, kind.replace("_", " ") or "not valid")


# -- writing the answer ---------------------------------------------------------------------------


def _money(cents: int) -> dict[str, Any]:
    return {"value": Decimal(cents).scaleb(-2), "currency": "EUR"}


def _euros(cents: int) -> str:
    return f"{Decimal(cents).scaleb(-2)} €"


def _benefit_type(code: str, system: str = BENEFIT_TYPES) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _item(rights: DomainRights) -> dict[str, Any]:
    category = {"coding": [{"system": CARE_DOMAINS, "code": rights.care_domain.value}]}
    formula = rights.formula
    if not rights.covered or formula is None:
        return {"category": category, "excluded": True, "description": "not covered by the contract"}
    benefits: list[dict[str, Any]] = [
        {"type": _benefit_type("brss-rate"), "allowedUnsignedInt": formula.brss_rate_pct},
        {"type": _benefit_type("flat-amount"), "allowedMoney": _money(formula.flat_amount_cents)},
    ]
    words = f"{formula.brss_rate_pct} % BRSS" + (
        f" + {_euros(formula.flat_amount_cents)}" if formula.flat_amount_cents else ""
    )
    if formula.yearly_ceiling_cents is not None:
        remaining = (
            formula.yearly_ceiling_cents if rights.remaining_ceiling_cents is None else rights.remaining_ceiling_cents
        )
        benefits.append(
            {
                "type": _benefit_type("benefit", HL7_BENEFIT_TYPES),
                "allowedMoney": _money(formula.yearly_ceiling_cents),
                "usedMoney": _money(formula.yearly_ceiling_cents - remaining),
            }
        )
        words += f", yearly ceiling {_euros(formula.yearly_ceiling_cents)} ({_euros(remaining)} left)"
    if formula.class_b_ceiling_cents is not None:
        benefits.append(
            {"type": _benefit_type("class-b-ceiling"), "allowedMoney": _money(formula.class_b_ceiling_cents)}
        )
        words += f", 100 % Santé class B up to {_euros(formula.class_b_ceiling_cents)} a line"
    if formula.sante_100_class_a:
        words += ", 100 % Santé class A without remainder"
    return {
        "extension": [
            {"url": THIRD_PARTY_PAYMENT, "valueBoolean": rights.third_party_payment},
            {"url": SANTE_100_CLASS_A, "valueBoolean": formula.sante_100_class_a},
        ],
        "category": category,
        "excluded": False,
        "description": words,
        "term": _benefit_type("annual", "http://terminology.hl7.org/CodeSystem/benefit-term"),
        "unit": _benefit_type("individual", "http://terminology.hl7.org/CodeSystem/benefit-unit"),
        "benefit": benefits,
        "authorizationRequired": rights.prior_approval_required,
    }


def eligibility_response(request: CoverageEligibilityRequest, answer: RightsAnswer) -> CoverageEligibilityResponse:
    """The native answer as a CoverageEligibilityResponse: coverage only, nobody's identity."""
    insurer = {"identifier": {"system": AMC_NUMBER, "value": answer.amc_number}}
    period: dict[str, Any] = {"start": answer.valid_from}
    if answer.valid_to is not None:
        period["end"] = answer.valid_to
    patient = {"display": "the patient of the request"}
    # The request is not stored: it is named by the identifier its sender gave it, if any.
    asked = {"identifier": request.identifier[0].model_dump(exclude_none=True)} if request.identifier else {}
    return CoverageEligibilityResponse.model_validate(
        {
            "resourceType": "CoverageEligibilityResponse",
            "contained": [
                {
                    "resourceType": "Coverage",
                    "id": "coverage",
                    "status": "active",
                    "beneficiary": patient,
                    "period": period,
                    "payor": [insurer],
                    "class": [
                        {
                            "type": _benefit_type("plan", "http://terminology.hl7.org/CodeSystem/coverage-class"),
                            "value": answer.product_code,
                        }
                    ],
                }
            ],
            "identifier": [
                {"system": RIGHTS_CHECK, "value": str(answer.check_id), "period": {"end": answer.expires_at}}
            ],
            "status": "active",
            "purpose": [str(p) for p in request.purpose or []],
            "patient": patient,
            "servicedDate": answer.care_date,
            "created": answer.created_at,
            "request": {**asked, "display": "the CoverageEligibilityRequest answered"},
            "outcome": "complete",
            "disposition": "Covered on the date of care"
            if answer.covered
            else "Not covered for these care domains on the date of care",
            "insurer": insurer,
            "insurance": [
                {
                    "coverage": {"reference": "#coverage"},
                    "inforce": answer.covered,
                    "benefitPeriod": period,
                    "item": [_item(d) for d in answer.domains],
                }
            ],
        }
    )


# -- the route ------------------------------------------------------------------------------------


@router.post(
    "/CoverageEligibilityRequest",
    dependencies=[requires(Permission.CARE_RIGHTS_CHECK_CREATE)],
    summary="Rights check (CoverageEligibilityRequest → CoverageEligibilityResponse)",
    responses={
        200: {"content": {"application/fhir+json": {}}, "description": "a CoverageEligibilityResponse"},
        404: {"description": "No rights match: the same OperationOutcome whichever field was wrong"},
        422: {"description": "an OperationOutcome naming the FHIRPath of every element at fault"},
    },
)
def create_coverage_eligibility_request(
    *,
    body: bytes = Depends(fhir_body),
    caller: GuardedPracticeCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
    detection: DetectionDep,
) -> Response:
    """The native rights check, asked and answered in FHIR R4."""
    request = read_resource(body, CoverageEligibilityRequest)
    outcome = check_rights(
        session=session,
        keys=runtime.keys,
        caller=caller,
        query=rights_query(request),
        now=identity.clock(),
        admission=DetectionAdmission(detection, detection_actor(caller)),
    )
    if isinstance(outcome, RightsMiss):
        raise outcome.error
    return fhir_response(eligibility_response(request, outcome))
