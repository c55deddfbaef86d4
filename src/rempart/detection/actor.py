"""Who makes a professional request and what they typed, as detection needs to know it."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from rempart.detection.models import KillChannel, SubjectKind

# A principal's channel ("api", "fhir", "portal") as the kill switches name it.
_KILL_CHANNEL = {"api": KillChannel.PRACTICE_API, "fhir": KillChannel.FHIR}


@dataclass(frozen=True)
class Actor:
    """Who makes a professional request, as detection needs to know it (no personal data)."""

    channel: KillChannel
    practice_id: uuid.UUID | None = None
    profession: str | None = None
    account_id: uuid.UUID | None = None  # portal
    client_id: uuid.UUID | None = None  # practice software
    professional_id: uuid.UUID | None = None
    device: str | None = None  # a stable device reference: client key thumbprint, passkey id
    address: str | None = None
    # Portal: when the person last verified a passkey (login or step-up) in this session.
    authenticated_at: datetime | None = None

    @classmethod
    def of_practice(cls, principal: Any, *, device: str | None = None) -> Actor:
        """From identity's ``PracticePrincipal`` (or ``Principal``) of a professional request."""
        channel = _KILL_CHANNEL.get(str(getattr(principal, "channel", "")), KillChannel.PROFESSIONAL_PORTAL)
        profession = getattr(principal, "profession", None)
        return cls(
            channel=channel,
            practice_id=principal.practice_id,
            profession=str(profession) if profession is not None else None,
            account_id=principal.account_id,
            client_id=principal.client_id,
            professional_id=principal.professional_id,
            device=device,
            address=principal.address,
            authenticated_at=getattr(principal, "authenticated_at", None),
        )

    def subject(self) -> tuple[SubjectKind, uuid.UUID]:
        if self.client_id is not None:
            return SubjectKind.CLIENT, self.client_id
        if self.account_id is not None:
            return SubjectKind.ACCOUNT, self.account_id
        raise ValueError("a professional request comes from an account or an API client")


@dataclass(frozen=True)
class Attempt:
    """What the caller typed: turned into keyed digests at once, never stored nor logged."""

    amc_number: str
    member_number: str
    nir: str = field(repr=False)
    birth_date: date = field(repr=False)
    birth_rank: int = 1


@lru_cache(maxsize=4096)
def network_of(address: str | None) -> str:
    """The /24 (IPv4) or /48 (IPv6) an address belongs to: "the same network" for detection."""
    if not address:
        return ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    return str(ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 48}", strict=False))
