"""Identity tables: practice-software clients, their keys and tokens; human accounts, passkeys,
sessions and security events.

These are platform records (a professional's account and a practice's client act towards every
insurer), so they carry no ``insurer_id`` in their key; accounts of insurer staff and beneficiaries
name their insurer in a column, and access helpers scope by it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, UTCDateTime, new_id, str_enum, utcnow


class ClientStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class ApiClient(Base):
    """A practice's billing software. Its ``id`` is the OAuth ``client_id``."""

    __tablename__ = "api_clients"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    practice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[ClientStatus] = mapped_column(str_enum(ClientStatus, length=10), default=ClientStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Credentials are granted for a period; past it the client must be renewed by the practice admin.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (CheckConstraint("(status = 'revoked') = (revoked_at IS NOT NULL)", name="revocation_dated"),)


class ClientKeyStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class ApiClientKey(Base):
    """A public key a client signs its assertions with, registered as a JWK. ``kid`` is the RFC 7638
    thumbprint, so one key cannot be registered twice nor under a misleading name."""

    __tablename__ = "api_client_keys"

    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id", ondelete="CASCADE"), primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_jwk: Mapped[str] = mapped_column(Text)
    status: Mapped[ClientKeyStatus] = mapped_column(
        str_enum(ClientKeyStatus, length=10), default=ClientKeyStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        UniqueConstraint("kid"),  # one key, one client
        CheckConstraint("(status = 'revoked') = (revoked_at IS NOT NULL)", name="revocation_dated"),
    )


class AccessToken(Base):
    """An access token issued to a client, stored only as its SHA-256 and bound to a DPoP key."""

    __tablename__ = "access_tokens"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id", ondelete="CASCADE"))
    # RFC 7638 thumbprint of the DPoP public key (``cnf.jkt``): only its holder can use the token.
    jkt: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_access_tokens_client", "client_id"),
        Index("ix_access_tokens_expires_at", "expires_at"),
        CheckConstraint("expires_at > issued_at", name="lifetime_positive"),
    )
