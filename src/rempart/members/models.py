"""Contracts, beneficiaries and tiers payant cards.

A beneficiary's NIR, names, date of birth and marital status exist here only as AES-256-GCM
ciphertext (see ``rempart.protection``); the rights check finds a beneficiary through
``identity_bidx``, a keyed hash of (NIR, date of birth, birth rank) that reveals nothing without the
insurer's index key.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rempart.db import Base, UTCDateTime, new_id, str_enum, utcnow


class ContractKind(StrEnum):
    INDIVIDUAL = "individual"
    COLLECTIVE = "collective"  # through an employer


class BeneficiaryRole(StrEnum):
    HOLDER = "holder"  # "adhérent"
    SPOUSE = "spouse"
    CHILD = "child"  # "ayant droit", possibly under a parent's NIR


class MaritalStatus(StrEnum):
    SINGLE = "single"
    MARRIED = "married"
    CIVIL_UNION = "civil_union"
    DIVORCED = "divorced"
    WIDOWED = "widowed"


# Fields that exist only encrypted; the names are part of each ciphertext's associated data.
ENCRYPTED_FIELDS = ("nir", "last_name", "first_name", "birth_date", "marital_status")


class Contract(Base):
    __tablename__ = "contracts"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    member_number: Mapped[str] = mapped_column(String(20))
    product_id: Mapped[uuid.UUID] = mapped_column()
    kind: Mapped[ContractKind] = mapped_column(str_enum(ContractKind, length=12))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    beneficiaries: Mapped[list[Beneficiary]] = relationship(back_populates="contract", lazy="raise")

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id"], ["insurers.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["insurer_id", "product_id"], ["products.insurer_id", "products.id"]),
        UniqueConstraint("insurer_id", "member_number"),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="validity_ordered"),
    )

    def valid_on(self, day: date) -> bool:
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)


class Beneficiary(Base):
    __tablename__ = "beneficiaries"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    contract_id: Mapped[uuid.UUID] = mapped_column()
    role: Mapped[BeneficiaryRole] = mapped_column(str_enum(BeneficiaryRole, length=8))
    birth_rank: Mapped[int] = mapped_column(Integer, default=1)
    # Keyed hash of (NIR, date of birth, birth rank) under the insurer's index key.
    identity_bidx: Mapped[bytes] = mapped_column(LargeBinary(32))
    index_key_version: Mapped[int] = mapped_column(Integer)
    data_key_version: Mapped[int] = mapped_column(Integer)
    nir_enc: Mapped[bytes] = mapped_column(LargeBinary)
    last_name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    first_name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    birth_date_enc: Mapped[bytes] = mapped_column(LargeBinary)
    marital_status_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    contract: Mapped[Contract] = relationship(back_populates="beneficiaries", lazy="raise")

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id"], ["insurers.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["insurer_id", "contract_id"], ["contracts.insurer_id", "contracts.id"], ondelete="CASCADE"
        ),
        # One person once per contract; the same person may appear on another contract.
        UniqueConstraint("insurer_id", "contract_id", "identity_bidx"),
        Index("ix_beneficiaries_identity", "insurer_id", "identity_bidx"),
        CheckConstraint("birth_rank BETWEEN 1 AND 9", name="birth_rank_range"),
    )


class Card(Base):
    """A tiers payant card: what the patient hands over at the counter, with the NIR and birth date."""

    __tablename__ = "cards"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    contract_id: Mapped[uuid.UUID] = mapped_column()
    member_number: Mapped[str] = mapped_column(String(20))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id"], ["insurers.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["insurer_id", "contract_id"], ["contracts.insurer_id", "contracts.id"], ondelete="CASCADE"
        ),
        UniqueConstraint("insurer_id", "member_number", "valid_from"),
        CheckConstraint("valid_to >= valid_from", name="validity_ordered"),
    )
