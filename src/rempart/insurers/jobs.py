"""Members import jobs started through the insurer API (see ``rempart.members.imports``)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, UTCDateTime, str_enum


class ImportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class MembersImportJob(Base):
    __tablename__ = "members_import_jobs"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    status: Mapped[ImportStatus] = mapped_column(str_enum(ImportStatus, length=8))
    file_format: Mapped[str] = mapped_column(String(8))
    rows_total: Mapped[int] = mapped_column(Integer)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    contracts_created: Mapped[int] = mapped_column(Integer, default=0)
    beneficiaries_created: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    # Rejected rows as [{"line", "field", "reason"}]: reasons name fields, never values.
    errors: Mapped[str] = mapped_column(Text, default="[]")
    failure: Mapped[str | None] = mapped_column(String(300), nullable=True)
    started_by: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id"], ["insurers.id"], ondelete="CASCADE"),
        CheckConstraint("rows_done >= 0 AND rows_done <= rows_total", name="progress_within_total"),
        CheckConstraint(
            "contracts_created >= 0 AND beneficiaries_created >= 0 AND unchanged >= 0 AND rejected >= 0",
            name="counters_non_negative",
        ),
    )

    def error_list(self) -> list[dict[str, object]]:
        loaded: list[dict[str, object]] = json.loads(self.errors)
        return loaded
