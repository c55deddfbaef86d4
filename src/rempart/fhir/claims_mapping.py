"""Claim → native request, native answer → ClaimResponse: pure translation, no database, no request.

A ``Claim`` reads onto the native API's own request bodies (``ClaimIn``, ``PriorApprovalIn``,
``QuoteIn``) as plain dicts, each value remembering the FHIRPath it came from, so that the native
schema's validation speaks in the client's paths (``Claim.item[0].unitPrice``). The answers are the
native claims', approvals' and quotes' fields in R4 ClaimResponse elements; no patient identity is
ever written: the patient is a reference that names nobody.

| FHIR                                                        | native                                  |
|-------------------------------------------------------------|-----------------------------------------|
| Claim.use claim / preauthorization / predetermination       | claim / prior approval / quote          |
| Claim.supportingInfo[category=rights-check].valueReference  | check_id (CoverageEligibilityResponse   |
|   .identifier (system rights-check)                         |   identifier, as the eligibility answer)|
| Claim.supportingInfo[category=offline-attestation].valueString | attestation (claims only)            |
| Claim.insurance[focal].preAuthRef[0]                        | approval_number (claims only)           |
| Claim.provider (Practitioner/RPPS or Organization/FINESS)   | the acting professional / the practice  |
| Claim.item[i].sequence                                      | line_no (i + 1)                         |
| Claim.item[i].category (care-domain)                        | care_domain                             |
| Claim.item[i].productOrService                              | act_code                                |
| Claim.item[i].servicedDate                                  | care_date                               |
| Claim.item[i].quantity / unitPrice / net                    | quantity / unit_price_cents / (check)   |
| Claim.item[i].extension reimbursement-base (Money)          | brss_cents                              |
| Claim.item[i].extension amo-rate (unsignedInt, %)           | amo_rate_pct                            |
| Claim.item[i].extension sante-100-class (code A/B)          | sante_100_class                         |
| Claim.item[i].extension regulated-price (Money)             | regulated_price_cents                   |
| ClaimResponse.item.adjudication submitted / eligible        | price / BRSS × quantity                 |
|   amo (Rempart's) / benefit / copay                         | AMO share / insurer share (granted) /   |
|                                                             |   remainder                             |
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fhir.resources.R4B.claim import Claim as FhirClaim
from fhir.resources.R4B.claimresponse import ClaimResponse

from rempart.approvals.models import ApprovalStatus, PriorApproval
from rempart.claims.models import Claim, ClaimReason, ClaimStatus
from rempart.fhir.codes import (
    ADJUDICATION,
    APPROVAL_REASONS,
    CARE_DOMAINS,
    CLAIM_REASONS,
    REVIEW_REASONS,
    SUPPORTING_INFO,
    Adjudication,
    SupportingInfo,
)
from rempart.fhir.identifiers import CLAIM, FINESS, PRIOR_APPROVAL, RIGHTS_CHECK, RPPS
from rempart.insurers.models import CareDomain
from rempart.pricing.engine import CareLine, Limit
from rempart.pricing.service import QuoteResult

# The care domain of a line (the eligibility resources use the same system).
CARE_DOMAIN = CARE_DOMAINS
# Claim.supportingInfo.category: what a supporting information is.
RIGHTS_CHECK_INFO = SupportingInfo.RIGHTS_CHECK.value
ATTESTATION_INFO = SupportingInfo.OFFLINE_ATTESTATION.value
# Rempart's adjudication categories beside HL7's: the compulsory scheme's share has no HL7 code.
HL7_ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"

STRUCTURE = "https://rempart.example/fhir/StructureDefinition/"
EXT_REIMBURSEMENT_BASE = STRUCTURE + "reimbursement-base"  # BRSS per unit (Money)
EXT_AMO_RATE = STRUCTURE + "amo-rate"  # % of the BRSS the compulsory scheme pays (unsignedInt)
EXT_SANTE_100_CLASS = STRUCTURE + "sante-100-class"  # A or B (code)
EXT_REGULATED_PRICE = STRUCTURE + "regulated-price"  # regulated price per unit, PLV/HLF (Money)
EXT_LIMITED_BY = STRUCTURE + "limited-by"  # what capped the insurer's share of a line (code)
EXT_OVER_REGULATED_PRICE = STRUCTURE + "over-regulated-price"  # boolean, quotes
EXT_CEILING_CONSUMED = STRUCTURE + "ceiling-consumed"  # Money, quotes
EXT_STATUS = STRUCTURE + "rempart-status"  # the native status of the claim or approval (code)
EXT_UNDER_ATTESTATION = STRUCTURE + "under-attestation"  # boolean
EXT_YEARLY_CEILING = STRUCTURE + "yearly-ceiling"  # complex, quotes: one per ceiling touched

# A patient is never named in an answer: this reference says whose claim it is without saying who.
PATIENT = {"type": "Patient", "display": "the patient of the rights check"}
INSURER = {"type": "Organization", "display": "the complementary insurer (AMC) of the rights check"}

_CLAIM_TYPE = {
    CareDomain.PHAR: "pharmacy",
    CareDomain.OPTI: "vision",
    CareDomain.DENT: "oral",
    CareDomain.HOSP: "institutional",
}

# Where each field of a native line comes from in ``Claim.item[i]``.
_LINE_PATHS = {
    "care_domain": "category",
    "act_code": "productOrService",
    "care_date": "servicedDate",
    "quantity": "quantity",
    "unit_price_cents": "unitPrice",
    "brss_cents": f"extension('{EXT_REIMBURSEMENT_BASE}')",
    "amo_rate_pct": f"extension('{EXT_AMO_RATE}')",
    "sante_100_class": f"extension('{EXT_SANTE_100_CLASS}')",
    "regulated_price_cents": f"extension('{EXT_REGULATED_PRICE}')",
}
_TOP_PATHS = {
    "check_id": "Claim.supportingInfo",
    "attestation": "Claim.supportingInfo",
    "approval_number": "Claim.insurance.preAuthRef",
    "care_domain": "Claim.item[0].category",
    "lines": "Claim.item",
}


@dataclass
class Translation:
    """A Claim read onto a native request body, or the elements at fault."""

    use: str
    body: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    provider_rpps: str | None = None
    provider_finess: str | None = None

    def fault(self, path: str, reason: str) -> None:
        self.errors.append({"field": path, "reason": reason})


def native_path(location: Sequence[Any]) -> str:
    """A native schema's error location as the FHIRPath its value came from."""
    if len(location) >= 2 and location[0] == "lines" and isinstance(location[1], int):
        index = location[1]
        element = _LINE_PATHS.get(str(location[2]), "") if len(location) > 2 else ""
        return f"Claim.item[{index}]" + (f".{element}" if element else "")
    return _TOP_PATHS.get(str(location[0]), "Claim") if location else "Claim"


# -- Claim → native ---------------------------------------------------------------------------------


def _codes(concept: Any) -> list[tuple[str | None, str]]:
    return [(c.system, c.code) for c in (getattr(concept, "coding", None) or []) if c.code]


def _cents(money: Any, path: str, into: Translation) -> int | None:
    if money is None or money.value is None:
        into.fault(path, "required")
        return None
    if money.currency not in (None, "EUR"):
        into.fault(path, "amounts are in EUR")
        return None
    try:
        cents = Decimal(money.value) * 100
    except InvalidOperation:
        into.fault(path, "not a valid value")
        return None
    if cents != cents.to_integral_value():
        into.fault(path, "at most two decimals (cents)")
        return None
    return int(cents)


def _extension(element: Any, url: str) -> Any | None:
    found = [e for e in (element.extension or []) if e.url == url]
    return found[0] if found else None


def _line(item: Any, index: int, into: Translation) -> dict[str, Any]:
    """``Claim.item[index]`` as a native line of care (``CareLineIn``'s fields)."""
    path = f"Claim.item[{index}]"
    line: dict[str, Any] = {}
    if item.sequence != index + 1:
        into.fault(f"{path}.sequence", "items are numbered 1, 2, 3… in their order")
    domains = [code for system, code in _codes(item.category) if system == CARE_DOMAIN]
    products = _codes(item.productOrService)
    for key, value, element, reason in (
        ("care_domain", domains[0] if domains else None, "category", f"a care domain under {CARE_DOMAIN}"),
        ("act_code", products[0][1] if products else None, "productOrService", "the act, device or medicine code"),
        ("care_date", item.servicedDate, "servicedDate", "the date of care"),
    ):
        if value is None:
            into.fault(f"{path}.{element}", reason)
        else:
            line[key] = value
    if item.quantity is not None:
        if item.quantity.value is None or item.quantity.value != item.quantity.value.to_integral_value():
            into.fault(f"{path}.quantity", "a whole number of units")
        else:
            line["quantity"] = int(item.quantity.value)
    return {**line, **_prices(item, path, line.get("quantity", 1), into)}


def _prices(item: Any, path: str, quantity: int, into: Translation) -> dict[str, Any]:
    """The line's prices: unit price (and net, checked), reimbursement base, AMO rate, 100 % Santé."""
    prices: dict[str, Any] = {}
    unit = _cents(item.unitPrice, f"{path}.unitPrice", into)
    if unit is not None:
        prices["unit_price_cents"] = unit
    if item.net is not None:
        net = _cents(item.net, f"{path}.net", into)
        if unit is not None and net is not None and net != unit * quantity:
            into.fault(f"{path}.net", "the net is the unit price times the quantity")
    for key, url, required in (
        ("brss_cents", EXT_REIMBURSEMENT_BASE, True),
        ("regulated_price_cents", EXT_REGULATED_PRICE, False),
    ):
        found = _extension(item, url)
        if found is None:
            if required:
                into.fault(f"{path}.{_LINE_PATHS[key]}", "required (valueMoney)")
            continue
        cents = _cents(found.valueMoney, f"{path}.{_LINE_PATHS[key]}.valueMoney", into)
        if cents is not None:
            prices[key] = cents
    rate = _extension(item, EXT_AMO_RATE)
    if rate is None or rate.valueUnsignedInt is None:
        into.fault(f"{path}.{_LINE_PATHS['amo_rate_pct']}", "required (valueUnsignedInt, a percentage)")
    else:
        prices["amo_rate_pct"] = rate.valueUnsignedInt
    sante = _extension(item, EXT_SANTE_100_CLASS)
    if sante is not None:
        prices["sante_100_class"] = sante.valueCode
    return prices


def _supporting(claim: FhirClaim, into: Translation) -> None:
    for index, info in enumerate(claim.supportingInfo or []):
        kinds = {code for system, code in _codes(info.category) if system == SUPPORTING_INFO}
        path = f"Claim.supportingInfo[{index}]"
        if RIGHTS_CHECK_INFO in kinds:
            identifier = info.valueReference.identifier if info.valueReference is not None else None
            if identifier is None or identifier.system != RIGHTS_CHECK or not identifier.value:
                into.fault(
                    f"{path}.valueReference", f"the CoverageEligibilityResponse's identifier under {RIGHTS_CHECK}"
                )
                continue
            try:
                into.body["check_id"] = str(uuid.UUID(identifier.value))
            except ValueError:
                into.fault(f"{path}.valueReference.identifier.value", "a rights check id")
        elif ATTESTATION_INFO in kinds:
            if not info.valueString:
                into.fault(f"{path}.valueString", "the attestation as read from its QR code")
            else:
                into.body["attestation"] = info.valueString


def _provider(claim: FhirClaim, into: Translation) -> None:
    reference = claim.provider
    if reference is None:  # ``null`` passes the model's check of a required element
        into.fault("Claim.provider", "required")
        return
    identifiers = [reference.identifier] if reference.identifier is not None else []
    if reference.reference and reference.reference.startswith("#"):
        for resource in claim.contained or []:
            if resource.id == reference.reference[1:]:
                identifiers += list(getattr(resource, "identifier", None) or [])
    for identifier in identifiers:
        if identifier.system == RPPS and identifier.value:
            into.provider_rpps = identifier.value
        elif identifier.system == FINESS and identifier.value:
            into.provider_finess = identifier.value
    if into.provider_rpps is None and into.provider_finess is None:
        into.fault("Claim.provider", f"the acting professional by RPPS ({RPPS}) or the practice by FINESS ({FINESS})")


def translate(claim: FhirClaim) -> Translation:
    """The Claim as the native body of its ``use``; ``errors`` lists every element at fault."""
    into = Translation(use=str(claim.use))
    if into.use not in ("claim", "preauthorization", "predetermination"):
        into.fault("Claim.use", "claim, preauthorization or predetermination")
    _provider(claim, into)
    _supporting(claim, into)
    if "check_id" not in into.body and "attestation" not in into.body:
        into.fault(
            "Claim.supportingInfo",
            f"cite the rights check: category {RIGHTS_CHECK_INFO} ({SUPPORTING_INFO}), valueReference.identifier",
        )
    if not claim.item:
        into.fault("Claim.item", "at least one line of care")
    lines = [_line(item, index, into) for index, item in enumerate(claim.item or [])]
    into.body["lines"] = lines
    numbers = [ref for insurance in claim.insurance or [] for ref in insurance.preAuthRef or []]
    if into.use == "claim":
        if numbers:
            into.body["approval_number"] = numbers[0]
    elif "attestation" in into.body:
        into.fault("Claim.supportingInfo", "a quote or a prior approval cites a rights check, not an attestation")
    if into.use == "preauthorization" and lines:
        into.body["care_domain"] = lines[0].get("care_domain")
    return into


# -- native → ClaimResponse -----------------------------------------------------------------------


def money(cents: int) -> dict[str, Any]:
    return {"value": Decimal(cents).scaleb(-2), "currency": "EUR"}


def _category(code: str, system: str = HL7_ADJUDICATION) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _adjudication(*, price: int, amo: int, insurer: int, remainder: int, eligible: int | None) -> list[dict[str, Any]]:
    entries = [{"category": _category("submitted"), "amount": money(price)}]
    if eligible is not None:
        entries.append({"category": _category("eligible"), "amount": money(eligible)})
    entries += [
        {"category": _category(Adjudication.AMO.value, ADJUDICATION), "amount": money(amo)},
        {"category": _category("benefit"), "amount": money(insurer)},
        {"category": _category("copay"), "amount": money(remainder)},
    ]
    return entries


def _coded(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _line_extensions(limited_by: Limit | None) -> list[dict[str, Any]]:
    return [{"url": EXT_LIMITED_BY, "valueCode": limited_by.value}] if limited_by else []


def _type(domains: Iterable[CareDomain]) -> dict[str, Any]:
    kinds = {_CLAIM_TYPE.get(domain, "professional") for domain in domains}
    return _coded(CLAIM_TYPE, kinds.pop() if len(kinds) == 1 else "professional")


def _resource(data: dict[str, Any]) -> ClaimResponse:
    return ClaimResponse.model_validate({"resourceType": "ClaimResponse", **data})


_CLAIM_OUTCOME = {
    ClaimStatus.RECEIVED: "queued",
    ClaimStatus.PENDING_REVIEW: "queued",
    ClaimStatus.ACCEPTED: "complete",
    ClaimStatus.PAID: "complete",
    ClaimStatus.REJECTED: "error",
}
_CLAIM_DISPOSITION = {
    ClaimStatus.RECEIVED: "received",
    ClaimStatus.ACCEPTED: "accepted",
    ClaimStatus.REJECTED: "rejected",
    ClaimStatus.PENDING_REVIEW: "pending: a claims agent of the insurer reviews it",
    ClaimStatus.PAID: "paid",
    ClaimStatus.CANCELLED: "cancelled",
    ClaimStatus.SUPERSEDED: "superseded by a corrected claim",
}


def _claim_outcome(claim: Claim) -> str:
    if claim.status in _CLAIM_OUTCOME:
        return _CLAIM_OUTCOME[claim.status]
    # Closed: the adjudication was complete, or had failed with a reason.
    failed = claim.reason_code is not None and claim.reason_code is not ClaimReason.MANUAL_REVIEW
    return "error" if failed else "complete"


def claim_response(claim: Claim, *, review_comment: str | None = None) -> ClaimResponse:
    """A claim as the practice's software reads it: the native ``ClaimOut``'s fields."""
    lines = list(claim.lines)
    disposition = _CLAIM_DISPOSITION[claim.status]
    if claim.reason_code is not None:
        disposition += f" ({claim.reason_code.value})"
    header: dict[str, Any] = {"category": _category("benefit"), "amount": money(claim.insurer_cents)}
    if claim.reason_code is not None:
        header["reason"] = _coded(CLAIM_REASONS, claim.reason_code.value)
    errors = []
    if claim.status is ClaimStatus.REJECTED and claim.reason_code is not None:
        errors.append({"code": _coded(CLAIM_REASONS, claim.reason_code.value)})
    if claim.review_reason is not None:
        errors.append({"code": _coded(REVIEW_REASONS, claim.review_reason.value)})
    data: dict[str, Any] = {
        "id": str(claim.id),
        "extension": [
            {"url": EXT_STATUS, "valueCode": claim.status.value},
            {"url": EXT_UNDER_ATTESTATION, "valueBoolean": claim.attestation_id is not None},
        ],
        "identifier": [{"system": CLAIM, "value": str(claim.id)}],
        "status": "cancelled" if claim.status in (ClaimStatus.CANCELLED, ClaimStatus.SUPERSEDED) else "active",
        "type": _type(line.care_domain for line in lines),
        "use": "claim",
        "patient": PATIENT,
        "created": claim.created_at.isoformat(),
        "insurer": INSURER,
        "request": {"type": "Claim", "identifier": {"system": CLAIM, "value": str(claim.id)}},
        "outcome": _claim_outcome(claim),
        "disposition": disposition,
        "item": [
            {
                "itemSequence": line.line_no,
                "extension": _line_extensions(line.limited_by) or None,
                "adjudication": _adjudication(
                    price=line.price_cents,
                    amo=line.amo_cents,
                    insurer=line.insurer_cents,
                    remainder=line.remainder_cents,
                    eligible=line.brss_cents * line.quantity,
                ),
            }
            for line in lines
        ],
        "adjudication": [header],
        "total": _adjudication(
            price=claim.price_cents,
            amo=claim.amo_cents,
            insurer=claim.insurer_cents,
            remainder=claim.remainder_cents,
            eligible=None,
        ),
        "error": errors or None,
    }
    if claim.paid_at is not None:
        data["payment"] = {
            "type": _coded("http://terminology.hl7.org/CodeSystem/ex-paymenttype", "complete"),
            "date": claim.paid_at.date().isoformat(),
            "amount": money(claim.insurer_cents),
        }
    if review_comment is not None:
        data["processNote"] = [{"number": 1, "type": "display", "text": review_comment}]
    return _resource(data)


_APPROVAL_OUTCOME = {
    ApprovalStatus.GRANTED: "complete",
    ApprovalStatus.PARTIALLY_GRANTED: "partial",
    ApprovalStatus.REFUSED: "error",
    ApprovalStatus.PENDING: "queued",
    ApprovalStatus.CANCELLED: "complete",
}


def approval_response(approval: PriorApproval) -> ClaimResponse:
    """A prior approval: its number as ``preAuthRef``, its validity as ``preAuthPeriod``."""
    lines = list(approval.lines)
    header: dict[str, Any] = {"category": _category("benefit"), "amount": money(approval.granted_cents)}
    disposition = approval.status.value.replace("_", " ")
    if approval.reason_code is not None:
        header["reason"] = _coded(APPROVAL_REASONS, approval.reason_code.value)
        disposition += f" ({approval.reason_code.value})"
    decided = approval.decided_at or approval.created_at
    data: dict[str, Any] = {
        "id": str(approval.id),
        "extension": [{"url": EXT_STATUS, "valueCode": approval.status.value}],
        "identifier": [{"system": PRIOR_APPROVAL, "value": str(approval.id)}],
        "status": "cancelled" if approval.status is ApprovalStatus.CANCELLED else "active",
        "type": _type([approval.care_domain]),
        "use": "preauthorization",
        "patient": PATIENT,
        "created": approval.created_at.isoformat(),
        "insurer": INSURER,
        "request": {"type": "Claim", "identifier": {"system": PRIOR_APPROVAL, "value": str(approval.id)}},
        "outcome": _APPROVAL_OUTCOME[approval.status],
        "disposition": disposition,
        "preAuthRef": approval.approval_number,
        "preAuthPeriod": {"start": decided.date().isoformat(), "end": approval.expires_on.isoformat()},
        "item": [
            {
                "itemSequence": line.line_no,
                "extension": _line_extensions(line.limited_by) or None,
                "adjudication": _adjudication(
                    price=line.price_cents,
                    amo=line.amo_cents,
                    insurer=line.granted_cents,
                    remainder=line.remainder_cents,
                    eligible=line.brss_cents * line.quantity,
                ),
            }
            for line in lines
        ],
        "adjudication": [header],
        "total": [
            *_adjudication(
                price=sum(line.price_cents for line in lines),
                amo=sum(line.amo_cents for line in lines),
                insurer=approval.granted_cents,
                remainder=sum(line.remainder_cents for line in lines),
                eligible=None,
            ),
            {
                "category": _category(Adjudication.REQUESTED.value, ADJUDICATION),
                "amount": money(approval.requested_cents),
            },
        ],
    }
    if approval.status is ApprovalStatus.REFUSED and approval.reason_code is not None:
        data["error"] = [{"code": _coded(APPROVAL_REASONS, approval.reason_code.value)}]
    return _resource(data)


def quote_response(result: QuoteResult, lines: Sequence[CareLine], *, now: datetime) -> ClaimResponse:
    """A quote (predetermination): the split of each line and the yearly ceilings it would consume.
    Nothing is stored, so it has no id and cannot be read again."""
    quote = result.quote
    consumed = quote.consumed()
    ceilings = []
    for key, (ceiling, used) in sorted(result.ceilings.items(), key=lambda i: (i[0].care_domain, i[0].year)):
        before = max(0, ceiling - used)
        ceilings.append(
            {
                "url": EXT_YEARLY_CEILING,
                "extension": [
                    {"url": "careDomain", "valueCoding": {"system": CARE_DOMAIN, "code": key.care_domain.value}},
                    {"url": "year", "valueInteger": key.year},
                    {"url": "ceiling", "valueMoney": money(ceiling)},
                    {"url": "remainingBefore", "valueMoney": money(before)},
                    {"url": "consumed", "valueMoney": money(consumed.get(key, 0))},
                    {"url": "remainingAfter", "valueMoney": money(quote.remaining_after.get(key, before))},
                ],
            }
        )
    data: dict[str, Any] = {
        "extension": ceilings or None,
        "status": "active",
        "type": _type(line.care_domain for line in lines),
        "use": "predetermination",
        "patient": PATIENT,
        "created": now.isoformat(),
        "insurer": INSURER,
        "outcome": "complete",
        "disposition": "quote: nothing is committed",
        "item": [
            {
                "itemSequence": number,
                "extension": [
                    *_line_extensions(priced.limited_by),
                    {"url": EXT_CEILING_CONSUMED, "valueMoney": money(priced.ceiling_consumed_cents)},
                    {"url": EXT_OVER_REGULATED_PRICE, "valueBoolean": priced.over_regulated_price},
                ],
                "adjudication": _adjudication(
                    price=priced.price_cents,
                    amo=priced.amo_cents,
                    insurer=priced.insurer_cents,
                    remainder=priced.remainder_cents,
                    eligible=line.brss_cents * line.quantity,
                ),
            }
            for number, (line, priced) in enumerate(zip(lines, quote.lines, strict=True), start=1)
        ],
        "total": _adjudication(
            price=quote.price_cents,
            amo=quote.amo_cents,
            insurer=quote.insurer_cents,
            remainder=quote.remainder_cents,
            eligible=None,
        ),
    }
    return _resource(data)
