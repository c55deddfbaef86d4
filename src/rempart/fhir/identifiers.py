"""The identifier systems the facade reads and writes, French first (ANS's FR Core usage).

A patient is named by their NIR under the INS system (``Patient.identifier``), their date of birth and
their birth rank (``Patient.multipleBirthInteger``, the "rang gémellaire" of twins); their cover by
the member number and the insurer's AMC number (``Coverage.identifier``, ``Coverage.payor``); the
professional by their RPPS (``Practitioner.identifier``), the practice by its FINESS or Assurance
Maladie number (``Organization.identifier``). Rempart's own objects carry identifiers under its URIs.
"""

from __future__ import annotations

# INS-NIR: the NIR as the national health identifier (OID of the INS, ANS).
INS_NIR = "urn:oid:1.2.250.1.213.1.4.8"
# RPPS (IDNPS of a professional with an RPPS number) and FINESS (ANS).
RPPS = "urn:oid:1.2.250.1.71.4.2.1"
FINESS = "urn:oid:1.2.250.1.71.4.2.2"

SID = "https://rempart.example/fhir/sid/"
AMC_NUMBER = SID + "amc-number"  # the insurer's number on the card ("numéro AMC")
MEMBER_NUMBER = SID + "member-number"  # the contract's number on the card ("numéro d'adhérent")
RIGHTS_CHECK = SID + "rights-check"  # a rights check's id (CoverageEligibilityResponse.identifier)
CLAIM = SID + "claim"
PRIOR_APPROVAL = SID + "prior-approval"
QUOTE = SID + "quote"
PAYMENT_RUN = SID + "payment-run"
