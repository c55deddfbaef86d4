"""Rempart's own code systems, published at their URL (``/fhir/CodeSystem/{id}``) so that a FHIR
client can resolve every code it receives: the adjudication reason codes of claims and the decision
reason codes of prior approvals, the same stable strings the native API answers with."""

from __future__ import annotations

from enum import StrEnum

from fhir.resources.R4B.codesystem import CodeSystem

from rempart.approvals.models import ApprovalReason
from rempart.claims.models import ClaimReason, ReviewReason
from rempart.insurers.models import CareDomain
from rempart.web.fhir_wire import PROBLEM_TYPES_SYSTEM
from rempart.web.problem_catalogue import EXPLANATIONS

BASE = "https://rempart.example/fhir/CodeSystem/"
CLAIM_REASONS = BASE + "claim-reason"
APPROVAL_REASONS = BASE + "approval-reason"
REVIEW_REASONS = BASE + "review-reason"
CARE_DOMAINS = BASE + "care-domain"
BENEFIT_TYPES = BASE + "benefit-type"
SUPPORTING_INFO = BASE + "supporting-info"
ADJUDICATION = BASE + "adjudication"


class BenefitType(StrEnum):
    """What a formula's figures are, beside HL7's ``benefit`` (the yearly ceiling)."""

    BRSS_RATE = "brss-rate"  # AMO + AMC together, as a percentage of the BRSS
    FLAT_AMOUNT = "flat-amount"  # a flat amount per care, in euros
    CLASS_B_CEILING = "class-b-ceiling"  # 100 % Santé class B equipment, at most this many euros


class SupportingInfo(StrEnum):
    """What a Claim's ``supportingInfo`` cites."""

    RIGHTS_CHECK = "rights-check"  # the CoverageEligibilityResponse the claim hangs on
    OFFLINE_ATTESTATION = "offline-attestation"  # the signed attestation of care given while off


class Adjudication(StrEnum):
    """Adjudication amounts beside HL7's (submitted, eligible, benefit, copay)."""

    AMO = "amo"  # the compulsory scheme's share ("part AMO")
    REQUESTED = "requested"  # what a prior approval asked for


_SYSTEMS: dict[str, tuple[str, str, type[StrEnum]]] = {
    "claim-reason": ("Claim adjudication reasons", "Why a claim was rejected or held for review.", ClaimReason),
    "approval-reason": (
        "Prior approval reasons",
        "Why a prior approval was refused or granted in part.",
        ApprovalReason,
    ),
    "review-reason": ("Claims agents' rejection reasons", "Why a claims agent rejected a claim.", ReviewReason),
    "care-domain": ("Care domains", "The domains of care a formula covers and a professional bills.", CareDomain),
    "benefit-type": ("Formula figures", "What each figure of a formula is, beside HL7's benefit.", BenefitType),
    "supporting-info": ("Supporting information", "What a Claim's supportingInfo cites.", SupportingInfo),
    "adjudication": ("Adjudication amounts", "Amounts beside HL7's adjudication categories.", Adjudication),
}


# The problem types (RFC 9457 ``type``, relative: ``/problems/<slug>``) as the OperationOutcome's
# issue codes: a Coding's system must be absolute, so the slugs have a code system of their own.
PROBLEM_TYPES = PROBLEM_TYPES_SYSTEM.removeprefix(BASE)  # the wire names it, this module serves it


def code_system(system_id: str) -> CodeSystem | None:
    """The code system published under ``system_id``, or ``None``."""
    if system_id == PROBLEM_TYPES:
        title = "Problem types"
        description = "Why a request was refused: the slug of its RFC 9457 problem type, /problems/<code>."
        concepts = [{"code": slug, "definition": said.meaning} for slug, said in sorted(EXPLANATIONS.items())]
    elif system_id in _SYSTEMS:
        title, description, codes = _SYSTEMS[system_id]
        concepts = [{"code": code.value, "display": code.name.replace("_", " ").lower()} for code in codes]
    else:
        return None
    return CodeSystem.model_validate(
        {
            "resourceType": "CodeSystem",
            "id": system_id,
            "url": BASE + system_id,
            "name": "".join(part.capitalize() for part in system_id.split("-")),
            "title": title,
            "status": "active",
            "content": "complete",
            "caseSensitive": True,
            "description": description,
            "concept": concepts,
        }
    )


def system_ids() -> list[str]:
    return sorted([*_SYSTEMS, PROBLEM_TYPES])
