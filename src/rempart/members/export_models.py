"""A bulk export of the insurer's members, asked by one staff member and approved by another.

Nothing leaves in bulk on one person's word: the request says why and which members (all, or one
product's), a second staff member approves or refuses it, and only then may the requester download
the file, once, within a day. Every member in the file is an access event, so each person finds the
export in their own access log and an incident's scope counts it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, UTCDateTime, new_id, str_enum


class ExportStatus(StrEnum):
    WAITING = "waiting"  # for a second staff member's decision
    APPROVED = "approved"  # may be downloaded once, by the requester, until it lapses
    REFUSED = "refused"
    DOWNLOADED = "downloaded"  # done: the file left, every member in it recorded
    LAPSED = "lapsed"  # not downloaded in time, or withdrawn by the requester


class MemberExport(Base):
    __tablename__ = "member_exports"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    purpose: Mapped[str] = mapped_column(String(500))  # why, in the requester's words (no personal data)
    product_code: Mapped[str | None] = mapped_column(String(32), nullable=True)  # None: every member
    status: Mapped[ExportStatus] = mapped_column(str_enum(ExportStatus, length=10))
    requested_by: Mapped[uuid.UUID] = mapped_column()  # insurer staff account
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    row_count: Mapped[int | None] = mapped_column(Integer, nullable=True)  # members in the file, once downloaded

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id"], ["insurers.id"], ondelete="CASCADE"),
        # Four eyes, in the database too: whoever asked never decides.
        CheckConstraint("decided_by IS NULL OR decided_by <> requested_by", name="second_person_decides"),
        CheckConstraint(
            "status IN ('waiting', 'lapsed') OR decided_by IS NOT NULL", name="decided_unless_waiting_or_lapsed"
        ),
        CheckConstraint("(status = 'downloaded') = (downloaded_at IS NOT NULL)", name="downloaded_when_done"),
        CheckConstraint("row_count IS NULL OR row_count >= 0", name="row_count_non_negative"),
        Index("ix_member_exports_requested", "insurer_id", "requested_at"),
    )
