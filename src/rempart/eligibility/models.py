"""Rights checks: the record a professional quotes later (``check_id``) to quote, ask for an approval
or bill. It names the beneficiary by internal id only, and the practice that may use it."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKeyConstraint, Index
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, UTCDateTime, new_id


class RightsCheck(Base):
    __tablename__ = "rights_checks"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    beneficiary_id: Mapped[uuid.UUID] = mapped_column()
    contract_id: Mapped[uuid.UUID] = mapped_column()
    practice_id: Mapped[uuid.UUID] = mapped_column()
    professional_id: Mapped[uuid.UUID] = mapped_column()
    care_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Until when quotes, approvals and claims may cite this check.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id"], ["insurers.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["insurer_id", "beneficiary_id"], ["beneficiaries.insurer_id", "beneficiaries.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["insurer_id", "contract_id"], ["contracts.insurer_id", "contracts.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(["practice_id"], ["practices.id"]),
        ForeignKeyConstraint(["professional_id"], ["professionals.id"]),
        # Practice software cites a check by its id alone.
        Index("ix_rights_checks_id", "id", unique=True),
        CheckConstraint("expires_at > created_at", name="expires_after_creation"),
    )
