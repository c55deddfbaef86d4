"""What the facade supports, as a CapabilityStatement (``GET /fhir/metadata``): exactly the
resources, interactions, operations and search parameters its routes serve, and how a client
authenticates. A test compares it with the app's routes, so that it cannot promise what is not there."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from rempart.fhir.codes import BASE as CODES

FHIR_VERSION = "4.0.1"

SECURITY = (
    "Practice software only, as on the native API: the client authenticates at /api/v1/oauth/token with a "
    "private_key_jwt client assertion (RFC 7523) and gets an access token bound to its DPoP key (RFC 9449). "
    "Every request carries 'Authorization: DPoP <token>', a fresh 'DPoP' proof for its method and URL, and "
    "the acting professional's RPPS in 'X-Acting-RPPS'. The same quotas, detection and kill switches apply; "
    "every access is in the access log under the channel 'fhir'. No response carries a patient's identity."
)

# One entry per resource type: the interactions, the operations and the search parameters served.
RESOURCES: list[dict[str, Any]] = [
    {
        "type": "CoverageEligibilityRequest",
        "interaction": [{"code": "create"}],
        "documentation": (
            "Rights check: POST a request, get a CoverageEligibilityResponse (not stored as such). The patient is a "
            "contained Patient (NIR under the INS system, birthDate, multipleBirthInteger), the card a contained "
            "Coverage (member number, payor with the AMC number); purpose benefits or validation; care domains as "
            "item.category. The answer names nobody: coverage per domain, and the check's identifier to cite."
        ),
    },
    {
        "type": "Claim",
        "interaction": [{"code": "create"}],
        "conditionalCreate": False,
        "operation": [
            {"name": "cancel", "definition": "https://rempart.example/fhir/OperationDefinition/Claim-cancel"}
        ],
        "documentation": (
            "use=claim bills care, use=preauthorization asks for a prior approval, use=predetermination gets a quote "
            "(nothing stored). The answer is a ClaimResponse (201, or 200 with 'Idempotent-Replayed: true' for a "
            "replay). The Claim cites its rights check as supportingInfo (category rights-check of "
            f"{CODES}supporting-info, valueReference.identifier the CoverageEligibilityResponse's), a prior "
            "approval's number as insurance.preAuthRef; each item its care domain as category, the act as "
            "productOrService, servicedDate, quantity, unitPrice in EUR and, as extensions, the reimbursement base "
            "and the AMO rate; the provider is the acting professional (RPPS) or the practice (FINESS). An "
            "'Idempotency-Key' header is required for claim and preauthorization, as on the native API; conditional "
            "create is not offered. $cancel (POST Claim/{id}/$cancel, no body) cancels a claim or a prior approval "
            "and answers its ClaimResponse; cancelling twice is harmless."
        ),
    },
    {
        "type": "ClaimResponse",
        "interaction": [{"code": "read"}],
        "documentation": (
            "A claim's or a prior approval's current adjudication, by the id its ClaimResponse carried; for the "
            "practice that made it only. The patient is a reference that names nobody."
        ),
    },
    {
        "type": "PaymentReconciliation",
        "interaction": [{"code": "search-type"}],
        "searchParam": [
            {"name": "created", "type": "date", "documentation": "the remittance's payment run date (ge, le)"},
            {
                "name": "_count",
                "type": "number",
                "documentation": (
                    "page size, 20 unless asked, at most 100; the next page is the Bundle's next link (a _cursor)"
                ),
            },
        ],
    },
    {"type": "CodeSystem", "interaction": [{"code": "read"}], "documentation": f"Rempart's codes, under {CODES}"},
]


def capability_statement(*, base_url: str, published: str) -> CapabilityStatement:
    return CapabilityStatement.model_validate(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": published,
            "kind": "instance",
            "publisher": "Rempart",
            "software": {"name": "Rempart"},
            "implementation": {"description": "Rempart's FHIR facade", "url": base_url},
            "fhirVersion": FHIR_VERSION,
            "format": ["application/fhir+json"],
            "rest": [
                {
                    "mode": "server",
                    "security": {
                        "service": [
                            {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                        "code": "OAuth",
                                    }
                                ]
                            }
                        ],
                        "description": SECURITY,
                    },
                    "resource": RESOURCES,
                }
            ],
        }
    )
