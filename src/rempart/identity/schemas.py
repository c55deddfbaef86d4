"""Request and response bodies of the identity API."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from rempart.fields import OneLine, UtcDatetime
from rempart.identity.accounts import Invitation
from rempart.identity.models import SecurityEvent
from rempart.identity.permissions import ClientScope, Role
from rempart.professionals.models import Profession

# Shown to the practice admin and in security events; PostgreSQL cannot store a NUL in text at all.
ClientName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), OneLine]
# An empty name is allowed: the passkey is then called "Passkey".
PasskeyName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), OneLine]


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["DPoP"] = "DPoP"  # noqa: S105  (the token scheme, not a secret)
    expires_in: int = Field(description="seconds; at most 300")


class PracticeCallerOut(BaseModel):
    practice_id: str
    client_id: str | None
    professional_id: str
    rpps: str
    profession: str
    channel: str
    permissions: list[str]


class _Strict(BaseModel):
    # Unknown fields are refused: a "password" or "otp" field is an error, never ignored.
    model_config = ConfigDict(extra="forbid")


class LoginOptionsIn(_Strict):
    login: str = Field(min_length=1, max_length=254)


class CeremonyOut(BaseModel):
    ceremony_id: uuid.UUID
    public_key: dict[str, Any] = Field(serialization_alias="publicKey")


class LoginVerifyIn(_Strict):
    ceremony_id: uuid.UUID
    credential: dict[str, Any]


class SignedInOut(BaseModel):
    account_id: uuid.UUID
    roles: list[str]
    csrf_token: str


class EnrolmentOptionsIn(_Strict):
    token: str = Field(min_length=20, max_length=100)


class EnrolmentVerifyIn(_Strict):
    token: str = Field(min_length=20, max_length=100)
    ceremony_id: uuid.UUID
    credential: dict[str, Any]
    name: PasskeyName = "Passkey"


class RecoveryIn(_Strict):
    login: str = Field(min_length=1, max_length=254)
    code: str = Field(min_length=1, max_length=64)


class RecoveryOut(BaseModel):
    enrolment_token: str
    enrol_url: str
    detail: str = "Register a new passkey now; the account's owner has been alerted."


class CeremonyVerifyIn(_Strict):
    ceremony_id: uuid.UUID
    credential: dict[str, Any]


class PasskeyRegisterIn(_Strict):
    ceremony_id: uuid.UUID
    credential: dict[str, Any]
    name: PasskeyName = "Passkey"


class CsrfOut(BaseModel):
    csrf_token: str


class AccountOut(BaseModel):
    account_id: uuid.UUID
    login: str
    roles: list[str]
    insurer_id: uuid.UUID | None
    practice_id: uuid.UUID | None
    csrf_token: str
    authenticated_at: datetime | None


class PasskeyOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None
    backed_up: bool
    clone_suspected: bool


class SessionOut(BaseModel):
    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    address: str | None
    user_agent: str | None
    current: bool


class SecurityEventOut(BaseModel):
    id: uuid.UUID
    at: datetime
    kind: str
    account_id: uuid.UUID | None
    practice_id: uuid.UUID | None
    client_id: uuid.UUID | None
    address: str | None
    detail: dict[str, str]

    @classmethod
    def of(cls, event: SecurityEvent) -> SecurityEventOut:
        return cls(
            id=event.id,
            at=event.at,
            kind=event.kind.value,
            account_id=event.account_id,
            practice_id=event.practice_id,
            client_id=event.client_id,
            address=event.address,
            detail=json.loads(event.detail),
        )


class RecoveryCodesOut(BaseModel):
    codes: list[str]
    detail: str = "Keep these codes offline. Each works once; using one alerts you."


class RevokedOut(BaseModel):
    revoked: int


class StaffInvitationIn(_Strict):
    login: str = Field(min_length=3, max_length=254)
    roles: list[Role] = Field(min_length=1)


class ProfessionalInvitationIn(_Strict):
    login: str = Field(min_length=3, max_length=254)
    rpps: str = Field(min_length=11, max_length=11)
    practice_admin: bool = False


class PlatformInvitationIn(_Strict):
    login: str = Field(min_length=3, max_length=254)


class InvitationOut(BaseModel):
    account_id: uuid.UUID
    enrol_url: str
    expires_in_days: int = 7

    @classmethod
    def of(cls, invitation: Invitation, origin: str) -> InvitationOut:
        return cls(account_id=invitation.account.id, enrol_url=invitation.url(origin))


class StaffOut(BaseModel):
    account_id: uuid.UUID
    login: str
    status: str
    roles: list[str]


class ClientCreateIn(_Strict):
    name: ClientName
    public_jwk: dict[str, Any]
    expires_at: UtcDatetime | None = None


class ClientKeyIn(_Strict):
    public_jwk: dict[str, Any]


class ClientOut(BaseModel):
    client_id: uuid.UUID
    name: str
    status: str
    created_at: datetime
    expires_at: datetime | None
    keys: list[str]
    token_url: str


class InsurerClientCreateIn(ClientCreateIn):
    """An insurer's API client: a nightly job's credentials, granted these scopes and no more."""

    scopes: list[ClientScope] = Field(min_length=1, max_length=len(ClientScope))


class InsurerClientOut(ClientOut):
    scopes: list[str]


class SuspendIn(_Strict):
    reason: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")


class BeneficiaryInvitationIn(_Strict):
    beneficiary_id: uuid.UUID
    login: str = Field(min_length=3, max_length=254)


class PracticeCreateIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    profession: Profession
    finess: str | None = Field(default=None, pattern=r"^\d{9}$")
    am_number: str | None = Field(default=None, pattern=r"^\d{9}$")
    admin_login: str = Field(min_length=3, max_length=254)
    admin_rpps: str = Field(min_length=11, max_length=11)


class PracticeCreatedOut(BaseModel):
    practice_id: uuid.UUID
    admin_account_id: uuid.UUID
    enrol_url: str
