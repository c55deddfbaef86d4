"""Passkey ceremonies with the ``webauthn`` package: registration, login and step-up.

Every ceremony verifies the exact origin (``settings.public_origin``) and RP id
(``settings.rp_id``), requires user verification, and is used once (its id goes through the
replay store, which survives a rolled-back transaction and is shared by every process). Login
options never depend on the login typed, so they reveal nothing about which accounts exist.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url, parse_authentication_credential_json
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidJSONStructure, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from rempart.errors import Conflict, NotFound, RempartError, ValidationFailed
from rempart.identity.context import IdentityServices
from rempart.identity.events import record_event
from rempart.identity.models import (
    Account,
    AccountStatus,
    CeremonyPurpose,
    Passkey,
    SecurityEventKind,
    WebAuthnCeremony,
)

RP_NAME = "Rempart"
CEREMONY_LIFETIME = timedelta(minutes=5)
ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PSS_SHA_256,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
MAX_PASSKEYS = 10


class LoginFailed(RempartError):
    status = 401
    slug = "login-failed"
    title = "Login failed"


class CeremonyFailed(RempartError):
    status = 400
    slug = "passkey-ceremony-failed"
    title = "The passkey could not be verified"


@dataclass(frozen=True)
class CeremonyStart:
    ceremony_id: uuid.UUID
    options: dict[str, Any]


def login_digest(login: str) -> bytes:
    return hashlib.sha256(b"rempart-login|" + login.strip().lower().encode()).digest()


def _start(
    session: Session,
    *,
    purpose: CeremonyPurpose,
    challenge: bytes,
    now: datetime,
    account_id: uuid.UUID | None = None,
    login: str | None = None,
    enrolment_hash: bytes | None = None,
    session_hash: bytes | None = None,
) -> uuid.UUID:
    session.execute(delete(WebAuthnCeremony).where(WebAuthnCeremony.expires_at <= now))
    ceremony = WebAuthnCeremony(
        id=uuid.uuid4(),
        purpose=purpose,
        challenge=challenge,
        account_id=account_id,
        login_digest=login_digest(login) if login is not None else None,
        enrolment_hash=enrolment_hash,
        session_hash=session_hash,
        expires_at=now + CEREMONY_LIFETIME,
    )
    session.add(ceremony)
    session.flush()
    return ceremony.id


def _consume(
    session: Session, identity: IdentityServices, *, ceremony_id: uuid.UUID, purpose: CeremonyPurpose, now: datetime
) -> WebAuthnCeremony | None:
    """The ceremony, once: a second use finds nothing even if the first one's transaction failed."""
    ceremony = session.get(WebAuthnCeremony, ceremony_id)
    if ceremony is None or ceremony.purpose is not purpose or ceremony.expires_at <= now:
        return None
    if not identity.replay.first_use("webauthn-ceremony", str(ceremony_id), int(CEREMONY_LIFETIME.total_seconds())):
        return None
    session.delete(ceremony)
    return ceremony


def _descriptors(passkeys: Sequence[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=p.credential_id) for p in passkeys]


def passkeys_of(session: Session, account_id: uuid.UUID) -> Sequence[Passkey]:
    return session.scalars(select(Passkey).where(Passkey.account_id == account_id).order_by(Passkey.created_at)).all()


# -- registration ---------------------------------------------------------------------------------


def registration_options(
    *,
    session: Session,
    identity: IdentityServices,
    account: Account,
    now: datetime,
    enrolment_hash: bytes | None = None,
    session_hash: bytes | None = None,
) -> CeremonyStart:
    existing = passkeys_of(session, account.id)
    if len(existing) >= MAX_PASSKEYS:
        raise Conflict(f"an account has at most {MAX_PASSKEYS} passkeys")
    options = generate_registration_options(
        rp_id=identity.rp_id,
        rp_name=RP_NAME,
        user_id=account.user_handle,
        user_name=account.login,
        user_display_name=account.login,
        challenge=secrets.token_bytes(32),
        timeout=int(CEREMONY_LIFETIME.total_seconds() * 1000),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(existing),
        supported_pub_key_algs=ALGORITHMS,
    )
    ceremony_id = _start(
        session,
        purpose=CeremonyPurpose.REGISTER,
        challenge=options.challenge,
        now=now,
        account_id=account.id,
        enrolment_hash=enrolment_hash,
        session_hash=session_hash,
    )
    return CeremonyStart(ceremony_id=ceremony_id, options=json.loads(options_to_json(options)))


def finish_registration(
    *,
    session: Session,
    identity: IdentityServices,
    ceremony_id: uuid.UUID,
    credential: dict[str, Any],
    name: str,
    now: datetime,
    address: str | None,
    enrolment_hash: bytes | None = None,
    session_hash: bytes | None = None,
) -> Passkey:
    ceremony = _consume(session, identity, ceremony_id=ceremony_id, purpose=CeremonyPurpose.REGISTER, now=now)
    if (
        ceremony is None
        or ceremony.account_id is None
        or ceremony.enrolment_hash != enrolment_hash
        or ceremony.session_hash != session_hash
    ):
        raise CeremonyFailed("this registration was not started here, was already used or has expired")
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=ceremony.challenge,
            expected_rp_id=identity.rp_id,
            expected_origin=identity.origin,
            require_user_verification=True,
            supported_pub_key_algs=ALGORITHMS,
        )
    except (InvalidRegistrationResponse, InvalidJSONStructure, KeyError, ValueError, TypeError):
        raise CeremonyFailed("the passkey's answer does not verify for this site") from None
    if session.get(Passkey, verified.credential_id) is not None:
        raise Conflict("this passkey is already registered")
    passkey = Passkey(
        credential_id=verified.credential_id,
        account_id=ceremony.account_id,
        ref=uuid.uuid4(),
        name=(name.strip() or "Passkey")[:100],
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        backed_up=verified.credential_backed_up,
        created_at=now,
    )
    session.add(passkey)
    record_event(
        session=session,
        kind=SecurityEventKind.PASSKEY_ADDED,
        at=now,
        account_id=ceremony.account_id,
        address=address,
        passkey=str(passkey.ref),
    )
    identity.notifier.notify(account_id=ceremony.account_id, kind=SecurityEventKind.PASSKEY_ADDED.value)
    session.flush()
    return passkey


# -- authentication (login and step-up) -----------------------------------------------------------


def login_options(*, session: Session, identity: IdentityServices, login: str, now: datetime) -> CeremonyStart:
    """The same options for every login, known or not: discoverable passkeys, no credential list."""
    options = generate_authentication_options(
        rp_id=identity.rp_id,
        challenge=secrets.token_bytes(32),
        timeout=int(CEREMONY_LIFETIME.total_seconds() * 1000),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    ceremony_id = _start(session, purpose=CeremonyPurpose.LOGIN, challenge=options.challenge, now=now, login=login)
    return CeremonyStart(ceremony_id=ceremony_id, options=json.loads(options_to_json(options)))


def step_up_options(
    *, session: Session, identity: IdentityServices, account: Account, session_hash: bytes, now: datetime
) -> CeremonyStart:
    options = generate_authentication_options(
        rp_id=identity.rp_id,
        challenge=secrets.token_bytes(32),
        timeout=int(CEREMONY_LIFETIME.total_seconds() * 1000),
        allow_credentials=_descriptors(passkeys_of(session, account.id)),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    ceremony_id = _start(
        session,
        purpose=CeremonyPurpose.STEP_UP,
        challenge=options.challenge,
        now=now,
        account_id=account.id,
        session_hash=session_hash,
    )
    return CeremonyStart(ceremony_id=ceremony_id, options=json.loads(options_to_json(options)))


def _refused(session: Session, passkey: Passkey, *, now: datetime, address: str | None, reason: str) -> None:
    record_event(
        session=session,
        kind=SecurityEventKind.LOGIN_FAILED,
        at=now,
        account_id=passkey.account_id,
        address=address,
        passkey=str(passkey.ref),
        reason=reason,
    )


@lru_cache(maxsize=1)
def _decoy_public_key() -> bytes:
    """A COSE key no authenticator holds: unknown credentials cost one signature check too."""
    import cbor2  # webauthn's own CBOR dependency; only needed here

    numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    cose = {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
    return bytes(cbor2.dumps(cose))


def _credential_id(credential: dict[str, Any]) -> bytes | None:
    try:
        return parse_authentication_credential_json(credential).raw_id
    except (InvalidJSONStructure, InvalidAuthenticationResponse, KeyError, ValueError, TypeError):
        return None


def _verify_assertion(
    *,
    session: Session,
    identity: IdentityServices,
    ceremony: WebAuthnCeremony | None,
    credential: dict[str, Any],
    now: datetime,
    address: str | None,
) -> Passkey | None:
    """The passkey that signed this assertion for this ceremony, or None. Flags cloned keys."""
    raw_id = _credential_id(credential)
    passkey = session.get(Passkey, raw_id) if raw_id is not None else None
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=ceremony.challenge if ceremony else secrets.token_bytes(32),
            expected_rp_id=identity.rp_id,
            expected_origin=identity.origin,
            credential_public_key=passkey.public_key if passkey else _decoy_public_key(),
            # The counter is checked below, so that a cloned key is told apart from a bad signature.
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except (InvalidAuthenticationResponse, InvalidJSONStructure, KeyError, ValueError, TypeError):
        if passkey is not None and ceremony is not None:
            # The owner's key, refused: signed for another site (phishing relay), another RP id, a
            # stale challenge or a bad signature. The owner and the operators see it.
            _refused(session, passkey, now=now, address=address, reason="assertion_refused")
        return None
    if passkey is None or ceremony is None:
        return None
    if passkey.clone_suspected_at is not None:
        return None
    if (verified.new_sign_count or passkey.sign_count) and verified.new_sign_count <= passkey.sign_count:
        # A genuine signature with a counter that did not move forward: two copies of one key exist.
        passkey.clone_suspected_at = now
        record_event(
            session=session,
            kind=SecurityEventKind.PASSKEY_CLONE_SUSPECTED,
            at=now,
            account_id=passkey.account_id,
            address=address,
            passkey=str(passkey.ref),
        )
        identity.notifier.notify(account_id=passkey.account_id, kind=SecurityEventKind.PASSKEY_CLONE_SUSPECTED.value)
        return None
    passkey.sign_count = verified.new_sign_count
    passkey.last_used_at = now
    passkey.backed_up = verified.credential_backed_up
    return passkey


def finish_login(
    *,
    session: Session,
    identity: IdentityServices,
    ceremony_id: uuid.UUID,
    credential: dict[str, Any],
    now: datetime,
    address: str | None,
) -> Account:
    """The account that just proved itself with a passkey. Every refusal answers the same."""
    ceremony = _consume(session, identity, ceremony_id=ceremony_id, purpose=CeremonyPurpose.LOGIN, now=now)
    passkey = _verify_assertion(
        session=session, identity=identity, ceremony=ceremony, credential=credential, now=now, address=address
    )
    account = session.get(Account, passkey.account_id) if passkey else None
    if (
        account is None
        or ceremony is None
        or ceremony.login_digest is None
        or not secrets.compare_digest(ceremony.login_digest, login_digest(account.login))
        or account.status is not AccountStatus.ACTIVE
    ):
        if passkey is not None:
            _refused(session, passkey, now=now, address=address, reason="login_mismatch_or_inactive")
        raise LoginFailed("the login or the passkey was not accepted")
    return account


def finish_step_up(
    *,
    session: Session,
    identity: IdentityServices,
    ceremony_id: uuid.UUID,
    credential: dict[str, Any],
    account_id: uuid.UUID,
    session_hash: bytes,
    now: datetime,
    address: str | None,
) -> Passkey:
    ceremony = _consume(session, identity, ceremony_id=ceremony_id, purpose=CeremonyPurpose.STEP_UP, now=now)
    passkey = _verify_assertion(
        session=session, identity=identity, ceremony=ceremony, credential=credential, now=now, address=address
    )
    if (
        passkey is None
        or ceremony is None
        or passkey.account_id != account_id
        or ceremony.account_id != account_id
        or ceremony.session_hash != session_hash
    ):
        raise CeremonyFailed("the passkey was not accepted")
    record_event(session=session, kind=SecurityEventKind.STEP_UP, at=now, account_id=account_id, address=address)
    return passkey


def remove_passkey(
    *, session: Session, account_id: uuid.UUID, ref: uuid.UUID, now: datetime, address: str | None
) -> None:
    passkey = session.scalar(select(Passkey).where(Passkey.ref == ref, Passkey.account_id == account_id))
    if passkey is None:
        raise NotFound("no such passkey")
    usable = [p for p in passkeys_of(session, account_id) if p.clone_suspected_at is None]
    if passkey in usable and len(usable) == 1:
        raise Conflict("this is your last passkey: add another one before removing it")
    session.delete(passkey)
    record_event(
        session=session,
        kind=SecurityEventKind.PASSKEY_REMOVED,
        at=now,
        account_id=account_id,
        address=address,
        passkey=str(ref),
    )
    session.flush()


def do_remove_passkey(
    *, session: Session, account_id: uuid.UUID, ref: uuid.UUID, now: datetime, address: str | None
) -> None:
    remove_passkey(session=session, account_id=account_id, ref=ref, now=now, address=address)
    session.commit()


PASSKEY_NAME_MAX = 100


def passkey_name(raw: str) -> str:
    """A passkey's name as a person typed it: spaces collapsed, 1 to 100 printable characters."""
    name = " ".join(raw.split())
    if not name or len(name) > PASSKEY_NAME_MAX or not name.isprintable():
        raise ValidationFailed(f"a passkey's name has 1 to {PASSKEY_NAME_MAX} printable characters")
    return name


def do_rename_passkey(
    *, session: Session, account_id: uuid.UUID, ref: uuid.UUID, name: str, now: datetime, address: str | None
) -> Passkey:
    """One of the account's passkeys takes a new name, committed with its security event."""
    new_name = passkey_name(name)
    passkey = session.scalar(select(Passkey).where(Passkey.ref == ref, Passkey.account_id == account_id))
    if passkey is None:
        raise NotFound("no such passkey")
    passkey.name = new_name
    record_event(
        session=session,
        kind=SecurityEventKind.PASSKEY_RENAMED,
        at=now,
        account_id=account_id,
        address=address,
        passkey=str(ref),
    )
    session.commit()
    return passkey


def credential_ref(passkey: Passkey) -> str:
    return bytes_to_base64url(passkey.credential_id)[:16]
