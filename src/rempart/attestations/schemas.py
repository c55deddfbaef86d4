"""What the attestation routes answer."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field

from rempart.attestations.service import Issued

KEYS_PATH = "/.well-known/rempart/attestation-keys"


class AttestationOut(BaseModel):
    token: str = Field(description="the signed attestation (COSE_Sign1/CWT, base45, prefix RA1:), as in the QR code")
    attestation_id: uuid.UUID
    amc_number: str
    insurer_name: str
    member_number: str
    birth_rank: int
    valid_from: date
    valid_to: date
    issued_at: datetime
    third_party_payment: list[str] = Field(description="care domains with third-party payment")
    prior_approval: list[str] = Field(description="care domains where a prior approval is required")
    keys: str = Field(KEYS_PATH, description="where the insurers' public keys are published (JWKS)")

    @classmethod
    def of(cls, issued: Issued) -> AttestationOut:
        return cls(
            token=issued.token,
            attestation_id=issued.record.id,
            amc_number=issued.amc_number,
            insurer_name=issued.insurer_name,
            member_number=issued.member_number,
            birth_rank=issued.birth_rank,
            valid_from=issued.record.valid_from,
            valid_to=issued.record.valid_to,
            issued_at=issued.record.issued_at,
            third_party_payment=sorted(issued.third_party_payment),
            prior_approval=sorted(issued.prior_approval),
        )
