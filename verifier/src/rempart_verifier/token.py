"""The attestation token: ``RA1:`` + base45(tagged COSE_Sign1 over CWT claims), checked offline.

Base45 keeps the text within the QR code's alphanumeric mode (denser than byte mode) and within
what a keyboard-wedge scanner can type. Everything read from a token is untrusted until its
signature verifies, and verification never raises: a counter terminal shows a refusal, not a crash.
"""

from __future__ import annotations

import io
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

import base45  # type: ignore[import-untyped]  # base45 ships no type information
import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from pycose.algorithms import EdDSA
from pycose.exceptions import CoseException
from pycose.headers import KID, Algorithm
from pycose.keys.okp import OKPKey
from pycose.messages.sign1message import Sign1Message

from rempart_verifier.attestation import (
    Attestation,
    PatientDigest,
    digest_matches,
    domains_to_mask,
    epoch,
    mask_to_domains,
)
from rempart_verifier.keys import KeySet

PREFIX = "RA1:"
# A real token is about 400 characters; the cap bounds the work done on whatever a scanner types.
MAX_TOKEN_LENGTH = 2048
COSE_SIGN1_TAG = 18
COSE_ALG, COSE_KID = 1, 4
EDDSA = -8

# CWT claim keys (RFC 8392), then Rempart's private ones (negative, as RFC 8392 reserves them).
ISS, EXP, NBF, IAT, CTI = 1, 4, 5, 6, 7
MEMBER_NUMBER, BIRTH_RANK, THIRD_PARTY_PAYMENT, PRIOR_APPROVAL, PATIENT_DIGEST = -1, -2, -3, -4, -5

_DAY = 86400


class Refusal(StrEnum):
    """Why an attestation is not honoured, in the order the checks run."""

    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown-key"
    TAMPERED = "tampered"
    ANOTHER_INSURER = "another-insurer"
    REVOKED_KEY = "revoked-key"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    NOT_THIS_PATIENT = "not-this-patient"

    @property
    def explanation(self) -> str:
        return EXPLANATIONS[self]


# Shown at the counter as they are: a pharmacist must know what to do next, not what COSE is.
EXPLANATIONS: dict[Refusal, str] = {
    Refusal.MALFORMED: "Ce code n'est pas une attestation Rempart lisible : rescannez-le ou saisissez les droits.",
    Refusal.UNKNOWN_KEY: (
        "La clé de l'assureur n'est pas connue de ce poste : mettez à jour les clés dès que le réseau revient."
    ),
    Refusal.TAMPERED: "La signature ne correspond pas : cette attestation a été modifiée ou contrefaite.",
    Refusal.ANOTHER_INSURER: "Cette attestation n'a pas été signée par l'assureur qu'elle annonce ou attendu.",
    Refusal.REVOKED_KEY: "L'assureur a révoqué la clé qui a signé cette attestation : demandez-en une nouvelle.",
    Refusal.EXPIRED: "Cette attestation n'était plus valable à la date des soins.",
    Refusal.NOT_YET_VALID: "Cette attestation n'était pas encore valable à la date des soins.",
    Refusal.NOT_THIS_PATIENT: (
        "Le NIR ou la date de naissance saisis ne sont pas ceux de l'assuré de cette attestation."
    ),
}


@dataclass(frozen=True)
class Verdict:
    """``attestation`` is set once the signature verified, even when refused later: the counter
    can then say whose card it is and until when it ran."""

    attestation: Attestation | None
    refusal: Refusal | None

    @property
    def valid(self) -> bool:
        return self.refusal is None


class _Malformed(Exception):
    """Internal: anything in a token that is not what Rempart signs."""


@dataclass(frozen=True)
class _Envelope:
    protected: bytes
    kid: str
    payload: bytes
    signature: bytes


def _pycose_key(*, x: bytes, d: bytes = b"") -> OKPKey:
    return OKPKey(crv="Ed25519", x=x, d=d)


def _encode_claims(attestation: Attestation) -> bytes:
    digest = attestation.digest
    claims: dict[int, Any] = {
        ISS: attestation.amc_number,
        EXP: epoch(attestation.valid_to) + _DAY,
        NBF: epoch(attestation.valid_from),
        IAT: math.floor(attestation.issued_at.timestamp()),
        CTI: attestation.attestation_id.bytes,
        MEMBER_NUMBER: attestation.member_number,
        BIRTH_RANK: attestation.birth_rank,
        THIRD_PARTY_PAYMENT: domains_to_mask(attestation.third_party_payment),
        PRIOR_APPROVAL: domains_to_mask(attestation.prior_approval),
        PATIENT_DIGEST: [digest.m_kib, digest.t, digest.p, digest.salt, digest.hash],
    }
    return cbor2.dumps(claims, canonical=True)


def sign(attestation: Attestation, *, private_key: Ed25519PrivateKey) -> str:
    """The text printed in the QR code. ``issued_at`` is signed as whole seconds, rounded down."""
    message = Sign1Message(
        phdr={Algorithm: EdDSA, KID: attestation.kid.encode("ascii")},
        payload=_encode_claims(attestation),
    )
    message.key = _pycose_key(
        x=private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        d=private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
    )
    raw: bytes = message.encode(tag=True)
    text: bytes = base45.b45encode(raw)
    return PREFIX + text.decode("ascii")


def _loads_exactly(data: bytes) -> object:
    """cbor2.loads ignores trailing bytes; a token with a tail is not what was signed."""
    stream = io.BytesIO(data)
    value = cbor2.CBORDecoder(stream).decode()
    if stream.read(1):
        raise _Malformed("trailing bytes")
    return value


def _open_envelope(token: object) -> _Envelope:
    if not isinstance(token, str):
        raise _Malformed("not text")
    # Scanners end with Enter; a space is a base45 character, so only line ends are stripped.
    text = token.strip("\r\n")
    if len(text) > MAX_TOKEN_LENGTH or not text.startswith(PREFIX):
        raise _Malformed("not a Rempart attestation")
    try:
        raw: bytes = base45.b45decode(text[len(PREFIX) :])
        tagged = _loads_exactly(raw)
        if not (isinstance(tagged, cbor2.CBORTag) and tagged.tag == COSE_SIGN1_TAG):
            raise _Malformed("not a tagged COSE_Sign1")
        parts = tagged.value
        # cbor2 decodes a tag's content as immutable containers (tuple, frozendict).
        if not (isinstance(parts, list | tuple) and len(parts) == 4):
            raise _Malformed("a COSE_Sign1 has four parts")
        protected, unprotected, payload, signature = parts
        if not (type(protected) is bytes and type(payload) is bytes and type(signature) is bytes):
            raise _Malformed("header, payload and signature are byte strings")
        # Everything that matters is protected: an unprotected kid or alg could be swapped freely.
        if not (isinstance(unprotected, Mapping) and len(unprotected) == 0):
            raise _Malformed("unexpected unprotected header")
        header = _loads_exactly(protected)
    except (cbor2.CBORError, ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as error:
        raise _Malformed(str(error)) from error
    # type() is: -8.0 == -8 in Python, but a float alg is not what Rempart signs.
    if not (isinstance(header, Mapping) and set(header) == {COSE_ALG, COSE_KID} and type(header[COSE_ALG]) is int):
        raise _Malformed("the protected header holds an algorithm and a kid, nothing else")
    if header[COSE_ALG] != EDDSA:
        raise _Malformed("Rempart signs with EdDSA only")
    kid = header[COSE_KID]
    if not (type(kid) is bytes and kid and kid.isascii()):
        raise _Malformed("the kid is ASCII bytes")
    return _Envelope(protected=protected, kid=kid.decode("ascii"), payload=payload, signature=signature)


def _signature_verifies(envelope: _Envelope, public_raw: bytes) -> bool:
    try:
        # Built from the parts already checked, not with Sign1Message.decode: pycose 1.1 expects
        # a tag's content as a list, which cbor2 6 no longer gives. The protected header is used
        # as received, byte for byte, as the signature covers it.
        message = Sign1Message(phdr_encoded=envelope.protected, payload=envelope.payload)
        message.signature = envelope.signature
        message.key = _pycose_key(x=public_raw)
        return bool(message.verify_signature())
    # pycose raises whatever its parsers meet; any failure to verify is a failure to verify.
    except (CoseException, cbor2.CBORError, ValueError, TypeError, KeyError, AttributeError, IndexError):
        return False


def _int(value: object) -> int:
    # bool is an int to Python, not to CBOR: True is no birth rank.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Malformed("expected an integer")
    return value


def _day(seconds: int) -> date:
    if seconds % _DAY:
        raise _Malformed("validity bounds fall at 00:00 UTC")
    return datetime.fromtimestamp(seconds, UTC).date()


def _read_claims(payload: bytes, *, kid: str) -> tuple[Attestation, int]:
    """The attestation and its iat as signed (whole seconds), for the revocation check."""
    try:
        claims = _loads_exactly(payload)
        if not isinstance(claims, Mapping):
            raise _Malformed("the claims are a map")
        digest_parts = claims[PATIENT_DIGEST]
        if not (isinstance(digest_parts, list | tuple) and len(digest_parts) == 5):
            raise _Malformed("the patient digest has five parts")
        m_kib, t, p, salt, hashed = digest_parts
        issued_at = _int(claims[IAT])
        not_before, expires = _int(claims[NBF]), _int(claims[EXP])
        cti = claims[CTI]
        if not (type(cti) is bytes and len(cti) == 16):
            raise _Malformed("cti is 16 bytes")
        attestation = Attestation(
            attestation_id=uuid.UUID(bytes=cti),
            amc_number=claims[ISS],
            member_number=claims[MEMBER_NUMBER],
            birth_rank=_int(claims[BIRTH_RANK]),
            valid_from=_day(not_before),
            valid_to=_day(expires) - timedelta(days=1),
            issued_at=datetime.fromtimestamp(issued_at, UTC),
            kid=kid,
            third_party_payment=mask_to_domains(_int(claims[THIRD_PARTY_PAYMENT])),
            prior_approval=mask_to_domains(_int(claims[PRIOR_APPROVAL])),
            digest=PatientDigest(m_kib=_int(m_kib), t=_int(t), p=_int(p), salt=salt, hash=hashed),
        )
    # OverflowError/OSError: a timestamp beyond what datetime can hold.
    except (cbor2.CBORError, ValueError, TypeError, KeyError, IndexError, OverflowError, OSError) as error:
        raise _Malformed(str(error)) from error
    return attestation, issued_at


def decode_unverified(token: str) -> Attestation:
    """For display only, e.g. to say which insurer to refresh keys for. NOTHING here is trusted:
    anyone can write these claims. Raises ValueError on a malformed token."""
    try:
        envelope = _open_envelope(token)
        attestation, _ = _read_claims(envelope.payload, kid=envelope.kid)
    except _Malformed as error:
        raise ValueError(f"malformed attestation: {error}") from error
    return attestation


def verify(
    token: str,
    *,
    keys: KeySet,
    on: date,
    nir: str | None = None,
    birth_date: date | None = None,
    insurer: str | None = None,
) -> Verdict:
    """The counter's verdict on a token, for care given ``on`` that day. ``insurer`` is the AMC
    the practice expects (e.g. read from the member's card); ``nir`` and ``birth_date``, when
    both given, confirm the card belongs to the patient present."""
    try:
        envelope = _open_envelope(token)
    except _Malformed:
        return Verdict(attestation=None, refusal=Refusal.MALFORMED)
    key = keys.get(envelope.kid)
    if key is None:
        return Verdict(attestation=None, refusal=Refusal.UNKNOWN_KEY)
    if not _signature_verifies(envelope, key.raw):
        return Verdict(attestation=None, refusal=Refusal.TAMPERED)
    try:
        attestation, issued_at = _read_claims(envelope.payload, kid=envelope.kid)
    except _Malformed:
        return Verdict(attestation=None, refusal=Refusal.MALFORMED)

    refusal: Refusal | None = None
    if key.amc_number != attestation.amc_number or (insurer is not None and insurer != attestation.amc_number):
        refusal = Refusal.ANOTHER_INSURER
    elif key.revoked_at is not None and issued_at >= key.revoked_at:
        refusal = Refusal.REVOKED_KEY
    elif epoch(on) >= epoch(attestation.valid_to) + _DAY:
        refusal = Refusal.EXPIRED
    elif epoch(on) < epoch(attestation.valid_from):
        refusal = Refusal.NOT_YET_VALID
    elif nir is not None and birth_date is not None and not digest_matches(attestation.digest, nir, birth_date):
        refusal = Refusal.NOT_THIS_PATIENT
    return Verdict(attestation=attestation, refusal=refusal)
