"""Each insurer's attestation signing keys: made, wrapped, rotated, revoked, and published.

The private half is wrapped by the key-encryption key like the insurer's data and index keys
(``rempart.protection``), bound to its insurer and key id, so a dump of the database signs nothing.
The public halves are published as a JWKS at ``/.well-known/rempart/attestation-keys`` with the
insurer's AMC number on each key and, on a revoked key, its revocation time: practice software
caches that document and verifies attestations with no network.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rempart.attestations.models import AttestationKey, SigningKeyState
from rempart.errors import Conflict, NotFound
from rempart.insurers.models import MAX_ATTESTATION_DAYS, Insurer
from rempart.protection.kek import KeyEncryptionKeys
from rempart.tenancy import tenant

# A retired key stays published until the last attestation it signed has expired, and a day more
# for the clocks of practice software.
RETIRED_KEY_PUBLISHED = timedelta(days=MAX_ATTESTATION_DAYS + 1)


def _context(insurer_id: uuid.UUID, kid: str) -> bytes:
    return f"rempart:attestation-key:{insurer_id}:{kid}".encode()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _new_key(session: Session, keks: KeyEncryptionKeys, insurer_id: uuid.UUID, *, version: int) -> AttestationKey:
    private = Ed25519PrivateKey.generate()
    kid = secrets.token_urlsafe(9)  # 12 characters, 72 random bits: unique across insurers
    material = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    kek_id, wrapped = keks.wrap(material, context=_context(insurer_id, kid))
    key = AttestationKey(
        insurer_id=insurer_id,
        kid=kid,
        version=version,
        state=SigningKeyState.ACTIVE,
        public_key=private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        kek_id=kek_id,
        wrapped=wrapped,
    )
    session.add(key)
    session.flush()
    return key


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey


def signing_key(session: Session, *, keks: KeyEncryptionKeys, insurer_id: uuid.UUID) -> SigningKey:
    """The insurer's active signing key, opened; an insurer that has none yet gets its first."""
    with tenant(session, insurer_id):
        key = session.scalar(
            select(AttestationKey).where(
                AttestationKey.insurer_id == insurer_id, AttestationKey.state == SigningKeyState.ACTIVE
            )
        )
        if key is None:
            last = session.scalar(
                select(AttestationKey.version)
                .where(AttestationKey.insurer_id == insurer_id)
                .order_by(AttestationKey.version.desc())
                .limit(1)
            )
            key = _new_key(session, keks, insurer_id, version=(last or 0) + 1)
        material = keks.unwrap(key.wrapped, kek_id=key.kek_id, context=_context(insurer_id, key.kid))
    return SigningKey(key.kid, Ed25519PrivateKey.from_private_bytes(material))


@dataclass(frozen=True)
class Rotation:
    insurer: Insurer
    new_kid: str
    previous_kid: str | None
    previous_revoked_at: datetime | None


def do_rotate_attestation_key(
    session: Session,
    *,
    keks: KeyEncryptionKeys,
    amc_number: str,
    now: datetime,
    revoke_previous: bool = False,
    compromised_since: datetime | None = None,
) -> Rotation:
    """Put a new signing key in service. The previous one is retired (what it signed stays valid
    until it expires) or, when it may be compromised, revoked: attestations it signed at or after
    ``compromised_since`` (now, by default) are then refused by every verifier that refreshes its keys.
    """
    insurer = session.scalar(select(Insurer).where(Insurer.amc_number == amc_number))
    if insurer is None:
        raise NotFound("no insurer with this AMC number")
    if compromised_since is not None and not revoke_previous:
        raise Conflict("a compromise time only applies when the previous key is revoked")
    if compromised_since is not None and compromised_since > now:
        raise Conflict("the compromise time is in the future")
    with tenant(session, insurer.id):
        previous = session.scalar(
            select(AttestationKey).where(
                AttestationKey.insurer_id == insurer.id, AttestationKey.state == SigningKeyState.ACTIVE
            )
        )
        revoked_at = None
        if previous is not None:
            if revoke_previous:
                revoked_at = compromised_since or now
                previous.state, previous.revoked_at = SigningKeyState.REVOKED, revoked_at
            else:
                previous.state, previous.retired_at = SigningKeyState.RETIRED, now
            session.flush()
        last = session.scalar(
            select(AttestationKey.version)
            .where(AttestationKey.insurer_id == insurer.id)
            .order_by(AttestationKey.version.desc())
            .limit(1)
        )
        key = _new_key(session, keks, insurer.id, version=(last or 0) + 1)
    session.commit()
    return Rotation(insurer, key.kid, previous.kid if previous else None, revoked_at)


def do_revoke_attestation_key(session: Session, *, kid: str, since: datetime, now: datetime) -> AttestationKey:
    """Revoke a retired key found compromised later (an active one is revoked by rotating)."""
    insurer_id = _insurer_of_kid(session, kid)
    with tenant(session, insurer_id):
        key = session.get_one(AttestationKey, (insurer_id, kid))
        if key.state is SigningKeyState.ACTIVE:
            raise Conflict("rotate the insurer's key with revoke_previous: it would be left without one")
        if since > now:
            raise Conflict("the compromise time is in the future")
        session.execute(
            update(AttestationKey)
            .where(AttestationKey.insurer_id == insurer_id, AttestationKey.kid == kid)
            .values(state=SigningKeyState.REVOKED, revoked_at=min(since, key.revoked_at or since))
        )
    session.commit()
    session.refresh(key)
    return key


def _insurer_of_kid(session: Session, kid: str) -> uuid.UUID:
    # Key ids are unique across insurers; the insurers are few, so ask each under its own tenant.
    for insurer_id in session.scalars(select(Insurer.id)):
        with tenant(session, insurer_id):
            if session.scalar(
                select(AttestationKey.kid).where(AttestationKey.insurer_id == insurer_id, AttestationKey.kid == kid)
            ):
                return insurer_id
    raise NotFound("no attestation key with this id")


def jwk_of(key: AttestationKey, amc_number: str) -> dict[str, object]:
    """A key as verifiers read it: its insurer's AMC number on it, and its revocation time if revoked."""
    jwk: dict[str, object] = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64(key.public_key),
        "kid": key.kid,
        "use": "sig",
        "alg": "EdDSA",
        "amc": amc_number,
    }
    if key.revoked_at is not None:
        jwk["revoked_at"] = int(key.revoked_at.timestamp())
    return jwk


@dataclass(frozen=True)
class PublishedKeys:
    body: bytes
    etag: str


def published_keys(session: Session, *, now: datetime) -> PublishedKeys:
    """Every insurer's keys that a verifier may meet: the active one, retired ones whose attestations
    may still be valid, and every revoked one with its revocation time."""
    keys: list[dict[str, object]] = []
    for insurer_id, amc_number in session.execute(select(Insurer.id, Insurer.amc_number).order_by(Insurer.amc_number)):
        with tenant(session, insurer_id):
            rows = session.scalars(
                select(AttestationKey).where(AttestationKey.insurer_id == insurer_id).order_by(AttestationKey.version)
            ).all()
        for row in rows:
            if row.state is SigningKeyState.RETIRED and row.retired_at and row.retired_at + RETIRED_KEY_PUBLISHED < now:
                continue
            keys.append(jwk_of(row, amc_number))
    body = json.dumps({"keys": keys}, separators=(",", ":"), sort_keys=True).encode()
    return PublishedKeys(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
