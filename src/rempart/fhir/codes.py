"""Rempart's own code systems, published at their URL (``/fhir/CodeSystem/{id}``) so that a FHIR
client can resolve every code it receives: the adjudication reason codes of claims and the decision
reason codes of prior approvals, the same stable strings the native API answers with."""

from __future__ import annotations

from enum import StrEnum

from fhir.resources.R4B.codesystem import CodeSystem

from rempart.approvals.models import ApprovalReason
from rempart.claims.models import ClaimReason, ReviewReason

BASE = "https://rempart.example/fhir/CodeSystem/"
CLAIM_REASONS = BASE + "claim-reason"
APPROVAL_REASONS = BASE + "approval-reason"
REVIEW_REASONS = BASE + "review-reason"
CARE_DOMAINS = BASE + "care-domain"

_SYSTEMS: dict[str, tuple[str, str, type[StrEnum]]] = {
    "claim-reason": ("Claim adjudication reasons", "Why a claim was rejected or held for review.", ClaimReason),
    "approval-reason": (
        "Prior approval reasons",
        "Why a prior approval was refused or granted in part.",
        ApprovalReason,
    ),
    "review-reason": ("Claims agents' rejection reasons", "Why a claims agent rejected a claim.", ReviewReason),
}


def code_system(system_id: str) -> CodeSystem | None:
    """The code system published under ``system_id``, or ``None``."""
    found = _SYSTEMS.get(system_id)
    if found is None:
        return None
    title, description, codes = found
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
            "concept": [{"code": code.value, "display": code.name.replace("_", " ").lower()} for code in codes],
        }
    )


def system_ids() -> list[str]:
    return sorted(_SYSTEMS)
