"""What each operation discloses, and why: the one registry the access log and the breach engine read.

Every operation that reads or writes personal data has exactly one entry here. ``record_access``
refuses an operation that is not registered, and stores the registered fields with each event, so
that "which fields of whom were seen" (DESIGN.md, breach response) is a query over the log and not a
guess. A domain that adds an operation adds one line to ``Operation`` and one entry to
``DISCLOSURES``; the purposes and fields are shared vocabulary.

A miss, a refusal or an error discloses nothing: the event records that the attempt happened (misses
are how enumeration shows) with an empty field list.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum


class Purpose(StrEnum):
    """Why personal data was processed (GDPR Art. 5(1)(b)), shown to the person concerned."""

    CARE_ELIGIBILITY = "care_eligibility"  # checking rights before or at the time of care
    CARE_QUOTE = "care_quote"
    CARE_PRIOR_APPROVAL = "care_prior_approval"
    CARE_BILLING = "care_billing"  # a professional billing the insurer for care given
    CLAIM_MANAGEMENT = "claim_management"  # the insurer reviewing claims
    PAYMENT = "payment"
    MEMBER_ADMINISTRATION = "member_administration"  # the insurer managing its members' contracts
    PLATFORM_SUPPORT = "platform_support"  # break-glass access by a platform operator
    SELF_SERVICE = "self_service"  # the beneficiary looking at their own data
    BREACH_RESPONSE = "breach_response"  # working out who an incident affected
    TRANSPARENCY = "transparency"  # the insurer's DPO reading the access log


PURPOSE_LABELS: dict[Purpose, dict[str, str]] = {
    Purpose.CARE_ELIGIBILITY: {"en": "checking your rights for care", "fr": "vérification de vos droits"},
    Purpose.CARE_QUOTE: {"en": "estimating what you will pay", "fr": "devis de prise en charge"},
    Purpose.CARE_PRIOR_APPROVAL: {"en": "prior approval of care", "fr": "demande de prise en charge"},
    Purpose.CARE_BILLING: {"en": "billing your insurer for your care", "fr": "facturation de vos soins"},
    Purpose.CLAIM_MANAGEMENT: {"en": "your insurer reviewing a claim", "fr": "contrôle d'une facture"},
    Purpose.PAYMENT: {"en": "paying the professional", "fr": "paiement du professionnel"},
    Purpose.MEMBER_ADMINISTRATION: {"en": "managing your contract", "fr": "gestion de votre contrat"},
    Purpose.PLATFORM_SUPPORT: {
        "en": "emergency technical access (approved by two operators)",
        "fr": "accès technique d'urgence (approuvé par deux opérateurs)",
    },
    Purpose.SELF_SERVICE: {"en": "you, in your space", "fr": "vous-même, dans votre espace"},
    Purpose.BREACH_RESPONSE: {"en": "investigating a security incident", "fr": "analyse d'un incident"},
    Purpose.TRANSPARENCY: {"en": "reviewing the access log", "fr": "contrôle du journal des accès"},
}


class DataField(StrEnum):
    """A category of the beneficiary's data that an operation shows or writes."""

    NIR = "nir"
    LAST_NAME = "last_name"
    FIRST_NAME = "first_name"
    BIRTH_DATE = "birth_date"
    BIRTH_RANK = "birth_rank"
    MARITAL_STATUS = "marital_status"
    MEMBER_NUMBER = "member_number"
    CARD = "card"  # the tiers payant card: AMC number, member number, validity, domains
    CONTRACT = "contract"  # product and contract validity
    COVERAGE_STATUS = "coverage_status"  # covered or not, today, for a care domain
    COVERAGE_PERIOD = "coverage_period"
    GUARANTEES = "guarantees"  # the formula per care domain
    CEILINGS_REMAINING = "ceilings_remaining"  # what is left of yearly ceilings
    THIRD_PARTY_PAYMENT = "third_party_payment"
    PRIOR_APPROVAL_RULES = "prior_approval_rules"  # whether a domain needs a prior approval
    CARE_LINES = "care_lines"  # the acts and equipment: health data (GDPR Art. 9)
    AMOUNTS = "amounts"  # insurer share and remainder
    APPROVAL = "approval"  # a prior approval's number, amounts and expiry
    CLAIM_STATUS = "claim_status"
    PAYMENT = "payment"  # what was paid, when, to whom
    ACCESS_LOG = "access_log"


FIELD_LABELS: dict[DataField, dict[str, str]] = {
    DataField.NIR: {"en": "social security number", "fr": "numéro de sécurité sociale"},
    DataField.LAST_NAME: {"en": "last name", "fr": "nom"},
    DataField.FIRST_NAME: {"en": "first name", "fr": "prénom"},
    DataField.BIRTH_DATE: {"en": "date of birth", "fr": "date de naissance"},
    DataField.BIRTH_RANK: {"en": "birth rank", "fr": "rang de naissance"},
    DataField.MARITAL_STATUS: {"en": "marital status", "fr": "situation familiale"},
    DataField.MEMBER_NUMBER: {"en": "member number", "fr": "numéro d'adhérent"},
    DataField.CARD: {"en": "tiers payant card", "fr": "carte de tiers payant"},
    DataField.CONTRACT: {"en": "contract", "fr": "contrat"},
    DataField.COVERAGE_STATUS: {"en": "whether you are covered", "fr": "ouverture des droits"},
    DataField.COVERAGE_PERIOD: {"en": "coverage period", "fr": "période de validité"},
    DataField.GUARANTEES: {"en": "guarantees", "fr": "garanties"},
    DataField.CEILINGS_REMAINING: {"en": "remaining ceilings", "fr": "plafonds restants"},
    DataField.THIRD_PARTY_PAYMENT: {"en": "third-party payment", "fr": "tiers payant"},
    DataField.PRIOR_APPROVAL_RULES: {"en": "prior approval rules", "fr": "règles d'accord préalable"},
    DataField.CARE_LINES: {"en": "care given", "fr": "soins et équipements"},
    DataField.AMOUNTS: {"en": "amounts", "fr": "montants"},
    DataField.APPROVAL: {"en": "prior approval", "fr": "prise en charge"},
    DataField.CLAIM_STATUS: {"en": "claim status", "fr": "état de la facture"},
    DataField.PAYMENT: {"en": "payment", "fr": "paiement"},
    DataField.ACCESS_LOG: {"en": "access log", "fr": "journal des accès"},
}

# Identity fields: what the 2024 breaches took. A breach that disclosed one of these calls for an
# Art. 34 letter in any case.
IDENTITY_FIELDS = frozenset(
    {
        DataField.NIR,
        DataField.LAST_NAME,
        DataField.FIRST_NAME,
        DataField.BIRTH_DATE,
        DataField.BIRTH_RANK,
        DataField.MARITAL_STATUS,
        DataField.MEMBER_NUMBER,
    }
)
# Special category data (GDPR Art. 9: health).
HEALTH_FIELDS = frozenset({DataField.CARE_LINES, DataField.APPROVAL})


class Operation(StrEnum):
    RIGHTS_CHECK = "rights_check"
    RIGHTS_CHECK_BATCH = "rights_check_batch"
    QUOTE = "quote"
    PRIOR_APPROVAL_REQUEST = "prior_approval_request"
    PRIOR_APPROVAL_VIEW = "prior_approval_view"
    PRIOR_APPROVAL_CANCEL = "prior_approval_cancel"
    CLAIM_SUBMIT = "claim_submit"
    CLAIM_VIEW = "claim_view"
    CLAIM_CORRECT = "claim_correct"
    CLAIM_CANCEL = "claim_cancel"
    CLAIM_REVIEW = "claim_review"
    PAYMENT_RUN = "payment_run"
    REMITTANCE_VIEW = "remittance_view"
    BACKOFFICE_MEMBER_VIEW = "backoffice_member_view"
    MEMBER_EXPORT = "member_export"
    MEMBER_IMPORT = "member_import"
    BREAK_GLASS_VIEW = "break_glass_view"
    BENEFICIARY_SELF_VIEW = "beneficiary_self_view"
    ATTESTATION_ISSUE = "attestation_issue"
    ATTESTATION_MAILING = "attestation_mailing"  # the insurer's cards, issued in bulk or renewed
    INCIDENT_SCOPE = "incident_scope"
    INCIDENT_LETTERS = "incident_letters"
    ACCESS_LOG_VIEW = "access_log_view"
    CONTAINMENT = "containment"  # detection slowed, refused or suspended an access (nothing disclosed)


@dataclass(frozen=True)
class Disclosure:
    purpose: Purpose
    fields: frozenset[DataField]
    # True when each event names one beneficiary; False for operations over many (an incident's
    # scope, a payment run), recorded once with the reference of the batch.
    per_beneficiary: bool = True
    # Writes personal data (an import, a claim) rather than only showing it.
    writes: bool = False


def _d(purpose: Purpose, *fields: DataField, per_beneficiary: bool = True, writes: bool = False) -> Disclosure:
    return Disclosure(purpose, frozenset(fields), per_beneficiary=per_beneficiary, writes=writes)


_RIGHTS = (
    DataField.COVERAGE_STATUS,
    DataField.COVERAGE_PERIOD,
    DataField.GUARANTEES,
    DataField.CEILINGS_REMAINING,
    DataField.THIRD_PARTY_PAYMENT,
    DataField.PRIOR_APPROVAL_RULES,
)
_IDENTITY = tuple(sorted(IDENTITY_FIELDS))
_CLAIM = (DataField.CARE_LINES, DataField.AMOUNTS, DataField.CLAIM_STATUS)

DISCLOSURES: dict[Operation, Disclosure] = {
    # Professional channels: what the answer carries, never an identity (DESIGN.md, minimisation).
    Operation.RIGHTS_CHECK: _d(Purpose.CARE_ELIGIBILITY, *_RIGHTS),
    Operation.RIGHTS_CHECK_BATCH: _d(Purpose.CARE_ELIGIBILITY, *_RIGHTS),
    Operation.QUOTE: _d(Purpose.CARE_QUOTE, DataField.GUARANTEES, DataField.CEILINGS_REMAINING, DataField.AMOUNTS),
    Operation.PRIOR_APPROVAL_REQUEST: _d(
        Purpose.CARE_PRIOR_APPROVAL, DataField.CARE_LINES, DataField.AMOUNTS, DataField.APPROVAL, writes=True
    ),
    Operation.PRIOR_APPROVAL_VIEW: _d(
        Purpose.CARE_PRIOR_APPROVAL, DataField.CARE_LINES, DataField.AMOUNTS, DataField.APPROVAL
    ),
    Operation.PRIOR_APPROVAL_CANCEL: _d(Purpose.CARE_PRIOR_APPROVAL, DataField.APPROVAL, writes=True),
    Operation.CLAIM_SUBMIT: _d(Purpose.CARE_BILLING, *_CLAIM, writes=True),
    Operation.CLAIM_VIEW: _d(Purpose.CARE_BILLING, *_CLAIM),
    Operation.CLAIM_CORRECT: _d(Purpose.CARE_BILLING, *_CLAIM, writes=True),
    Operation.CLAIM_CANCEL: _d(Purpose.CARE_BILLING, DataField.CLAIM_STATUS, writes=True),
    Operation.REMITTANCE_VIEW: _d(Purpose.PAYMENT, DataField.AMOUNTS, DataField.CLAIM_STATUS, DataField.PAYMENT),
    # Insurer back office: staff see their own members, in clear.
    Operation.CLAIM_REVIEW: _d(Purpose.CLAIM_MANAGEMENT, *_CLAIM, DataField.MEMBER_NUMBER, writes=True),
    Operation.PAYMENT_RUN: _d(Purpose.PAYMENT, DataField.AMOUNTS, DataField.PAYMENT, per_beneficiary=False),
    Operation.BACKOFFICE_MEMBER_VIEW: _d(
        Purpose.MEMBER_ADMINISTRATION, *_IDENTITY, DataField.CARD, DataField.CONTRACT, *_RIGHTS
    ),
    Operation.MEMBER_EXPORT: _d(Purpose.MEMBER_ADMINISTRATION, *_IDENTITY, DataField.CONTRACT),
    Operation.MEMBER_IMPORT: _d(Purpose.MEMBER_ADMINISTRATION, *_IDENTITY, DataField.CONTRACT, writes=True),
    # Platform operators: only through an approved, time-limited break-glass grant.
    Operation.BREAK_GLASS_VIEW: _d(Purpose.PLATFORM_SUPPORT, *_IDENTITY, DataField.CARD, DataField.CONTRACT),
    # The beneficiary themself.
    Operation.BENEFICIARY_SELF_VIEW: _d(Purpose.SELF_SERVICE, DataField.CARD, DataField.CONTRACT, *_RIGHTS),
    Operation.ATTESTATION_ISSUE: _d(Purpose.SELF_SERVICE, DataField.CARD, DataField.THIRD_PARTY_PAYMENT),
    Operation.ATTESTATION_MAILING: _d(Purpose.MEMBER_ADMINISTRATION, DataField.CARD, DataField.THIRD_PARTY_PAYMENT),
    # Breach response: computed from the log, over many beneficiaries at once.
    Operation.INCIDENT_SCOPE: _d(Purpose.BREACH_RESPONSE, DataField.ACCESS_LOG, per_beneficiary=False),
    Operation.INCIDENT_LETTERS: _d(Purpose.BREACH_RESPONSE, DataField.ACCESS_LOG, per_beneficiary=False),
    Operation.ACCESS_LOG_VIEW: _d(Purpose.TRANSPARENCY, DataField.ACCESS_LOG, per_beneficiary=False),
    # Detection: a step of the containment ladder, recorded against the contained access.
    Operation.CONTAINMENT: _d(Purpose.BREACH_RESPONSE, per_beneficiary=False),
}


def disclosure_of(operation: Operation | str) -> Disclosure:
    """The registered disclosure of an operation; an unregistered one is a programming error."""
    try:
        return DISCLOSURES[Operation(operation)]
    except (KeyError, ValueError):
        raise LookupError(f"operation {operation!r} is not in the disclosure registry") from None


def encode_fields(fields: frozenset[DataField] | set[DataField]) -> str:
    """The stored form of a field list: sorted, comma-separated (stable for hashing)."""
    return _encoded(fields if isinstance(fields, frozenset) else frozenset(fields))


@functools.lru_cache(maxsize=1024)
def _encoded(fields: frozenset[DataField]) -> str:
    # Cached: each operation discloses one of a few field lists, encoded once per event otherwise.
    return ",".join(sorted(f.value for f in fields))


def decode_fields(stored: str) -> list[DataField]:
    return [DataField(f) for f in stored.split(",") if f]
