"""Who is calling, as the routes see it: never a raw token or cookie, only this."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from rempart.identity.permissions import Permission, Role
from rempart.professionals.models import Profession


class Channel(StrEnum):
    API = "api"  # practice software with a DPoP-bound token
    FHIR = "fhir"  # practice software with a DPoP-bound token, through the FHIR facade (``/fhir``)
    PORTAL = "portal"  # a human with a passkey session (portals, back office, console)


@dataclass(frozen=True)
class Principal:
    channel: Channel
    roles: frozenset[Role]
    permissions: frozenset[Permission]
    address: str | None = None
    account_id: uuid.UUID | None = None
    # A non-secret reference to the session or token (for the access log and security events).
    credential_ref: str | None = None
    insurer_id: uuid.UUID | None = None
    beneficiary_id: uuid.UUID | None = None
    practice_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None
    professional_id: uuid.UUID | None = None
    rpps: str | None = None
    profession: Profession | None = None
    # Moment of the last passkey verification of this session (login or step-up).
    authenticated_at: datetime | None = None

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


@dataclass(frozen=True)
class PracticePrincipal:
    """A professional acting for a practice, through its software (``client_id``) or in person
    through the professional portal (``account_id``)."""

    practice_id: uuid.UUID
    professional_id: uuid.UUID
    rpps: str
    profession: Profession
    permissions: frozenset[Permission]
    channel: Channel
    client_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    address: str | None = None
    credential_ref: str | None = None
    # Portal: the moment of the session's last passkey verification (login or step-up); detection
    # lets a person who confirmed after a step-up was asked carry on. None for practice software.
    authenticated_at: datetime | None = None

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


@dataclass(frozen=True)
class StaffPrincipal:
    """A member of an insurer's staff, or one of the insurer's API clients (a nightly job), acting
    on that insurer only.

    ``account_id`` names who acts, as the insurer's routes record it (``started_by``, the access
    log's actor): the staff member's account, or for an API client its ``client_id`` — client ids
    and account ids are both random UUIDs, and ``client_id`` tells the two apart. A client has no
    role: its ``permissions`` are those of its scopes, nothing more.
    """

    insurer_id: uuid.UUID
    account_id: uuid.UUID
    roles: frozenset[Role]
    permissions: frozenset[Permission]
    address: str | None = None
    credential_ref: str | None = None
    client_id: uuid.UUID | None = None

    @property
    def is_client(self) -> bool:
        return self.client_id is not None

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions
