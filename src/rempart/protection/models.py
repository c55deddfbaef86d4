"""Per-insurer keys, stored only wrapped by a key-encryption key held outside the database."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, UTCDateTime, str_enum, utcnow


class KeyPurpose(StrEnum):
    DATA = "data"  # AES-256-GCM data encryption key
    INDEX = "index"  # HMAC-SHA256 blind index key


class KeyState(StrEnum):
    ACTIVE = "active"  # encrypts new values
    RETIRING = "retiring"  # still decrypts while rotation re-encrypts its values
    DESTROYED = "destroyed"  # wrapped material erased: opens nothing


class InsurerKey(Base):
    __tablename__ = "insurer_keys"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    purpose: Mapped[KeyPurpose] = mapped_column(str_enum(KeyPurpose, length=8), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[KeyState] = mapped_column(str_enum(KeyState, length=10))
    kek_id: Mapped[str] = mapped_column(String(64))
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id"], ["insurers.id"], ondelete="CASCADE"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("(state = 'destroyed') = (wrapped IS NULL)", name="destroyed_has_no_material"),
    )
