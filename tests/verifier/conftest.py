"""Keys, key sets and attestations for the verifier's tests; and a guard that keeps them offline."""

from __future__ import annotations

import base64
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import base45
import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from pycose.algorithms import EdDSA
from pycose.headers import KID, Algorithm
from pycose.keys.okp import OKPKey
from pycose.messages.sign1message import Sign1Message

from rempart_verifier import PREFIX, Attestation, KeySet, new_digest, sign

AMC_A = "123456789"
AMC_B = "987654321"
NIR = "1 84 12 2A 057 318 43"  # as typed at the counter, Corsican department
NIR_COMPACT = "184122A05731843"
BIRTH_DATE = date(1984, 12, 3)
# The cheapest parameters the verifier accepts: the tests check behaviour, not cost.
FAST = {"m_kib": 8192, "t": 1, "p": 1}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verification is offline by design: any test that reaches for the network fails."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the verifier's tests must not open network connections")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@dataclass(frozen=True)
class InsurerKeys:
    kid: str
    amc_number: str
    private_key: Ed25519PrivateKey
    revoked_at: int | None = None

    @property
    def jwk(self) -> dict[str, Any]:
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        jwk: dict[str, Any] = {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
            "amc": self.amc_number,
        }
        if self.revoked_at is not None:
            jwk["revoked_at"] = self.revoked_at
        return jwk


def insurer_key(kid: str = "amc-a-2026-1", amc_number: str = AMC_A, revoked_at: int | None = None) -> InsurerKeys:
    return InsurerKeys(kid=kid, amc_number=amc_number, private_key=Ed25519PrivateKey.generate(), revoked_at=revoked_at)


def jwks(*keys: InsurerKeys) -> dict[str, Any]:
    return {"keys": [key.jwk for key in keys]}


def keyset(*keys: InsurerKeys) -> KeySet:
    return KeySet.from_jwks(jwks(*keys))


def attestation(key: InsurerKeys, **overrides: Any) -> Attestation:
    base = Attestation(
        attestation_id=uuid.uuid4(),
        amc_number=key.amc_number,
        member_number="MEMBER-0001",
        birth_rank=1,
        valid_from=date(2026, 1, 1),
        valid_to=date(2026, 12, 31),
        issued_at=datetime(2025, 12, 15, 9, 30, 12, 654321, tzinfo=UTC),
        kid=key.kid,
        third_party_payment=frozenset({"PHAR", "OPTI", "LABO"}),
        prior_approval=frozenset({"OPTI"}),
        digest=new_digest(NIR, BIRTH_DATE, **FAST),
    )
    return replace(base, **overrides)


def token_for(key: InsurerKeys, **overrides: Any) -> str:
    return sign(attestation(key, **overrides), private_key=key.private_key)


def envelope(token: str) -> list[Any]:
    """The COSE_Sign1 array [protected, unprotected, payload, signature] of a token."""
    tagged = cbor2.loads(base45.b45decode(token.removeprefix(PREFIX)))
    assert tagged.tag == 18
    return list(tagged.value)


def claims_of(token: str) -> dict[int, Any]:
    claims: dict[int, Any] = cbor2.loads(envelope(token)[2])
    return claims


def text_of(parts: list[Any]) -> str:
    return PREFIX + base45.b45encode(cbor2.dumps(cbor2.CBORTag(18, parts))).decode()


def resign(
    token: str,
    key: InsurerKeys,
    mutate: Callable[[dict[int, Any]], None] = lambda _claims: None,
    *,
    kid: str | None = None,
) -> str:
    """What a forger with a key would make: the token's claims, changed, signed anew."""
    claims = claims_of(token)
    mutate(claims)
    message = Sign1Message(
        phdr={Algorithm: EdDSA, KID: (kid or key.kid).encode()},
        payload=cbor2.dumps(claims),
    )
    message.key = OKPKey(
        crv="Ed25519",
        x=key.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        d=key.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
    )
    return PREFIX + base45.b45encode(message.encode(tag=True)).decode()


@pytest.fixture
def key_a() -> InsurerKeys:
    return insurer_key()


@pytest.fixture
def keys_a(key_a: InsurerKeys) -> KeySet:
    return keyset(key_a)


@pytest.fixture
def token_a(key_a: InsurerKeys) -> str:
    return token_for(key_a)
