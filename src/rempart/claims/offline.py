"""Claims under attestation: billed on the patient's signed offline attestation while the platform
was off (DESIGN.md, invariant 9), adjudicated afterwards on what the attestation promised on the
date of care — not on today's rights, which may have changed since.

The platform checks more than the practice's verifier could: besides the signature, the key's
revocation and the dates, the attestation must be one it issued (its id, key, card and validity as
recorded). A token signed with a stolen key and back-dated before the key's revocation is refused
here, whatever its signature says.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.attestations.keys import jwk_of
from rempart.attestations.models import Attestation, AttestationKey
from rempart.claims.models import ClaimReason
from rempart.eligibility.lookup import coverage
from rempart.eligibility.models import RightsCheck
from rempart.errors import RempartError
from rempart.identity.principal import PracticePrincipal
from rempart.insurers.models import Insurer
from rempart.members.models import Beneficiary, Contract
from rempart.pricing.engine import CareLine
from rempart.pricing.service import CheckedCover
from rempart.tenancy import bind_tenant
from rempart_verifier import KeySet, Refusal, decode_unverified, verify
from rempart_verifier.attestation import mask_to_domains

# The check a claim under attestation stands on is recorded for this claim only.
_CHECK_LIFETIME = timedelta(minutes=5)


class AttestationNotGenuine(RempartError):
    """Nothing is stored: a token the platform did not issue names nobody it could bill for."""

    status = 422
    slug = "attestation-not-genuine"
    title = "This attestation was not issued by the insurer"

    def __init__(self, reason: str) -> None:
        super().__init__(
            "The attestation cited is not one the insurer issued (its signature, key or record does not hold). "
            "The claim is refused; check the patient's card, and bill with a rights check.",
            extra={"attestation_refusal": reason},
        )


@dataclass(frozen=True)
class AttestedCheck:
    check: RightsCheck
    cover: CheckedCover
    attestation: Attestation
    # Set when the attestation is genuine but does not carry this claim: the claim is stored rejected.
    refusal: ClaimReason | None


def _keys_of(session: Session, insurer: Insurer, kid: str) -> KeySet:
    key = session.scalar(
        select(AttestationKey).where(AttestationKey.insurer_id == insurer.id, AttestationKey.kid == kid)
    )
    if key is None:
        raise AttestationNotGenuine(Refusal.UNKNOWN_KEY.value)
    return KeySet.from_jwks({"keys": [jwk_of(key, insurer.amc_number)]})


def attested_cover(session: Session, *, check: RightsCheck, attestation: Attestation) -> CheckedCover:
    """The cover a claim under attestation is priced on: the product's formulas for the domains the
    attestation gave third-party payment, in force over the attestation's validity."""
    product_id = session.scalar(
        select(Contract.product_id).where(Contract.insurer_id == check.insurer_id, Contract.id == check.contract_id)
    )
    assert product_id is not None  # the attestation's contract (foreign key)
    _code, covers = coverage(
        session,
        insurer_id=check.insurer_id,
        product_id=product_id,
        beneficiary_id=check.beneficiary_id,
        day=check.care_date,
    )
    attested = mask_to_domains(attestation.third_party_payment)
    return CheckedCover(
        check=check,
        valid_from=attestation.valid_from,
        valid_to=attestation.valid_to,
        covers={domain: cover for domain, cover in covers.items() if domain.value in attested},
    )


def insurer_of_attestation(session: Session, token: str) -> uuid.UUID:
    """The insurer a cited attestation names (its signature is checked later, by ``attested_check``)."""
    try:
        claimed = decode_unverified(token)
    except ValueError:
        raise AttestationNotGenuine(Refusal.MALFORMED.value) from None
    insurer_id = session.scalar(select(Insurer.id).where(Insurer.amc_number == claimed.amc_number))
    if insurer_id is None:
        raise AttestationNotGenuine(Refusal.ANOTHER_INSURER.value)
    return insurer_id


def attested_check(
    session: Session, *, caller: PracticePrincipal, token: str, lines: tuple[CareLine, ...], now: datetime
) -> AttestedCheck:
    """Verify the attestation a claim cites, and record the check it stands for (in the caller's
    transaction). Raises ``AttestationNotGenuine`` for a token the insurer did not issue."""
    try:
        claimed = decode_unverified(token)
    except ValueError:
        raise AttestationNotGenuine(Refusal.MALFORMED.value) from None
    insurer = session.scalar(select(Insurer).where(Insurer.amc_number == claimed.amc_number))
    if insurer is None:
        raise AttestationNotGenuine(Refusal.ANOTHER_INSURER.value)
    bind_tenant(session, insurer.id)
    keys = _keys_of(session, insurer, claimed.kid)
    care_dates = sorted({line.care_date for line in lines})
    verdicts = [verify(token, keys=keys, on=day) for day in care_dates]
    refusals = {v.refusal for v in verdicts if v.refusal is not None}
    genuine = verdicts[0].attestation
    if genuine is None or refusals & {
        Refusal.MALFORMED,
        Refusal.UNKNOWN_KEY,
        Refusal.TAMPERED,
        Refusal.ANOTHER_INSURER,
    }:
        raise AttestationNotGenuine(min(r.value for r in refusals))
    record = session.scalar(
        select(Attestation).where(Attestation.insurer_id == insurer.id, Attestation.id == genuine.attestation_id)
    )
    beneficiary = (
        session.scalar(
            select(Beneficiary).where(Beneficiary.insurer_id == insurer.id, Beneficiary.id == record.beneficiary_id)
        )
        if record is not None
        else None
    )
    contract = session.get(Contract, (insurer.id, record.contract_id)) if record is not None else None
    if (
        record is None
        or beneficiary is None
        or contract is None
        or record.kid != genuine.kid
        or (record.valid_from, record.valid_to) != (genuine.valid_from, genuine.valid_to)
        or contract.member_number != genuine.member_number
        or beneficiary.birth_rank != genuine.birth_rank
    ):
        raise AttestationNotGenuine("not-issued")
    check = RightsCheck(
        insurer_id=insurer.id,
        id=uuid.uuid4(),
        beneficiary_id=record.beneficiary_id,
        contract_id=record.contract_id,
        practice_id=caller.practice_id,
        professional_id=caller.professional_id,
        care_date=care_dates[0],
        created_at=now,
        expires_at=now + _CHECK_LIFETIME,
    )
    session.add(check)
    session.flush()
    refusal: ClaimReason | None = None
    if Refusal.REVOKED_KEY in refusals:
        refusal = ClaimReason.ATTESTATION_KEY_REVOKED
    elif refusals & {Refusal.EXPIRED, Refusal.NOT_YET_VALID}:
        refusal = ClaimReason.ATTESTATION_EXPIRED
    elif any(line.care_domain.value not in mask_to_domains(record.third_party_payment) for line in lines):
        refusal = ClaimReason.ATTESTATION_DOMAIN
    return AttestedCheck(check, attested_cover(session, check=check, attestation=record), record, refusal)
