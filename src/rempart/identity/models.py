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

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, UTCDateTime, new_id, str_enum, utcnow
from rempart.identity.permissions import Role


class ClientStatus(StrEnum):
    ACTIVE = "active"
    # Contained by detection (or a security operator): no token is issued nor honoured until an
    # operator lifts it. Unlike a revoked client, the same client and keys work again afterwards.
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class ApiClient(Base):
    """A practice's billing software, or an insurer's job (a nightly members file, a payment run).
    Its ``id`` is the OAuth ``client_id``.

    A practice's client acts for the practice's professionals (every call names one); an insurer's
    client acts for its insurer with the permissions of its ``scopes`` only (space-separated, as
    OAuth writes them: ``rempart.identity.permissions.ClientScope``), and never for a person. The
    table stays a platform table, outside row-level security: the token endpoint reads a client
    before anyone is known, and ``clients.access_client`` scopes every other read by owner.
    """

    __tablename__ = "api_clients"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    practice_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("practices.id", ondelete="CASCADE"), nullable=True, index=True
    )
    insurer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("insurers.id", ondelete="CASCADE"), nullable=True, index=True
    )
    scopes: Mapped[str] = mapped_column(String(200), default="", server_default="")
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[ClientStatus] = mapped_column(str_enum(ClientStatus, length=10), default=ClientStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Credentials are granted for a period; past it the client must be renewed by the practice admin.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint("(status = 'revoked') = (revoked_at IS NOT NULL)", name="revocation_dated"),
        # A client works for one practice or one insurer, never both nor neither.
        CheckConstraint("(practice_id IS NULL) <> (insurer_id IS NULL)", name="one_owner"),
        # Scopes are an insurer client's whole grant; a practice's client has none (its role's).
        CheckConstraint("(insurer_id IS NULL) = (scopes = '')", name="scopes_of_insurer_clients"),
    )

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()


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


# -- human accounts -------------------------------------------------------------------------------


class AccountStatus(StrEnum):
    INVITED = "invited"  # enrolment link sent, no passkey yet
    ACTIVE = "active"
    SUSPENDED = "suspended"  # containment: no login, every session revoked


class Account(Base):
    """A person who logs in with passkeys. ``login`` is what they type; ``user_handle`` is the
    opaque WebAuthn user id that authenticators store (never the login)."""

    __tablename__ = "accounts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    login: Mapped[str] = mapped_column(String(254), unique=True)
    user_handle: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    status: Mapped[AccountStatus] = mapped_column(str_enum(AccountStatus, length=10), default=AccountStatus.INVITED)
    insurer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("insurers.id", ondelete="CASCADE"), nullable=True, index=True
    )
    practice_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("practices.id", ondelete="CASCADE"), nullable=True, index=True
    )
    professional_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("professionals.id", ondelete="CASCADE"), nullable=True
    )
    beneficiary_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        # An account works for one insurer or one practice, never both.
        CheckConstraint("insurer_id IS NULL OR practice_id IS NULL", name="one_scope"),
        CheckConstraint("professional_id IS NULL OR practice_id IS NOT NULL", name="professional_in_practice"),
        CheckConstraint("beneficiary_id IS NULL OR insurer_id IS NOT NULL", name="beneficiary_of_insurer"),
        CheckConstraint("login = lower(login) AND length(login) >= 3", name="login_normalised"),
        ForeignKeyConstraint(
            ["insurer_id", "beneficiary_id"], ["beneficiaries.insurer_id", "beneficiaries.id"], ondelete="CASCADE"
        ),
    )


class AccountRole(Base):
    __tablename__ = "account_roles"

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, length=24), primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    granted_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)


class Passkey(Base):
    __tablename__ = "passkeys"

    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    # Public id for the API (the credential id is long and binary).
    ref: Mapped[uuid.UUID] = mapped_column(unique=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    aaguid: Mapped[str] = mapped_column(String(36))
    backed_up: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Set when a signature counter went backwards: the key may have been cloned; it is disabled.
    clone_suspected_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (CheckConstraint("sign_count >= 0", name="sign_count_non_negative"),)


class EnrolmentPurpose(StrEnum):
    INVITATION = "invitation"  # first passkey of a new account
    RECOVERY = "recovery"  # a recovery code was used: enrol a replacement passkey


class Enrolment(Base):
    """A one-time link that lets its holder register a passkey for one account."""

    __tablename__ = "enrolments"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[EnrolmentPurpose] = mapped_column(str_enum(EnrolmentPurpose, length=10))
    created_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (CheckConstraint("expires_at > created_at", name="lifetime_positive"),)


class RecoveryCode(Base):
    """One single-use recovery code, kept only as an argon2id hash."""

    __tablename__ = "recovery_codes"

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (CheckConstraint("slot BETWEEN 0 AND 15", name="slot_range"),)


class CeremonyPurpose(StrEnum):
    REGISTER = "register"
    LOGIN = "login"
    STEP_UP = "step_up"


class WebAuthnCeremony(Base):
    """A challenge handed to a browser, used at most once and for a few minutes."""

    __tablename__ = "webauthn_ceremonies"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    purpose: Mapped[CeremonyPurpose] = mapped_column(str_enum(CeremonyPurpose, length=10))
    challenge: Mapped[bytes] = mapped_column(LargeBinary(64))
    account_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True)
    # Login ceremonies name the login typed (as a keyed hash), not the account: unknown logins
    # get a ceremony exactly like known ones.
    login_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    enrolment_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    session_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class AccountSession(Base):
    """A server-side session. The cookie holds a random 256-bit id; the table only its SHA-256."""

    __tablename__ = "account_sessions"

    id_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    ref: Mapped[uuid.UUID] = mapped_column(unique=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    authenticated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(200), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)

    __table_args__ = (CheckConstraint("expires_at > created_at", name="lifetime_positive"),)


class SecurityEventKind(StrEnum):
    ACCOUNT_INVITED = "account_invited"
    ENROLMENT_COMPLETED = "enrolment_completed"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    NEW_DEVICE = "new_device"
    STEP_UP = "step_up"
    PASSKEY_ADDED = "passkey_added"
    PASSKEY_REMOVED = "passkey_removed"
    PASSKEY_RENAMED = "passkey_renamed"
    PASSKEY_CLONE_SUSPECTED = "passkey_clone_suspected"
    RECOVERY_CODES_CREATED = "recovery_codes_created"
    RECOVERY_CODE_USED = "recovery_code_used"
    SESSION_REVOKED = "session_revoked"
    ALL_SESSIONS_REVOKED = "all_sessions_revoked"
    LOGOUT = "logout"
    ROLE_CHANGED = "role_changed"
    ACCOUNT_SUSPENDED = "account_suspended"
    TOKEN_REFUSED = "token_refused"  # noqa: S105  (an event name, not a secret)
    CLIENT_CREATED = "client_created"
    CLIENT_KEY_ADDED = "client_key_added"
    CLIENT_KEY_REVOKED = "client_key_revoked"
    CLIENT_REVOKED = "client_revoked"
    # The containment ladder (detection), shown to the account's or client's owner.
    CHECKS_SLOWED = "checks_slowed"
    STEP_UP_REQUIRED = "step_up_required"
    CLIENT_SUSPENDED = "client_suspended"
    CONTAINMENT_LIFTED = "containment_lifted"
    # The insurer's products: a change of formulas (or its withdrawal, or a reopening) and a retirement.
    PRODUCT_CHANGED = "product_changed"
    PRODUCT_RETIRED = "product_retired"


class SecurityEvent(Base):
    """Something that happened to an account or a client, shown to its owner and to security
    operators. ``detail`` holds ids and reasons only, never personal data."""

    __tablename__ = "security_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[SecurityEventKind] = mapped_column(str_enum(SecurityEventKind, length=32))
    account_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True)
    practice_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    client_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="{}")

    __table_args__ = (
        Index("ix_security_events_account_at", "account_id", "at"),
        Index("ix_security_events_practice_at", "practice_id", "at"),
    )
